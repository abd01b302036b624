import CourierLinks
import CourierNode
import CourierSim
import CourierStore
import CourierWire
import Testing

/// Deterministic multi-node runs of the real engine on a virtual clock with lossy in-memory radio links.
@Suite struct MeshTests {
    func noDuplicates(_ sim: MeshSimulator) {
        #expect(sim.maxDeliveriesOfOneBundle <= 1, "a bundle reached some inbox twice")
        for i in 0..<sim.nodes.count {
            let ids = (try? sim.inbox(i))?.map(\.id) ?? []
            #expect(Set(ids).count == ids.count)
        }
    }

    @Test func triangleCarriesGoodsAndMinutesIntact() throws {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2), (0, 2)])
        sim.run(until: 60)
        let minutes = String(repeating: "Assembly of the water committee, 12 present. Decided: rota by quarter, east on Mondays. ", count: 30)
        let m = try sim.submit(from: 0, kind: .minutes, to: .everyone, text: minutes)
        let g = try sim.submit(from: 2, kind: .grievance, to: .node(sim.identities[1].nodeID.short),
                               text: "The pump at the upper well has been broken for nine days.")
        let aid = try sim.submit(from: 1, kind: .aidRequest, to: .everyone, text: "Need 20 sacks of flour for the displaced families.",
                                 options: BundleOptions(kind: .aidRequest, respondBy: 360))
        sim.run(until: 1_800)
        for i in [1, 2] { #expect(try sim.inbox(i).first { $0.id == m }?.text == minutes, "minutes intact at node \(i)") }
        #expect(try sim.inbox(1).first { $0.id == g }?.text == "The pump at the upper well has been broken for nine days.")
        #expect(!sim.has(0, g))
        for i in [0, 2] { #expect(try sim.inbox(i).first { $0.id == aid }?.respondBy == 360) }
        // The grievance's origin learns it was delivered.
        #expect(sim.events.contains { $0.node == 2 && $0.event == .receipt(g, by: sim.identities[1].nodeID.short) })
        self.noDuplicates(sim)
        print("triangle: \(sim.packetsSent.reduce(0, +)) packets, minutes carried by \(sim.packetsCarrying[m] ?? 0)")
        #expect(sim.packetsSent.reduce(0, +) > 0)
    }

    @Test func alertReachesAll20NodesWith20PercentLossCheaperThanNaiveFlooding() throws {
        var o = MeshSimulator.Options()
        o.loss = 0.2
        o.seed = 42
        // As `relay run` does: every node floods its identity, so members far away can prove the alert's origin
        // (an alert from an origin whose keys are unknown is held until they arrive, SPEC 6.12).
        o.configure = { $0.floodIdentity = true }
        let n = 20
        let edges = MeshSimulator.randomMesh(count: n, degree: 4, seed: 42)
        let sim = try MeshSimulator(count: n, edges: edges, options: o)
        // The identity floods of the federation's start are over (relays that have run a while): courier-bench mesh
        // shows the cost of an alert sent 120 s after the start too.
        sim.run(until: 900)
        let start = sim.elapsed
        let alert = try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Flash flood: the river is rising fast. Move to high ground now.")
        sim.run(until: 900 + 3_600)
        for i in 1..<n { #expect(sim.has(i, alert), "node \(i) did not get the alert") }
        self.noDuplicates(sim)
        // Everything put on the air to spread it: packets carrying it (floods, repairs), summaries (but not those
        // riding on periodic announces, which go out anyway), acks that are not for receipts.
        let window = sim.transmissions.filter { $0.time >= start }
        let carrying = window.filter { $0.bundles.contains(alert) }.count
        let summaries = window.filter { !$0.bundles.contains(alert) && $0.hasSummary && !$0.periodicAnnounce }.count
        let receiptBundles = Set(window.filter { $0.receiptsFor.contains(alert) }.flatMap(\.bundles))
        let acks = window.filter { $0.bundles.isEmpty && !$0.hasSummary && $0.hasAck && ($0.acked.isEmpty || !$0.acked.allSatisfy { receiptBundles.contains($0) }) }.count
        let receipts = window.filter { !$0.bundles.contains(alert) && $0.receiptsFor.contains(alert) }.count
        let ours = carrying + summaries + acks
        // Naive flooding on the same mesh and loss model: every node that gets it transmits it once, and some miss it.
        let naive = MeshSimulator.naiveFlood(count: n, edges: edges, loss: 0.2, origin: 0, seed: 42)
        print("alert over 20 nodes, 20% loss: \(ours) transmissions spread it (\(carrying) carrying it, \(summaries) summaries, \(acks) acks), "
              + "and \(receipts) more carried receipts to the origin; naive flooding: \(naive.transmissions) for \(naive.reached) of \(n - 1) nodes")
        #expect(ours < naive.transmissions)
        #expect(Double(ours) / Double(n - 1) < Double(naive.transmissions) / Double(max(naive.reached, 1)))
        // Receipts tell the origin who has seen it.
        let seenBy = Set(sim.events.filter { $0.node == 0 }.compactMap { e -> ShortID? in
            if case .receipt(let id, let by) = e.event, id == alert { return by } else { return nil }
        })
        #expect(seenBy.count >= n - 3, "receipts from \(seenBy.count) of \(n - 1)")
    }

    @Test func aBundleForANodeOfflineForADayIsDeliveredWhenItReturns() throws {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        sim.setOnline(2, false)
        let id = try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Clinic shift moved to Thursday.")
        sim.run(until: 24 * 3_600)
        #expect(!sim.has(2, id))
        sim.setOnline(2, true)
        sim.run(until: 24 * 3_600 + 3_600)
        #expect(sim.has(2, id))
        self.noDuplicates(sim)
        print("offline day: delivered \(Int(sim.deliveryTimes[id]![2]! - MeshSimulator.epoch - 24 * 3_600)) s after return, \(sim.packetsCarrying[id] ?? 0) transmissions")
    }

    @Test func aDataMuleCarriesBundlesBetweenIslandsThatNeverMeet() throws {
        // Island A: 0-1. Island B: 2-3. Node 4 is a courier's relay that visits one island at a time.
        let sim = try MeshSimulator(count: 5, edges: [(0, 1), (2, 3)])
        sim.run(until: 60)
        let ab = try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[3].nodeID.short), text: "From island A to the committee on B.")
        let ba = try sim.submit(from: 2, kind: .aidRequest, to: .node(sim.identities[1].nodeID.short), text: "B asks A for insulin.")
        var t = 60.0
        for visit in 0..<6 {
            let island = visit % 2 == 0 ? [0, 1] : [2, 3]
            for i in island { sim.connect(4, i) }
            t += 1_800
            sim.run(until: t)
            for i in island { sim.connect(4, i, false) }
            t += 600
            sim.run(until: t)
        }
        #expect(sim.has(3, ab), "A to B")
        #expect(sim.has(1, ba), "B to A")
        self.noDuplicates(sim)
        print("data mule: \(sim.packetsSent.reduce(0, +)) packets in all")
    }

    @Test func quietModeHoldsTransmissionsAndReleasesThem() throws {
        let sim = try MeshSimulator(count: 2, edges: [(0, 1)])
        sim.run(until: 60)
        try sim.setQuiet(0, true)
        let before = sim.packetsSent[0]
        let id = try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Radio silence: checkpoint activity near the bridge.")
        sim.run(until: 3_600)
        #expect(sim.packetsSent[0] == before, "a quiet node transmitted")
        #expect(!sim.has(1, id))
        // It still receives and stores.
        let other = try sim.submit(from: 1, kind: .text, to: .everyone, text: "Bread at the school at 7.")
        sim.run(until: 3_700)
        #expect(sim.has(0, other))
        try sim.setQuiet(0, false)
        sim.run(until: 5_000)
        #expect(sim.has(1, id))
        self.noDuplicates(sim)
    }

    @Test func runsAreDeterministicFromTheSeed() throws {
        func run() throws -> [Int] {
            var o = MeshSimulator.Options()
            o.loss = 0.2
            o.seed = 7
            let sim = try MeshSimulator(count: 8, edges: MeshSimulator.randomMesh(count: 8, degree: 3, seed: 7), options: o)
            sim.run(until: 60)
            try sim.submit(from: 3, kind: .alert, to: .everyone, text: "Storm warning for tonight.")
            sim.run(until: 1_000)
            return sim.packetsSent
        }
        #expect(try run() == run())
    }
}
