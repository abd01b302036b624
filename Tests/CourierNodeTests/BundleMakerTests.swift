import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Testing

/// `relay send` without an engine (issue 11 point 3): the bundle maker signs, numbers and queues a bundle as local,
/// puts it in this node's inbox when it is for this node, and an engine on the same store adopts and sends it.
@Suite struct BundleMakerTests {
    @Test func aBundleMadeWithoutAnEngineIsSignedQueuedDeliveredHereAndAdoptedBySending() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let me = NodeIdentity()
        let now = 1_790_000_000.0
        let maker = BundleMaker(identity: me, store: store)
        let alert = try maker.submit(kind: .alert, destination: .everyone, content: Array("Road closed at the pass.".utf8), options: nil, now: now)
        let text = try maker.submit(kind: .text, destination: .node(ShortID(0x0BAD_F00D)), content: Array("For the valley.".utf8), options: nil, now: now)
        #expect(alert.sequence != text.sequence)
        let q = try #require(try store.bundle(alert))
        #expect(q.isLocal && q.custody)
        let b = try CourierBundle(decoding: q.data)
        #expect(b.isSigned && b.verifySignature(originKeys: me.publicKeys), "not origin-signed")
        // The alert is for everyone, this node too; the text is not.
        #expect(try store.inbox(limit: 10).map(\.id) == [alert])
        // A running engine on the same store adopts them from the change feed and sends the alert.
        let lan = LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none)
        let node = try Node(config: NodeConfig(identity: me, networkKey: NetworkKey.random(), name: "hill"), store: store,
                            links: [LinkInfo(name: "lan", properties: lan)], now: now)
        _ = node.linkUp("lan", now: now)
        let out = node.adopt([(alert, false), (text, false)], now: now + 1)
        #expect(out.contains { if case .send(_, _, let carrying) = $0 { carrying.contains(alert) } else { false } }, "the alert was not sent")
    }

    /// `relay send` stores a bundle while the engine starts, just before it indexes what is held: the bundle is in the
    /// index and in the feed after the engine's position (`feedPosition`, read first), so the runtime adopts it and it is
    /// sent. Had the position been read after the index, a bundle stored between the two reads would be in the index
    /// only: a directed one waits for a route, a flood for a neighbour's summary. One stored before the start is in the
    /// index only, not read again from the feed.
    @Test func aBundleStoredWhileTheEngineStartsIsInTheFeedAfterItsPosition() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let storage = FlakyStorage(store)
        let me = NodeIdentity()
        let now = 1_790_000_000.0
        let maker = BundleMaker(identity: me, store: store)
        let before = try maker.submit(kind: .alert, destination: .everyone, content: Array("Before the start.".utf8), options: nil, now: now)
        var during: Result<BundleID, any Error>?
        storage.beforeHeld = {
            during = Result { try maker.submit(kind: .alert, destination: .everyone, content: Array("While it starts.".utf8), options: nil, now: now) }
        }
        let lan = LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none)
        let node = try Node(config: NodeConfig(identity: me, networkKey: NetworkKey.random(), name: "hill"), store: storage,
                            links: [LinkInfo(name: "lan", properties: lan)], now: now)
        let stored = try #require(during, "nothing was stored while the engine started").get()
        // What the runtime reads: local bundles enqueued after the engine's position.
        let fed = try store.events(after: node.feedPosition).filter { $0.type == .enqueued && $0.local }.compactMap { $0.bundle.flatMap(BundleID.init) }
        #expect(fed == [stored])
        _ = node.linkUp("lan", now: now)
        let out = node.adopt(fed.map { ($0, false) }, now: now + 1)
        #expect(out.contains { if case .send(_, _, let carrying) = $0 { carrying.contains(stored) } else { false } }, "the bundle stored while the engine started was not sent")
        #expect(before != stored)
    }
}
