import CourierNode
import CourierWire
import Testing

/// The engine sends its own directed bundles in the compact form (SPEC 5.3) only to neighbours that announced
/// capability bit 3 (5.6, 11.7); older neighbours get the ordinary form; the engine announces the bit itself.
@Suite struct CompactRecordEngineTests {
    func sendText(caps: UInt8) throws -> (EngineHarness, EngineHarness.Peer, EngineHarness.Out) {
        let h = try EngineHarness()
        // A hello: the engine announces back.
        var (p, all) = h.addPeer(capabilities: caps | AnnounceRecord.hello)
        all.packets += h.run(for: 5).packets
        let (_, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Water at the school at nine.".utf8), now: h.now)
        let first = h.read(out)
        all.packets += first.packets
        let later = h.run(for: 30)
        all.packets += later.packets
        return (h, p, all)
    }

    @Test func anOlderNeighbourGetsTheOrdinaryForm() throws {
        let (_, p, out) = try self.sendText(caps: 1)
        let mine = out.bundles.filter { $0.nextHop == p.short }
        try #require(!mine.isEmpty, "the text was not sent")
        #expect(mine.allSatisfy { $0.compactFrom == nil })
    }

    @Test func aNeighbourThatReadsTheCompactFormGetsIt() throws {
        let (h, p, out) = try self.sendText(caps: 1 | AnnounceRecord.compact)
        // (In an ordinary packet: one that carries our announce has no ordinary sender to read a compact record with,
        // and goes in the ordinary form, AnnounceFormPacketTests.)
        let mine = out.bundlesInOrdinaryPackets.filter { $0.nextHop == p.short }
        try #require(!mine.isEmpty, "the text was not sent")
        #expect(mine.allSatisfy { $0.compactFrom == h.me.nodeID.short })
        // The bundle put back is the one stored at the origin.
        let b = try CourierBundle(decoding: mine[0].bundle)
        #expect(try h.store.bundle(b.id)?.data == mine[0].bundle)
        // And the engine's own announces say it reads the form.
        let announces = out.records.compactMap { if case .announce(let a) = $0 { a } else { nil } }
        try #require(!announces.isEmpty, "the engine did not announce back")
        #expect(announces.allSatisfy { $0.capabilities & AnnounceRecord.compact != 0 })
    }

    @Test func aNeighbourThatStopsAnnouncingTheBitGetsItsRetriesWhole() throws {
        let (h, p, out) = try self.sendText(caps: 1 | AnnounceRecord.compact)
        let first = out.bundlesInOrdinaryPackets.filter { $0.nextHop == p.short }
        try #require(!first.isEmpty, "the text was not sent")
        #expect(first.allSatisfy { $0.compactFrom == h.me.nodeID.short })
        // It went back to an older version (same id): its announce lacks bit 3, and it never acknowledged the record.
        let k = p.identity.publicKeys
        h.receive(from: p, [.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement))], announce: true)
        let retries = h.run(for: 300).bundles.filter { $0.nextHop == p.short }
        try #require(!retries.isEmpty, "no retry within 300 s")
        #expect(retries.allSatisfy { $0.compactFrom == nil })
        #expect(retries[0].bundle == first[0].bundle)
    }
}
