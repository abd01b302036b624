import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Testing

/// SPEC 8.5 rule 1: the next hop acknowledges a directed transfer at least once per window of fragments, also while
/// more fragments keep coming (a sender may keep more than the reference's 8 in flight).
@Suite struct PartialAckTests {
    @Test func aWindowOfFragmentsIsAcknowledgedWhileMoreKeepComing() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        // A half-duplex radio link (a transparent UART module at 9600 baud).
        let radio = LinkProperties(mtu: 254, bitsPerSecond: 9_600, duplex: .half, mediumChecksFrames: false,
                                   airtime: .serial(baud: 9_600, overhead: 7))
        let key = NetworkKey.random()
        let t0 = 1_790_000_000.0
        let me = NodeIdentity()
        let node = try Node(config: NodeConfig(identity: me, networkKey: key, name: "hill"), store: store,
                            links: [LinkInfo(name: "radio", properties: radio)], now: t0, seed: 3)
        _ = node.linkUp("radio", now: t0)

        // The sender: announces itself, then streams 24 fragments of one directed transfer without pausing.
        let sender = NodeIdentity()
        let sealer = PacketSealer(networkKey: key, sender: sender.nodeID)
        let opener = PacketOpener(networkKey: key)
        var counter: UInt32 = 1
        let announce = sealer.seal([.announce(AnnounceRecord(capabilities: 1, signingKey: sender.publicKeys.signing,
                                                              agreementKey: sender.publicKeys.agreement))],
                                   counter: counter, announceSalt: 7)
        var now = t0 + 1
        _ = node.receive(announce, on: "radio", now: now)
        var rng = SplitMix64(seed: 11)
        let bundle = (0..<6_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let fragments = try Fragmenter.records(bundle: bundle, mtu: 254, transfer: 42, nextHop: me.nodeID.short)
        #expect(fragments.count > 24)
        let gap = radio.airtime(bytes: 254)

        /// The ack entries the node sent for transfer 42.
        func acks(_ out: [NodeOutput]) -> [AckEntry] {
            out.flatMap { o -> [AckEntry] in
                guard case .send(_, let bytes, _) = o,
                      let p = try? opener.open(bytes, candidates: { $0 == me.nodeID.short ? [me.nodeID] : [] })
                else { return [] }
                return p.records.flatMap { r -> [AckEntry] in
                    guard case .ack(let a) = r, a.target == sender.nodeID.short else { return [] }
                    return a.entries.filter { $0.transfer == 42 }
                }
            }
        }
        var heard: [(after: Int, entry: AckEntry)] = []
        for i in 0..<24 {
            counter += 1
            now += gap
            heard += acks(node.receive(sealer.seal([fragments[i]], counter: counter), on: "radio", now: now)).map { (i + 1, $0) }
            heard += acks(node.tick(now: now + gap / 2)).map { (i + 1, $0) }
        }
        let first = try #require(heard.first, "no ack while 24 fragments arrived back to back")
        #expect(first.after == 8, "the first ack came after \(first.after) fragments, not after a window of 8")
        #expect(first.entry.received == 8)
        #expect(heard.contains { $0.after == 16 && $0.entry.received == 16 }, "no ack after the second window: \(heard.map(\.after))")
    }
}
