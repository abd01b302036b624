import CourierMedium
import CourierNode
import CourierWire
import Testing

/// The engine sends its own directed bundles in bundle runs (SPEC 5.11) and acknowledges whole bundles in the ranges
/// form (5.5) only to neighbours that announced capability bit 4 (5.6, 11.8); older neighbours get compact or ordinary
/// bundle records and ordinary acks; the engine announces the bit itself.
@Suite struct BundleRunEngineTests {
    /// A 9,600-baud serial line: while one packet is on the line, the next messages wait and share a packet.
    static let serial = LinkProperties(mtu: 255, bitsPerSecond: 9_600, duplex: .full, mediumChecksFrames: true,
                                       airtime: .serial(baud: 9_600, overhead: 7))
    static let texts = ["Water at the school at nine.", "The clinic needs two more cots.", "Road to the mill is open.",
                        "Meeting moved to Thursday."]

    func harness(caps: UInt8) throws -> (EngineHarness, EngineHarness.Peer, EngineHarness.Out) {
        let h = try EngineHarness(properties: Self.serial)
        var (p, all) = h.addPeer(capabilities: caps | AnnounceRecord.hello)
        all.packets += h.run(for: 5).packets
        return (h, p, all)
    }

    func sendTexts(caps: UInt8) throws -> (EngineHarness, EngineHarness.Peer, EngineHarness.Out) {
        var (h, p, all) = try self.harness(caps: caps)
        for t in Self.texts {
            let (_, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array(t.utf8), now: h.now)
            all.packets += h.read(out).packets
        }
        all.packets += h.run(for: 5).packets
        return (h, p, all)
    }

    @Test func aNeighbourThatReadsRunsGetsSeveralBundlesInOneRecord() throws {
        let (h, p, out) = try self.sendTexts(caps: 1 | AnnounceRecord.compact | AnnounceRecord.runs)
        let mine = out.bundles.filter { $0.nextHop == p.short }
        try #require(mine.count >= Self.texts.count, "the texts were not sent")
        // Decoded from a run (type 8): each record says so.
        #expect(mine.allSatisfy { $0.inRun && $0.compactFrom == h.me.nodeID.short })
        let shared = out.packets.map { $0.filter { if case .bundle(let b) = $0 { b.nextHop == p.short } else { false } }.count }
        #expect(shared.contains { $0 >= 2 }, "no packet carried two bundles: \(shared)")
        // The bundles put back are the ones stored at the origin.
        for r in mine {
            let b = try CourierBundle(decoding: r.bundle)
            #expect(try h.store.bundle(b.id)?.data == r.bundle)
        }
        let announces = out.records.compactMap { if case .announce(let a) = $0 { a } else { nil } }
        try #require(!announces.isEmpty, "the engine did not announce back")
        #expect(announces.allSatisfy { $0.capabilities & AnnounceRecord.runs != 0 && $0.capabilities & AnnounceRecord.compact != 0 })
    }

    @Test func anOlderNeighbourGetsCompactRecordsNotRuns() throws {
        let (h, p, out) = try self.sendTexts(caps: 1 | AnnounceRecord.compact)
        let mine = out.bundles.filter { $0.nextHop == p.short }
        try #require(mine.count >= Self.texts.count, "the texts were not sent")
        #expect(mine.allSatisfy { !$0.inRun && $0.compactFrom == h.me.nodeID.short })
    }

    /// A neighbour sends the engine three bundles of its own in one run: one ack in the ranges form answers for them
    /// if it reads that form; an ordinary one otherwise.
    func acksForARun(caps: UInt8) throws -> [AckRecord] {
        let (h, p, _) = try self.harness(caps: caps)
        let records: [Record] = try (0..<3).map { i in
            let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "Seeds for the spring, sack \(i).", at: h.now)
            return .bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 40 + UInt32(i), bundle: b.encode(),
                                        compactFrom: p.short, inRun: caps & AnnounceRecord.runs != 0))
        }
        var out = h.receive(from: p, records)
        out.packets += h.run(for: 5).packets
        #expect(out.delivered.count == 3)
        return out.acks.filter { $0.target == p.short }
    }

    @Test func aRunIsAcknowledgedInTheRangesForm() throws {
        let acks = try self.acksForARun(caps: 1 | AnnounceRecord.compact | AnnounceRecord.runs)
        try #require(!acks.isEmpty, "no ack")
        #expect(acks.allSatisfy { $0.isRangesForm })
        #expect(Set(acks.flatMap(\.entries).map(\.transfer)) == [40, 41, 42])
    }

    @Test func anOlderNeighbourGetsOrdinaryAcks() throws {
        let acks = try self.acksForARun(caps: 1 | AnnounceRecord.compact)
        try #require(!acks.isEmpty, "no ack")
        #expect(acks.allSatisfy { !$0.isRangesForm })
        #expect(Set(acks.flatMap(\.entries).map(\.transfer)) == [40, 41, 42])
    }

    @Test func aNeighbourThatStopsAnnouncingTheBitGetsItsRetriesOutOfRuns() throws {
        let (h, p, out) = try self.sendTexts(caps: 1 | AnnounceRecord.compact | AnnounceRecord.runs)
        let first = out.bundles.filter { $0.nextHop == p.short }
        try #require(!first.isEmpty, "the texts were not sent")
        #expect(first.allSatisfy { $0.inRun })
        // It went back to an older version (same id): its announce lacks bit 4, and it never acknowledged the run.
        let k = p.identity.publicKeys
        h.receive(from: p, [.announce(AnnounceRecord(capabilities: 1 | AnnounceRecord.compact, signingKey: k.signing, agreementKey: k.agreement))],
                  announce: true)
        let later = h.run(for: 300)
        let retries = later.bundles.filter { $0.nextHop == p.short }
        try #require(!retries.isEmpty, "no retry within 300 s")
        // Compact in ordinary packets; one sharing the packet of our announce goes in the ordinary form (AnnounceFormPacketTests).
        #expect(retries.allSatisfy { !$0.inRun })
        #expect(later.bundlesInOrdinaryPackets.filter { $0.nextHop == p.short }.allSatisfy { $0.compactFrom == h.me.nodeID.short })
        #expect(later.unreadable.isEmpty, "\(later.unreadable)")
        #expect(Set(retries.map(\.bundle)) == Set(first.map(\.bundle)))
    }
}
