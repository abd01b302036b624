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
}
