import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// The held-bundle index (issue 11 point 5): kept in step by the engine's own writes it equals the index built from
/// the store; a tick with nothing due reads nothing from storage, however much is held.
// (The limit of StorageBoundaryTests: alone these take seconds, but in the whole suite on a loaded 2-core box a test
// can wait minutes for a thread.)
@Suite(.serialized, .timeLimit(.minutes(20)))
struct HeldIndexTests {
    static let start = 1_790_000_000.0

    /// What the store holds, in its order, as the engine would index it at start.
    static func stored(_ store: Store) throws -> [HeldBundle] { try store.held(limit: 1_000_000) }

    @Test func theIndexKeptInStepEqualsTheIndexBuiltFromTheStore() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let other = EngineHarness.Peer(key: h.key)
        func check(_ step: String) throws {
            let kept = h.node.heldIndexed
            let built = try Self.stored(h.store)
            #expect(kept == built, "after \(step): the index kept in step (\(kept.count)) differs from the store's (\(built.count))")
        }
        try check("start")
        // Received: floods, and directed bundles for another node (custody).
        var received: [CourierBundle] = []
        for i in 0..<6 {
            let b = try p.bundle(i % 2 == 0 ? .text : .alert, to: i % 3 == 0 ? .node(other.short) : .everyone, "News \(i) from the hill.", at: h.now)
            received.append(b)
            _ = h.receive(from: p, [.bundle(BundleRecord(nextHop: i % 3 == 0 ? h.me.nodeID.short : nil, transfer: UInt32(20 + i), bundle: b.encode()))])
            h.now += 1
        }
        try check("receiving six bundles")
        #expect(h.node.heldIndexed.count >= 5)
        // Submitted here: one flood, one directed to the peer (a transfer with custody).
        let (flood, _) = try h.node.submit(kind: .text, destination: .everyone, content: Array("Water at the east well.".utf8), now: h.now)
        let (direct, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Meet at noon.".utf8), now: h.now)
        try check("two submissions")
        #expect(h.node.heldIndexed.contains { $0.id == flood } && h.node.heldIndexed.contains { $0.id == direct })
        // Acknowledged by the peer: custody moves on, the bundle leaves the store.
        let sent = h.read(out).records.compactMap { r -> (UInt32, Int)? in
            switch r {
            case .bundle(let b) where b.nextHop == p.short: return b.transfer.map { ($0, 1) }
            case .fragment(let f) where f.nextHop == p.short: return (f.transfer, Int(f.count))
            default: return nil
            }
        }
        try #require(!sent.isEmpty, "the directed submission was not sent")
        _ = h.receive(from: p, [.ack(AckRecord(target: h.me.nodeID.short, entries: sent.map { AckEntry(transfer: $0.0, received: $0.1) }))])
        try check("custody released")
        #expect(!h.node.heldIndexed.contains { $0.id == direct }, "released custody still indexed")
        // Time passes beyond every lifetime: expiry takes them all out of both.
        h.now += 400 * 86_400
        _ = h.node.tick(now: h.now)
        try check("expiry")
        // (What is left are the failure notices made for the expired bundles in our custody, to their origins.)
        let before = Set(received.map(\.id) + [flood, direct])
        #expect(!h.node.heldIndexed.contains { before.contains($0.id) }, "expired bundles still indexed")
    }

    /// One engine over a counting storage, holding `held` directed bundles (in custody, for a node not heard) and
    /// `held` floods, all made by its one neighbour (so it has each already: nothing is due for it).
    static func quietEngine(held: Int) throws -> (node: Node, storage: CountingStorage, announce: () -> [UInt8]) {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let key = NetworkKey.random()
        let neighbour = EngineHarness.Peer(key: key)
        let stranger = EngineHarness.Peer(key: key)
        var bundles: [CourierBundle] = []
        for i in 0..<held {
            bundles.append(try neighbour.bundle(.text, to: .node(stranger.short), "Message \(i) for a node not heard yet.", at: Self.start, signed: false))
            bundles.append(try neighbour.bundle(.text, to: .everyone, "Notice \(i) to everyone.", at: Self.start, signed: false))
        }
        for b in bundles {
            if case .node = b.destination {
                try store.insert(b, now: Int64(Self.start), local: false, custody: true, from: "test")
            } else {
                try store.insert(b, now: Int64(Self.start), local: false, custody: false, from: "test")
            }
        }
        let storage = CountingStorage(store)
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: key, name: "hill"), store: storage,
                            links: [LinkInfo(name: "radio", properties: LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full,
                                                                                       mediumChecksFrames: true, airtime: .none))],
                            now: Self.start, seed: 3)
        _ = node.linkUp("radio", now: Self.start)
        let announce = { () -> [UInt8] in
            let k = neighbour.identity.publicKeys
            return neighbour.seal([.announce(AnnounceRecord(capabilities: 1 | AnnounceRecord.compact, signingKey: k.signing,
                                                            agreementKey: k.agreement, name: "valley"))], announce: true)
        }
        return (node, storage, announce)
    }

    /// Storage calls during three minutes of ticks (four a second), with the neighbour in range: those of the
    /// housekeeping ticks (once a minute), and those of all the others.
    static func callsWhileQuiet(held: Int) throws -> (housekeeping: [String: Int], others: [String: Int]) {
        let (node, storage, announce) = try Self.quietEngine(held: held)
        var now = Self.start
        _ = node.receive(announce(), on: "radio", now: now)
        // Settle: the first minutes (hellos, the neighbour met, copies it does not need are not made).
        while now < Self.start + 200 { now += 0.25; _ = node.tick(now: now) }
        _ = node.receive(announce(), on: "radio", now: now)
        var housekeeping: [String: Int] = [:]
        var others: [String: Int] = [:]
        let end = now + 180
        while now < end {
            now += 0.25
            storage.reset()
            _ = node.tick(now: now)
            // A group with no write inside begins no transaction (the composer opens one per packet it tries).
            let calls = storage.calls.filter { $0.key != "grouped" }
            // A housekeeping tick is the one that expires bundles.
            if calls["expireBundles"] != nil { housekeeping.merge(calls, uniquingKeysWith: +) } else { others.merge(calls, uniquingKeysWith: +) }
        }
        return (housekeeping, others)
    }

    @Test func aTickWithNothingDueReadsNothingFromStorageWhateverIsHeld() throws {
        let small = try Self.callsWhileQuiet(held: 10)
        let large = try Self.callsWhileQuiet(held: 1_000)
        // Between housekeepings: no storage call at all.
        #expect(small.others.isEmpty, "ticks with nothing due called storage: \(small.others)")
        #expect(large.others.isEmpty, "ticks with nothing due called storage: \(large.others)")
        // Housekeeping (expiry, bundles waiting for keys) neither reads the held bundles nor any one of them ...
        for name in ["held(limit:)", "bundle", "bundles"] {
            #expect(large.housekeeping[name] == nil, "housekeeping called \(name) \(large.housekeeping[name] ?? 0) times with 2,000 held")
        }
        #expect(!large.housekeeping.isEmpty, "no housekeeping seen in three minutes")
        // ... and calls storage as often with 2,000 held as with 20.
        #expect(large.housekeeping == small.housekeeping, "with 20 held: \(small.housekeeping); with 2,000: \(large.housekeeping)")
    }
}
