import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Testing

/// Hello answers are bounded per link as well as per neighbour (SPEC 9 rule 7): hellos from four different members
/// get three announces at once and the fourth a minute later, never lost; a hello repeated by one of them within two
/// minutes gets none. (The relay test `FloodTests` replays a real relay's hello; this one needs four senders.)
@Suite struct HelloLimitTests {
    @Test func fourNeighboursHellosGetThreeAnswersAtOnceAndTheFourthWithinAMinute() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let key = NetworkKey.random()
        let me = NodeIdentity()
        let t0 = 1_790_000_000.0
        let node = try Node(config: NodeConfig(identity: me, networkKey: key, name: "hill"), store: store,
                            links: [LinkInfo(name: "ip", properties: LinkFactory.tcpProperties())], now: t0, seed: 7)
        let opener = PacketOpener(networkKey: key)
        /// Announces in what the node sent.
        func announces(_ out: [NodeOutput]) -> Int {
            out.reduce(0) { n, o in
                guard case .send(_, let bytes, _) = o, let p = try? opener.open(bytes, candidates: { $0 == me.nodeID.short ? [me.nodeID] : [] })
                else { return n }
                return n + p.records.filter { if case .announce = $0 { true } else { false } }.count
            }
        }
        #expect(announces(node.linkUp("ip", now: t0)) == 1, "our own hello")
        let senders = (0..<4).map { _ in NodeIdentity() }
        var counters = [UInt32](repeating: 0, count: 4)
        func announce(_ i: Int, hello: Bool, at t: Double) -> [NodeOutput] {
            counters[i] += 1
            let k = senders[i].publicKeys
            let a = AnnounceRecord(capabilities: 1 | (hello ? AnnounceRecord.hello : 0), signingKey: k.signing, agreementKey: k.agreement)
            let bytes = PacketSealer(networkKey: key, sender: senders[i].nodeID).seal([.announce(a)], counter: counters[i], announceSalt: 1)
            return node.receive(bytes, on: "ip", now: t)
        }
        // The four are neighbours already (heard a moment ago: no contact announce for them below).
        for i in 0..<4 { _ = announce(i, hello: false, at: t0 + 1) }
        #expect(announces(announce(0, hello: true, at: t0 + 11)) == 1)
        #expect(announces(announce(1, hello: true, at: t0 + 12)) == 1)
        #expect(announces(announce(2, hello: true, at: t0 + 13)) == 1)
        #expect(announces(announce(3, hello: true, at: t0 + 14)) == 0, "the link's bucket of 3 is empty")
        #expect(announces(announce(0, hello: true, at: t0 + 15)) == 0, "the same neighbour again within 2 minutes")
        #expect(announces(node.tick(now: t0 + 40)) == 0)
        let wake = node.nextWakeup(now: t0 + 40)
        #expect(wake <= t0 + 74, "the engine wakes for the waiting answer")
        #expect(announces(node.tick(now: max(wake, t0 + 40.001))) == 1, "the fourth hello is answered once the bucket refills")
        #expect(node.stats.helloAnswers == 4 && node.stats.hellosLimited == 2)
        // Two minutes on, the first neighbour's hello is answered again (it may have restarted once more).
        #expect(announces(announce(0, hello: true, at: t0 + 200)) == 1)
    }
}
