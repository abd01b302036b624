import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// Live drills (SPEC 6.17) in the engine: a relay that reads a drill answers with its receipt part and its hop count
/// (record flag 0x01), relays carry hop counts unchanged, and the origin keeps each answer with its hops and refuses
/// (logs, feeds) a forged one. One engine, neighbours played by hand.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct LiveDrillEngineTests {
    typealias T = ReceiptAggregationTests

    static func drill(from o: EngineHarness.Peer, at now: Double) throws -> CourierBundle {
        o.sequence += 1
        var opts = BundleOptions(kind: .alert)
        opts.extensions = [DrillMark.make(scope: nil)]
        return try CourierBundle.make(
            kind: .alert, destination: .everyone, content: Array("DRILL".utf8), origin: o.identity,
            created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: o.sequence, options: opts, compressor: BodyCompressor())
    }

    @Test func aRelayThatReadsADrillAnswersWithItsHopCountAndCarriesOthersUnchanged() throws {
        let h = try T.harness()
        let o = h.addPeer()
        let far = h.addPeer()
        // The origin's identity is known (the harness adds peers' keys); the drill comes straight from it: 1 hop.
        let d = try Self.drill(from: o, at: h.now)
        h.receive(from: o, [.bundle(BundleRecord(bundle: d.encode()))])
        // A relay farther out (2 hops from the origin, it says) sends its answer, 3 hops: carried on unchanged.
        var p = T.part(d.id, by: far, origin: o.identity.publicKeys)
        h.receive(from: far, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 2, partsWithHops: [(p.id, p.holder, p.tag, 3)]))])
        var sent: [ReceiptPartsRecord] = []
        while sent.isEmpty && h.now < 1_790_000_000 + 900 { sent = T.partsRecords(h.run(for: 1), origin: o.short).flatMap { $0 } }
        let r = try #require(sent.first)
        #expect(r.carriesHops, "a drill's parts carry hop counts")
        let hops = Dictionary(uniqueKeysWithValues: r.partsWithHops.map { ($0.holder, $0.hops) })
        #expect(hops[h.me.nodeID.short] == 1, "the relay heard the drill from its origin: 1 hop (\(hops))")
        #expect(hops[far.short] == 3, "the farther relay's hop count is carried unchanged (\(hops))")
        // As packets: record flag 0x01, and an older reader (reserved flags 0x07) would skip it, not misread it.
        let bytes = Record.encode([.receiptParts(r)])
        #expect(bytes[0] & 0x07 == ReceiptPartsRecord.hopsFlag)
        #expect(try Record.decodeAll(bytes[...]) == [.receiptParts(r)])
        // An ordinary alert's parts carry none (no byte more than before).
        p = T.part(try BundleID(origin: o.short, created: 1_523_041, sequence: 900), by: far, origin: o.identity.publicKeys)
        #expect(!ReceiptPartsRecord(origin: o.short, hops: 2, parts: [p]).carriesHops)
    }

    @Test func theOriginKeepsEachAnswerWithItsHopsAndRefusesAForgedOne() throws {
        let h = try T.harness()
        let bravo = h.addPeer()
        let charlie = h.addPeer()
        let mallory = h.addPeer()
        let mine = h.me.publicKeys
        let drill = try BundleID(origin: h.me.nodeID.short, created: 1_523_041, sequence: 1)
        let b = T.part(drill, by: bravo, origin: mine)
        let c = T.part(drill, by: charlie, origin: mine)
        // Mallory claims charlie answered from 1 hop, with a tag it made itself; a real part of charlie's with 3.
        var forged = T.part(drill, by: mallory, origin: mine)
        forged.holder = charlie.short
        let out = h.receive(from: bravo, [.receiptParts(ReceiptPartsRecord(origin: h.me.nodeID.short, hops: 1, partsWithHops: [
            (b.id, b.holder, b.tag, 1), (forged.id, forged.holder, forged.tag, 1)]))])
        #expect(out.events.contains { if case .rejected(let why) = $0 { why.contains("\(charlie.short)") && why.contains("forged") } else { false } })
        h.receive(from: bravo, [.receiptParts(ReceiptPartsRecord(origin: h.me.nodeID.short, hops: 1, partsWithHops: [(c.id, c.holder, c.tag, 3)]))])
        let answers = try h.store.drillAnswers(drill)
        #expect(Dictionary(uniqueKeysWithValues: answers.map { ($0.node, $0.hops) }) == [bravo.short: 1, charlie.short: 3],
                "charlie's own part says 3 hops, not the forger's 1: \(answers)")
        let feed = try h.store.events(after: 0).filter { $0.type == .drill }
        #expect(feed.contains { $0.neighbour == "\(charlie.short)" && ($0.detail ?? "").contains("refused") && ($0.detail ?? "").contains("forged") }, "\(feed)")
        #expect(feed.contains { $0.neighbour == "\(bravo.short)" && $0.detail == "drill answered by \(bravo.short), 1 hop away" }, "\(feed)")
        // A second copy of bravo's answer adds nothing; another alert's part riding in the same record (255: no hop
        // count) is a receipt, not a drill answer.
        let other = try BundleID(origin: h.me.nodeID.short, created: 1_523_041, sequence: 2)
        let o = T.part(other, by: bravo, origin: mine)
        let out2 = h.receive(from: charlie, [.receiptParts(ReceiptPartsRecord(origin: h.me.nodeID.short, hops: 1, partsWithHops: [
            (b.id, b.holder, b.tag, 1), (o.id, o.holder, o.tag, nil)]))])
        #expect(out2.events.contains(.receipt(other, by: bravo.short)))
        #expect(try h.store.drillAnswers(drill).count == 2)
        #expect(try h.store.drillAnswers(other).isEmpty)
    }
}
