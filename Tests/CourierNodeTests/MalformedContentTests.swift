import CourierNode
import CourierStore
import CourierWire
import Testing

/// A receipt or failure notice whose content does not parse as whole entries is malformed (SPEC 6.8): the relay it
/// is addressed to does not deliver it and acts on none of it (no copy released, no failure recorded), and reports it
/// as a bundle it cannot read: an event (the log), the change feed and `relay status`'s unreadable count.
/// Lenient prefix decoders used to act on the entries before the damage and deliver the rest in silence.
@Suite(.timeLimit(.minutes(20))) struct MalformedContentTests {
    /// A bundle of `kind` with binary `content`, signed by `p` (the harness knows p's keys from its announce).
    static func bundle(_ p: EngineHarness.Peer, _ kind: Kind, to: Destination, content: [UInt8], at now: Double) throws -> CourierBundle {
        p.sequence += 1
        return try CourierBundle.make(
            kind: kind, destination: to, content: content, origin: p.identity,
            created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: p.sequence, options: BundleOptions(kind: kind),
            compressor: BodyCompressor())
    }

    /// `content` handed to hill by `p` in a transfer; returns what hill did, after a few seconds of ticks.
    static func hand(_ h: EngineHarness, from p: EngineHarness.Peer, _ b: CourierBundle) -> EngineHarness.Out {
        var out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 7, bundle: b.encode()))])
        out.packets += h.run(for: 2).packets
        return out
    }

    static func reportedUnreadable(_ h: EngineHarness, _ out: EngineHarness.Out, _ b: CourierBundle, feedBefore: Int64) throws {
        #expect(out.acks.contains { $0.entries.contains { $0.transfer == 7 } }, "settled (acknowledged), not retried: \(out.acks)")
        #expect(out.events.contains { if case .gaveUp(let id, let why) = $0 { id == b.id && why.hasPrefix("unreadable: malformed: input ends inside") } else { false } },
                "reported (the log): \(out.events)")
        #expect(try h.store.events(after: feedBefore).contains { $0.type == .gaveUp && $0.bundle == b.id.description && $0.detail?.contains("malformed") == true },
                "in the change feed")
        #expect(try h.store.snapshot().unreadableTotal == 1, "counted for relay status")
        #expect(out.delivered.isEmpty, "not delivered: \(out.delivered)")
        #expect(try h.store.inbox().isEmpty, "nothing in the inbox")
    }

    @Test func aMalformedFailureNoticeIsReportedAndNoneOfItRecorded() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (mine, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Clinic open at eight.".utf8), now: h.now)
        let whole = FailureContent.encode([(mine, .expired)])
        // One whole entry about hill's bundle, then a second cut inside its id.
        let notice = try Self.bundle(p, .failure, to: .node(h.me.nodeID.short), content: whole + whole.prefix(6), at: h.now)
        let feedBefore = try h.store.lastEventSeq()
        let out = Self.hand(h, from: p, notice)
        try Self.reportedUnreadable(h, out, notice, feedBefore: feedBefore)
        #expect(!out.events.contains { if case .failureNotice = $0 { true } else { false } }, "no entry acted on: \(out.events)")
        #expect(try h.store.snapshot().failedTotal == 0, "no failure recorded")
        #expect(try h.store.held(kind: .failure, origin: h.me.nodeID.short).isEmpty, "no failure notice about a failure notice")
    }

    @Test func aMalformedReceiptIsReportedAndReleasesNothing() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (mine, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Clinic open at eight.".utf8), now: h.now)
        #expect(try h.store.bundle(mine) != nil, "held until a receipt or an acknowledgement")
        // p's receipt names hill's bundle, then a byte more: not whole entries.
        let receipt = try Self.bundle(p, .receipt, to: .node(h.me.nodeID.short), content: ReceiptContent.encode([mine]) + [0xaa], at: h.now)
        let feedBefore = try h.store.lastEventSeq()
        let out = Self.hand(h, from: p, receipt)
        try Self.reportedUnreadable(h, out, receipt, feedBefore: feedBefore)
        #expect(!out.events.contains { if case .receipt = $0 { true } else { false } }, "no delivery confirmed: \(out.events)")
        #expect(try h.store.bundle(mine) != nil, "hill's bundle not released by a malformed receipt")
    }

    /// The control: the same receipt whole releases hill's bundle and is delivered (what the test above withholds).
    @Test func aWholeReceiptReleasesAndIsDelivered() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (mine, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Clinic open at eight.".utf8), now: h.now)
        let receipt = try Self.bundle(p, .receipt, to: .node(h.me.nodeID.short), content: ReceiptContent.encode([mine]), at: h.now)
        let out = Self.hand(h, from: p, receipt)
        #expect(out.events.contains(.receipt(mine, by: p.short)), "\(out.events)")
        #expect(try h.store.bundle(mine) == nil, "released")
        #expect(try h.store.snapshot().unreadableTotal == 0)
        #expect(out.delivered.map(\.id) == [receipt.id])
    }

    /// A reason from a newer relay is not malformed (SPEC 6.8: shown as "reason N"): recorded like any other.
    @Test func aFailureNoticeWithAnUnknownReasonIsRecorded() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (mine, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Clinic open at eight.".utf8), now: h.now)
        let notice = try Self.bundle(p, .failure, to: .node(h.me.nodeID.short), content: FailureContent.encode([(mine, .other(9))]), at: h.now)
        let out = Self.hand(h, from: p, notice)
        #expect(out.events.contains(.failureNotice(mine, reason: .other(9), by: p.short)), "\(out.events)")
        #expect(try h.store.snapshot().failedTotal == 1)
        #expect(try h.store.snapshot().unreadableTotal == 0)
    }

    /// A malformed receipt passing through (for another node) is carried on for its destination to judge, releases
    /// nothing here, and is said once.
    @Test func aMalformedReceiptPassingThroughReleasesNothing() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let q = h.addPeer()
        // q's message to p, in hill's custody.
        let m = try q.bundle(.text, to: .node(p.short), "Seed potatoes for the upper terraces.", at: h.now)
        _ = h.receive(from: q, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 1, bundle: m.encode()))])
        #expect(try h.store.bundle(m.id) != nil, "held for p")
        // p's receipt to q names it, then a byte more.
        let receipt = try Self.bundle(p, .receipt, to: .node(q.short), content: ReceiptContent.encode([m.id]) + [0xaa], at: h.now)
        let out = Self.hand(h, from: p, receipt)
        #expect(try h.store.bundle(m.id) != nil, "not released by a malformed receipt")
        #expect(out.events.contains { if case .rejected(let why) = $0 { why.contains("receipt \(receipt.id)") && why.contains("malformed, nothing released") } else { false } },
                "said: \(out.events)")
        #expect(try h.store.bundle(receipt.id) != nil, "carried on for q to judge")
    }
}
