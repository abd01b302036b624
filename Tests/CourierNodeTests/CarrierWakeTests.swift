import CourierMedium
import CourierNode
import CourierWire
import Testing

/// While a carrier is reported (`channelBusy`), what can only go out in a packet (an ack, receipt parts, a transfer)
/// wakes the engine when the channel is free, not every millisecond meanwhile: the drill simulator reports every
/// carrier, and spent most of its time in such ticks.
@Suite struct CarrierWakeTests {
    @Test func anAckDueDuringACarrierWaitsForItsEnd() throws {
        let lora = LinkProperties(mtu: 255, bitsPerSecond: 1_760, duplex: .half, mediumChecksFrames: true,
                                  airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 1))
        let h = try EngineHarness(properties: lora)
        _ = h.run(for: 5)
        let p = h.addPeer()
        _ = h.run(for: 5)
        // Another station holds the channel for 20 s; meanwhile a neighbour's bundle arrives (an ack falls due).
        let end = h.now + 20
        _ = h.node.channelBusy(h.link, until: end, now: h.now)
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "The ford is passable again.", at: h.now)
        let got = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 7, bundle: b.encode()))])
        #expect(got.delivered.map(\.id) == [b.id])
        #expect(got.acks.isEmpty, "nothing is sent while the channel is busy")
        var ticks = 0
        var sent = 0
        while true {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            guard next < end else { break }
            h.now = next
            ticks += 1
            sent += h.read(h.node.tick(now: h.now)).packets.count
        }
        #expect(sent == 0)
        #expect(ticks < 5, "\(ticks) ticks during the 20 s carrier (one a millisecond would be 20,000)")
        let after = h.run(for: end - h.now + 5)
        #expect(after.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 7 } },
                "the ack goes once the channel is free")
    }
}
