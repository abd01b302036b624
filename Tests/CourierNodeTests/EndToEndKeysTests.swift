import CourierLinks
import CourierNode
import CourierSim
import CourierStore
import CourierWire
import Testing

/// Keys through the federation, bundles kept until they can be read, and failure notices: the real engine on a
/// virtual clock (`MeshSimulator`), nodes in a line.
@Suite struct EndToEndKeysTests {
    func events(_ sim: MeshSimulator, _ node: Int) -> [NodeEvent] { sim.events.filter { $0.node == node }.map(\.event) }

    @Test func aBundleFromAnOriginWhoseKeysAreUnknownIsKeptAndReadWhenTheyArrive() throws {
        // 0 - 1 - 2, no identity floods: node 2 hears only node 1's announces, so it lacks node 0's keys.
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        let text = "The pump at the upper well has been broken for nine days."
        let g = try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[2].nodeID.short), text: text,
                               options: BundleOptions(kind: .grievance, encryptTo: sim.identities[2].publicKeys))
        sim.run(until: 1_800)
        // Kept (not lost), its keys asked for (a key request to node 0, answered), then read: no receipt before.
        let two = self.events(sim, 2)
        let waited = two.firstIndex { if case .waiting(g, _) = $0 { true } else { false } }
        #expect(waited != nil, "node 2 never reported the bundle as waiting for keys")
        let m = try #require(try sim.inbox(2).first { $0.id == g }, "never read at node 2")
        #expect(m.text == text && m.encrypted)
        #expect(try sim.stores[2].waiting().isEmpty)
        #expect(try sim.inbox(1).allSatisfy { $0.id != g }, "the relay in between cannot read it")
        #expect(self.events(sim, 0).contains { $0 == .receipt(g, by: sim.identities[2].nodeID.short) }, "the origin gets its receipt")
        // Node 2 now knows node 0's keys, and remembers them.
        #expect(try sim.stores[2].peers().contains { $0.nodeID == sim.identities[0].nodeID })
        #expect(!two.contains { if case .gaveUp = $0 { true } else { false } })
    }

    @Test func identityFloodsTeachEveryMemberEveryOthersKeys() throws {
        var o = MeshSimulator.Options()
        o.configure = { $0.floodIdentity = true }
        let n = 5
        let sim = try MeshSimulator(count: n, edges: (0..<(n - 1)).map { ($0, $0 + 1) }, options: o)
        sim.run(until: 600)
        for i in 0..<n {
            let known = Set(try sim.stores[i].peers().map(\.nodeID))
            for j in 0..<n where j != i { #expect(known.contains(sim.identities[j].nodeID), "node \(i) lacks node \(j)'s keys") }
        }
        // The ends encrypt to each other with what they learnt, and read each other at once.
        let keys = try sim.stores[0].peers().first { $0.nodeID == sim.identities[n - 1].nodeID }!.keys
        let g = try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[n - 1].nodeID.short), text: "Sealed, five hops.",
                               options: BundleOptions(kind: .grievance, encryptTo: keys))
        sim.run(until: 1_200)
        #expect(try sim.inbox(n - 1).first { $0.id == g }?.encrypted == true)
        #expect(!self.events(sim, n - 1).contains { if case .waiting = $0 { true } else { false } })
    }

    @Test func aRefusedBundleIsReportedAndItsOriginTold() throws {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        // Node 1 accepts only itself and node 2.
        sim.nodes[1].setTrust(.members([sim.identities[1].publicKeys, sim.identities[2].publicKeys]))
        let t = try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Is the bridge open?")
        sim.run(until: 600)
        let feed = try sim.stores[1].events(after: 0)
        #expect(feed.contains { $0.type == .refused && $0.bundle == t.description && $0.detail?.contains("not a federation member") == true })
        #expect(try sim.stores[1].snapshot().refusedTotal >= 1)
        let notice = self.events(sim, 0).contains { $0 == .failureNotice(t, reason: .refused, by: sim.identities[1].nodeID.short) }
        #expect(notice, "the origin was not told")
        #expect(try sim.stores[0].events(after: 0).contains { $0.type == .failed && $0.bundle == t.description })
        #expect(try sim.inbox(0).contains { try $0.kind == .failure && FailureContent.decode($0.content).first?.id == t })
    }

    @Test func aBundleThatExpiresInARelaysCustodyIsReportedToItsOrigin() throws {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        // Node 2 makes itself known (routes towards it form), then goes off the air.
        _ = try sim.submit(from: 2, kind: .text, to: .everyone, text: "Clinic open until six.")
        sim.run(until: 180)
        sim.setOnline(2, false)
        let t = try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Bring the vaccine box.",
                               options: BundleOptions(kind: .text, lifetime: 3))
        sim.run(until: 900)
        #expect(self.events(sim, 1).contains { if case .gaveUp(t, let why) = $0 { why.contains("expired") } else { false } },
                "node 1 did not report giving it up")
        #expect(self.events(sim, 0).contains { $0 == .failureNotice(t, reason: .expired, by: sim.identities[1].nodeID.short) })
    }

    @Test func aDirectedBundleEvictedFromOurCustodyIsReportedToItsOrigin() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        sc.quotaBytes = 1_000
        let store = try Store(path: ":memory:", configuration: sc)
        let now = 1_790_000_000.0
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: NetworkKey.random(), name: "ridge"), store: store,
                            links: [], now: now)
        let origin = NodeIdentity(), elsewhere = NodeIdentity()
        var g = SplitMix64(seed: 9)
        func noise(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) } }
        let created = CourierTime.minutes(unixSeconds: Int64(now))
        // A directed bundle we hold in custody for another node, then an alert that needs its room.
        let directed = try CourierBundle.make(
            kind: .text, destination: .node(elsewhere.nodeID.short), content: noise(500), origin: origin, created: created, sequence: 1,
            options: BundleOptions(kind: .text), compressor: BodyCompressor())
        let alert = try CourierBundle.make(
            kind: .alert, destination: .everyone, content: noise(500), origin: origin, created: created, sequence: 2,
            options: BundleOptions(kind: .alert), compressor: BodyCompressor())
        // The alert's origin is proven here (its keys are known), so its alert is taken in at once.
        try store.rememberKeys(origin.publicKeys, name: nil)
        node.refreshKeys()
        var intake = try ArchiveImport(config: node.config, store: store)
        #expect(intake.take(directed.encode(), now: now) == .stored)
        #expect(intake.take(alert.encode(), now: now + 1) == .delivered)
        #expect(try store.events(after: 0).contains { $0.type == .evicted && $0.bundle == directed.id.description })
        // The origin is told, with reason 4 (evicted).
        let notices = try store.held(kind: .failure, origin: node.me.short)
        #expect(notices.count == 1 && notices.first?.destination == .node(origin.nodeID.short))
        let notice = try #require(notices.first)
        let q = try #require(try store.bundle(notice.id))
        let content = try CourierBundle(decoding: q.data).content(compressor: BodyCompressor())
        #expect(try FailureContent.decode(content).map(\.reason) == [.evicted])
        #expect(try FailureContent.decode(content).map(\.id) == [directed.id])
    }
}
