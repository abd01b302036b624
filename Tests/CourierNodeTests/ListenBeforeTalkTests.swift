import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Testing

/// The listen-before-talk hook: while a half-duplex channel is reported busy, the engine transmits nothing on it.
@Suite struct ListenBeforeTalkTests {
    @Test func nothingIsSentWhileTheChannelIsBusy() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let lora = LinkProperties(mtu: 254, bitsPerSecond: 1_760, duplex: .half, mediumChecksFrames: true,
                                  airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 1))
        let t0 = 1_790_000_000.0
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: NetworkKey.random(), name: "hill"), store: store,
                            links: [LinkInfo(name: "radio", properties: lora)], now: t0, seed: 7)
        func sends(_ out: [NodeOutput]) -> Int { out.filter { if case .send = $0 { true } else { false } }.count }
        #expect(sends(node.linkUp("radio", now: t0)) >= 1, "the hello goes out at once")
        // Another station holds the channel for 30 s.
        _ = node.channelBusy("radio", until: t0 + 30, now: t0 + 5)
        let (_, out) = try node.submit(kind: .alert, destination: .everyone, content: Array("Checkpoint on the valley road.".utf8), now: t0 + 5)
        #expect(sends(out) == 0)
        #expect(sends(node.tick(now: t0 + 20)) == 0)
        #expect(node.nextWakeup(now: t0 + 20) <= t0 + 30 + 0.01, "the engine wakes when the channel is free")
        #expect(sends(node.tick(now: t0 + 30.5)) >= 1, "and sends then")
        // A busy report that ends earlier than what is already planned changes nothing.
        #expect(node.channelBusy("radio", until: t0 + 1, now: t0 + 31).isEmpty)
    }
}
