import CourierMedium
@testable import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// The engine's hot path with much held (issue 11 point 5): routing starts no more transfers than a link can send,
/// and housekeeping looks at no held bundle when nothing routing depends on changed.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct HotPathTests {
    static let start = 1_790_000_000.0

    /// LoRa SF9/125 kHz, MTU 255 (the simulator's radio): a full frame takes about 0.5 s on the air.
    static let lora = LinkProperties(mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
                                     airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0))

    /// An engine on one LoRa link holding `held` directed bundles in its custody for a node not heard (no route),
    /// and a neighbour that announces itself and answers nothing. The bundles are made by another node (each may be
    /// handed to the neighbour as a copy), or by the neighbour itself (none can be: it has them).
    static func engine(held: Int, madeByNeighbour: Bool) throws -> (node: Node, announce: () -> [UInt8]) {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let key = NetworkKey.random()
        let origin = EngineHarness.Peer(key: key)
        let stranger = EngineHarness.Peer(key: key)
        let neighbour = EngineHarness.Peer(key: key)
        let maker = madeByNeighbour ? neighbour : origin
        let bundles = try (0..<held).map { i in
            try maker.bundle(.text, to: .node(stranger.short), "Message \(i) for a node not heard yet.", at: Self.start, signed: false)
        }
        _ = try store.insert(bundles, now: Int64(Self.start), local: false, custody: true, from: "test")
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: key, name: "hill"), store: store,
                            links: [LinkInfo(name: "radio", properties: Self.lora)], now: Self.start, seed: 3)
        _ = node.linkUp("radio", now: Self.start)
        let announce = { () -> [UInt8] in
            let k = neighbour.identity.publicKeys
            return neighbour.seal([.announce(AnnounceRecord(capabilities: 1 | AnnounceRecord.compact, signingKey: k.signing,
                                                            agreementKey: k.agreement, name: "valley"))], announce: true)
        }
        return (node, announce)
    }

    static func transfers(_ node: Node) -> Int { node.tables.first { $0.table == "transfers" }?.size ?? -1 }

    /// Meeting a neighbour with 400 bundles to hand it: before, 16 transfers started at every tick (four a second)
    /// whatever the link could send, all 400 within seven seconds, and each packet then moved every one's timer. Now
    /// a link gets no more than it can send in a minute (about 48 frames of 255 bytes at SF9).
    /// Fresh neighbours are sorted by id compared as two big-endian words (`Node.precedes`): the order of their bytes,
    /// as the sort by `lexicographicallyPrecedes` it replaced, for ids that differ in either word or only in one byte.
    @Test func neighbourIdsSortInTheOrderOfTheirBytes() throws {
        var rng = SplitMix64(seed: 19)
        var ids: [NodeID] = []
        for _ in 0..<64 {
            let bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            ids.append(try #require(NodeID(bytes: bytes)))
            // The same id but for one byte, in the first word or the second.
            var near = bytes
            near[Int(rng.next() % 16)] ^= 0x80
            ids.append(try #require(NodeID(bytes: near)))
        }
        for x in ids {
            for y in ids { #expect(Node.precedes(x, y) == x.bytes.lexicographicallyPrecedes(y.bytes)) }
        }
    }

    @Test func routingStartsNoMoreTransfersThanTheLinkCanSend() throws {
        let (node, announce) = try Self.engine(held: 400, madeByNeighbour: false)
        var now = Self.start + 1
        _ = node.receive(announce(), on: "radio", now: now)
        let room = max(16, Int(60 / Self.lora.airtime(bytes: Self.lora.mtu)))
        var most = 0
        while now < Self.start + 31 {
            now += 0.25
            _ = node.tick(now: now)
            most = max(most, Self.transfers(node))
        }
        #expect(most > 0, "no copy started for the neighbour")
        // Routing stops at the bound; a transfer started otherwise (a receipt, an identity) may add one or two.
        #expect(most <= room + 4, "\(most) transfers under way on a link that sends \(room) in 60 s")
        // The walk waits for room: no tick is asked for at once meanwhile.
        #expect(node.nextWakeup(now: now) > now + 0.001 || Self.transfers(node) < room)
    }

    /// 10,000 bundles in custody, a neighbour in range that cannot take any of them (they are its own, for a node not
    /// heard): the walk when it came looks at each once; the housekeepings after it (once a minute), with nothing
    /// changed, look at none (before, each looked at all 10,000).
    @Test func housekeepingWithNothingChangedLooksAtNoHeldBundle() throws {
        let (node, announce) = try Self.engine(held: 10_000, madeByNeighbour: true)
        var now = Self.start + 1
        _ = node.receive(announce(), on: "radio", now: now)
        while now < Self.start + 100 { now += 0.25; _ = node.tick(now: now) }
        let first = node.heldBundlesLookedAt
        #expect(first >= 10_000, "the walk when the neighbour came looked at \(first) held bundles")
        _ = node.receive(announce(), on: "radio", now: now)
        let end = now + 130
        var housekeepings = 0
        while now < end {
            now += 0.25
            let before = node.lastHousekeeping
            _ = node.tick(now: now)
            if node.lastHousekeeping != before { housekeepings += 1 }
        }
        #expect(housekeepings >= 2)
        #expect(node.heldBundlesLookedAt == first, "\(housekeepings) housekeepings with nothing changed looked at \(node.heldBundlesLookedAt - first) held bundles")
    }
}
