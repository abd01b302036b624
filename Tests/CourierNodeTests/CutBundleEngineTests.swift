import CourierMedium
import CourierNode
import CourierWire
import Testing

/// The engine fills a packet with the head of a bundle that does not fit whole and sends its rest first in the next
/// packet (SPEC 5.12), only to neighbours that announced capability bit 5 (5.6, 11.9); it joins the pieces a neighbour
/// sends it and acknowledges the bundle only then.
@Suite struct CutBundleEngineTests {
    static let texts = (0..<6).map { "Sack \($0) of seed for the lower fields is at the mill; bring the cart before the rain." }
    static let withCuts: UInt8 = 1 | AnnounceRecord.compact | AnnounceRecord.runs | AnnounceRecord.cuts

    func sendTexts(caps: UInt8) throws -> (EngineHarness, EngineHarness.Peer, EngineHarness.Out) {
        let h = try EngineHarness(properties: BundleRunEngineTests.serial)
        var (p, all) = h.addPeer(capabilities: caps | AnnounceRecord.hello)
        all.packets += h.run(for: 5).packets
        for t in Self.texts {
            let (_, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array(t.utf8), now: h.now)
            all.packets += h.read(out).packets
        }
        all.packets += h.run(for: 5).packets
        return (h, p, all)
    }

    static func pieces(_ packet: [Record]) -> [RunPiece] { packet.compactMap { if case .piece(let x) = $0 { x } else { nil } } }

    @Test func aNeighbourThatReadsCutsGetsFullPacketsAndEveryBundleWhole() throws {
        let (h, p, out) = try self.sendTexts(caps: Self.withCuts)
        let heads = out.packets.flatMap(Self.pieces).filter(\.isHead)
        try #require(!heads.isEmpty, "no bundle was cut: \(out.packets.map { $0.count })")
        // Each head's rest comes first in the next packet that carries bundles.
        var joined: [[UInt8]] = []
        for (i, packet) in out.packets.enumerated() {
            for head in Self.pieces(packet).filter(\.isHead) {
                let next = try #require(out.packets[(i + 1)...].first { !Self.pieces($0).isEmpty || $0.contains { if case .bundle = $0 { true } else { false } } })
                let rest = try #require(Self.pieces(next).first { !$0.isHead && $0.transfer == head.transfer }, "the rest did not begin the next packet")
                joined.append(try RunPiece.join(head: head, rest: rest, origin: h.me.nodeID.short))
            }
        }
        let whole = out.bundles.filter { $0.nextHop == p.short }.map(\.bundle) + joined
        #expect(Set(whole).count == Self.texts.count)
        for bytes in whole {
            let b = try CourierBundle(decoding: bytes)
            #expect(try h.store.bundle(b.id)?.data == bytes)
        }
        let announces = out.records.compactMap { if case .announce(let a) = $0 { a } else { nil } }
        try #require(!announces.isEmpty, "the engine did not announce back")
        #expect(announces.allSatisfy { $0.capabilities & AnnounceRecord.cuts != 0 })
    }

    @Test func anOlderNeighbourGetsNoPieces() throws {
        let (_, p, out) = try self.sendTexts(caps: 1 | AnnounceRecord.compact | AnnounceRecord.runs)
        #expect(out.packets.flatMap(Self.pieces).isEmpty)
        #expect(Set(out.bundles.filter { $0.nextHop == p.short }.map(\.bundle)).count == Self.texts.count)
    }

    /// A neighbour sends the engine a bundle cut across two packets.
    @Test func piecesFromANeighbourAreJoinedAndAcknowledgedOnlyWhenWhole() throws {
        let h = try EngineHarness(properties: BundleRunEngineTests.serial)
        let (p, _) = h.addPeer(capabilities: Self.withCuts | AnnounceRecord.hello)
        h.run(for: 5)
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "The bridge at the lower ford is under water; take the hill road.", at: h.now)
        let record = BundleRecord(nextHop: h.me.nodeID.short, transfer: 70, bundle: b.encode(), compactFrom: p.short, inRun: true)
        let (head, rest) = try #require(RunPiece.cut(record, keep: 40))
        var out = h.receive(from: p, [.piece(head)])
        out.packets += h.run(for: 5).packets
        #expect(out.delivered.isEmpty)
        #expect(!out.acks.contains { $0.entries.contains { $0.transfer == 70 } }, "a head alone was acknowledged")
        out = h.receive(from: p, [.piece(rest)])
        out.packets += h.run(for: 5).packets
        #expect(out.delivered.count == 1)
        #expect(out.acks.filter { $0.target == p.short }.flatMap(\.entries).map(\.transfer).contains(70))
        // A rest without its head: said, not acknowledged (the sender sends the bundle again whole).
        let c = try p.bundle(.text, to: .node(h.me.nodeID.short), "Second note: the ferry runs again tomorrow morning at seven.", at: h.now)
        let other = try #require(RunPiece.cut(BundleRecord(nextHop: h.me.nodeID.short, transfer: 71, bundle: c.encode(), compactFrom: p.short, inRun: true), keep: 30))
        out = h.receive(from: p, [.piece(other.rest)])
        out.packets += h.run(for: 5).packets
        #expect(out.delivered.isEmpty)
        #expect(!out.acks.contains { $0.entries.contains { $0.transfer == 71 } })
        #expect(out.events.contains { if case .rejected(let why) = $0 { why.contains("without its head") } else { false } })
    }

    /// The receiver lost the packet with the rest: the sender's timeout sends the bundle again, and it arrives.
    @Test func aLostRestCostsAResendNotTheBundle() throws {
        let (h, p, out) = try self.sendTexts(caps: Self.withCuts)
        let heads = out.packets.flatMap(Self.pieces).filter(\.isHead)
        try #require(!heads.isEmpty, "no bundle was cut")
        // The peer acknowledges every whole bundle, not the cut ones (their rests "lost").
        let whole = out.bundles.filter { $0.nextHop == p.short }.compactMap(\.transfer)
        h.receive(from: p, [.ack(AckRecord(target: h.me.nodeID.short, entries: whole.map { AckEntry(transfer: $0, received: 1) }, ranges: true))])
        let again = h.run(for: 300)
        let resent = Set(again.bundles.filter { $0.nextHop == p.short }.compactMap(\.transfer)).union(again.packets.flatMap(Self.pieces).map(\.transfer))
        #expect(Set(heads.map(\.transfer)).isSubset(of: resent), "not sent again: \(heads.map(\.transfer)) vs \(resent)")
    }
}
