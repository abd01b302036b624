import CourierNode
import CourierStore
import CourierWire
import Testing

/// A directed bundle between two relays that each hold a route to its destination through the other (SPEC 8.5,
/// directed bundles, rule 2): the relay that takes it back does not hand it back again along a route older than the
/// bundle's return (split horizon), and along a fresher one at most `handBacksPerBundle` times; and one handed back
/// with no hop left is given up on, reported (log, feed, `relay status`, a failure notice to its origin), not lost.
@Suite(.timeLimit(.minutes(20))) struct HandBackTests {
    /// `Tuning.handBacksPerBundle` (the engine's; the test states the figure it checks).
    static let handBacksPerBundle = 1

    /// The transfers of `id` hill sent to `q` in `out`.
    static func handOns(_ out: EngineHarness.Out, of id: BundleID, to q: EngineHarness.Peer) throws -> [BundleRecord] {
        try out.bundles.filter { r in try r.nextHop == q.short && CourierBundle(decoding: r.bundle).id == id }
    }

    /// hill (the harness) has a route to z through q (a flood of z's came from q); p hands hill a message for z, hill
    /// takes custody, passes it on to q, and q acknowledges: custody is q's, hill's copy gone.
    static func passedOnToQ(_ h: EngineHarness) throws -> (p: EngineHarness.Peer, q: EngineHarness.Peer, b: CourierBundle) {
        let p = h.addPeer()
        let q = h.addPeer()
        let z = EngineHarness.Peer(key: h.key)
        h.receive(from: q, [.bundle(BundleRecord(bundle: try z.bundle(.text, to: .everyone, "Market day moved to Friday.", at: h.now).encode()))])
        let b = try p.bundle(.text, to: .node(z.short), "Seed potatoes for the upper terraces.", at: h.now)
        var out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 1, bundle: b.encode()))])
        out.packets += h.run(for: 30).packets
        #expect(out.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 1 } }, "custody taken from p")
        let toQ = try #require(try Self.handOns(out, of: b.id, to: q).first, "passed on to q: \(out.records)")
        h.receive(from: q, [.ack(AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: try #require(toQ.transfer), received: 1)]))])
        _ = h.run(for: 1)
        #expect(try h.store.bundle(b.id) == nil, "custody released to q")
        return (p, q, b)
    }

    /// A relay that passed a bundle on earlier (a route that turned back, the last copy of a budget moving on) and gets
    /// it handed back takes custody again. Acknowledged as a duplicate instead, the sender let its copy go, and with
    /// the last copy the bundle vanished, reported nowhere.
    @Test func aBundleHandedBackAfterItWasPassedOnIsKept() throws {
        let h = try EngineHarness()
        let (p, q, b) = try Self.passedOnToQ(h)
        // q's way to z closed; it hands the bundle back to hill.
        var out = h.receive(from: q, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 9, bundle: b.encode()))])
        out.packets += h.run(for: 2).packets
        #expect(out.acks.contains { $0.target == q.short && $0.entries.contains { $0.transfer == 9 } }, "acknowledged to q")
        #expect(try h.store.bundle(b.id) != nil, "acknowledged, so kept: custody is hill's again")
        // A copy handed while hill still holds it stays a duplicate: one copy in the store.
        out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 2, bundle: b.encode()))])
        #expect(out.events.contains(.duplicate(b.id)))
        #expect(try h.store.held().filter { $0.id == b.id }.count == 1)
    }

    @Test func twoRelaysThatEachThinkTheOtherIsTheWayDoNotPingPong() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let q = h.addPeer()
        // z is heard of through q: hill's route to z goes through q.
        let z = EngineHarness.Peer(key: h.key)
        var floods = 0
        func floodFromZ() throws {
            floods += 1
            h.receive(from: q, [.bundle(BundleRecord(bundle: try z.bundle(.text, to: .everyone, "Market day \(floods).", at: h.now).encode()))])
        }
        try floodFromZ()
        let b = try p.bundle(.text, to: .node(z.short), "Seed potatoes for the upper terraces.", at: h.now)
        var out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 1, bundle: b.encode()))])
        // q's route to z goes through hill: each time hill hands the bundle to q, q acknowledges it and hands it back,
        // and z keeps flooding through q (hill's route through q is fresh again after each return).
        var handOns = 0
        var transfer: UInt32 = 100
        for _ in 0..<8 {
            out.packets += h.run(for: 120).packets
            let sent = try Self.handOns(out, of: b.id, to: q)
            out = EngineHarness.Out()
            guard let last = sent.last, let t = last.transfer else {
                try floodFromZ()
                continue
            }
            handOns += 1
            h.receive(from: q, [.ack(AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: t, received: 1)]))])
            _ = h.run(for: 2)
            #expect(try h.store.bundle(b.id) == nil, "custody released to q")
            transfer += 1
            let back = h.receive(from: q, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: transfer, bundle: last.bundle))])
            out.packets += back.packets
            out.packets += h.run(for: 2).packets
            #expect(out.acks.contains { $0.target == q.short && $0.entries.contains { $0.transfer == transfer } }, "acknowledged to q")
            #expect(try h.store.bundle(b.id) != nil, "taken back: custody is hill's again")
            try floodFromZ()
        }
        // Once at first (q is the way), then along a route fresher than the bundle's return at most handBacksPerBundle
        // times; without split horizon it went back and forth until its hop limit ran out (8 hand-ons).
        #expect(handOns >= 1, "passed on to q at first")
        #expect(handOns <= 1 + Self.handBacksPerBundle, "handed to q \(handOns) times")
        #expect(try h.store.bundle(b.id) != nil, "still held by hill: not lost")
    }

    @Test func aBundleHandedBackWithNoHopLeftIsGivenUpOnAndReported() throws {
        let h = try EngineHarness()
        let (p, q, b) = try Self.passedOnToQ(h)
        let feedBefore = try h.store.lastEventSeq()
        // It comes back round a loop of routes with its hop limit spent.
        var spent = b.encode()
        spent[0] &= 0x0F
        var out = h.receive(from: q, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 9, bundle: spent))])
        out.packets += h.run(for: 2).packets
        #expect(out.acks.contains { $0.target == q.short && $0.entries.contains { $0.transfer == 9 } }, "acknowledged: settled here")
        #expect(try h.store.bundle(b.id) == nil, "not kept: no hop left")
        #expect(out.events.contains { if case .gaveUp(let id, let why) = $0 { id == b.id && why.hasPrefix("out of hops") } else { false } },
                "reported (the log): \(out.events)")
        #expect(try h.store.events(after: feedBefore).contains { $0.type == .gaveUp && $0.bundle == b.id.description }, "in the change feed")
        #expect(try h.store.snapshot().hopLimitTotal == 1, "counted for relay status")
        let notices = try h.store.held(kind: .failure, origin: h.me.nodeID.short)
        #expect(notices.contains { $0.destination == .node(p.short) }, "a failure notice to its origin: \(notices)")
        // The notice says why: reason 5, out of hops (SPEC 6.8).
        let notice = try #require(notices.first { $0.destination == .node(p.short) })
        let stored = try #require(try h.store.bundle(notice.id))
        let content = try CourierBundle(decoding: stored.data).content(compressor: BodyCompressor())
        #expect(try FailureContent.decode(content).map(\.reason) == [.outOfHops])
        #expect(try FailureContent.decode(content).map(\.id) == [b.id])
    }
}
