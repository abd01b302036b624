import CourierNode
import CourierWire

/// The simulator scenarios of the engine's tests (Tests/CourierNodeTests) and a few seeds of the mesh benchmark
/// (`courier-bench mesh`), by name: the golden trace records every output of each (`MeshSimulator.trace`). The same
/// code in the same order as the tests and the benchmark, so a change of behaviour there shows here.
public enum GoldenScenarios {
    public struct Scenario: Sendable {
        public let name: String
        public let run: @Sendable () throws -> MeshSimulator
    }

    /// The mesh benchmark's seeds in the trace (its default runs 1...20; two keep the test short, and its control runs
    /// without the alert repeat their first 900 s).
    public static let benchSeeds: [UInt64] = [1, 2]

    public static var all: [Scenario] {
        var list: [Scenario] = [
            Scenario(name: "triangle", run: triangle),
            Scenario(name: "alert-20-nodes-seed-42", run: alert20),
            Scenario(name: "offline-day", run: offlineDay),
            Scenario(name: "data-mule", run: dataMule),
            Scenario(name: "quiet-mode", run: quietMode),
            Scenario(name: "determinism-seed-7", run: determinism),
            Scenario(name: "keys-unknown", run: keysUnknown),
            Scenario(name: "identity-floods", run: identityFloods),
            Scenario(name: "refused-origin", run: refusedOrigin),
            Scenario(name: "expires-in-custody", run: expiresInCustody),
        ]
        for seed in Self.benchSeeds {
            list.append(Scenario(name: "bench-mesh-seed-\(seed)", run: { try benchAlert(seed: seed) }))
        }
        return list
    }

    public static func named(_ name: String) -> Scenario? { Self.all.first { $0.name == name } }

    // MeshTests.triangleCarriesGoodsAndMinutesIntact
    static func triangle() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2), (0, 2)])
        sim.run(until: 60)
        let minutes = String(repeating: "Assembly of the water committee, 12 present. Decided: rota by quarter, east on Mondays. ", count: 30)
        try sim.submit(from: 0, kind: .minutes, to: .everyone, text: minutes)
        try sim.submit(from: 2, kind: .grievance, to: .node(sim.identities[1].nodeID.short),
                       text: "The pump at the upper well has been broken for nine days.")
        try sim.submit(from: 1, kind: .aidRequest, to: .everyone, text: "Need 20 sacks of flour for the displaced families.",
                       options: BundleOptions(kind: .aidRequest, respondBy: 360))
        sim.run(until: 1_800)
        return sim
    }

    // MeshTests.alertReachesAll20NodesWith20PercentLossCheaperThanNaiveFlooding
    static func alert20() throws -> MeshSimulator {
        var o = MeshSimulator.Options()
        o.loss = 0.2
        o.seed = 42
        o.configure = { $0.floodIdentity = true }
        let sim = try MeshSimulator(count: 20, edges: MeshSimulator.randomMesh(count: 20, degree: 4, seed: 42), options: o)
        sim.run(until: 900)
        try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Flash flood: the river is rising fast. Move to high ground now.")
        sim.run(until: 900 + 3_600)
        return sim
    }

    // MeshTests.aBundleForANodeOfflineForADayIsDeliveredWhenItReturns
    static func offlineDay() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        sim.setOnline(2, false)
        try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Clinic shift moved to Thursday.")
        sim.run(until: 24 * 3_600)
        sim.setOnline(2, true)
        sim.run(until: 24 * 3_600 + 3_600)
        return sim
    }

    // MeshTests.aDataMuleCarriesBundlesBetweenIslandsThatNeverMeet
    static func dataMule() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 5, edges: [(0, 1), (2, 3)])
        sim.run(until: 60)
        try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[3].nodeID.short), text: "From island A to the committee on B.")
        try sim.submit(from: 2, kind: .aidRequest, to: .node(sim.identities[1].nodeID.short), text: "B asks A for insulin.")
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
        return sim
    }

    // MeshTests.quietModeHoldsTransmissionsAndReleasesThem
    static func quietMode() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 2, edges: [(0, 1)])
        sim.run(until: 60)
        try sim.setQuiet(0, true)
        try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Radio silence: checkpoint activity near the bridge.")
        sim.run(until: 3_600)
        try sim.submit(from: 1, kind: .text, to: .everyone, text: "Bread at the school at 7.")
        sim.run(until: 3_700)
        try sim.setQuiet(0, false)
        sim.run(until: 5_000)
        return sim
    }

    // MeshTests.runsAreDeterministicFromTheSeed
    static func determinism() throws -> MeshSimulator {
        var o = MeshSimulator.Options()
        o.loss = 0.2
        o.seed = 7
        let sim = try MeshSimulator(count: 8, edges: MeshSimulator.randomMesh(count: 8, degree: 3, seed: 7), options: o)
        sim.run(until: 60)
        try sim.submit(from: 3, kind: .alert, to: .everyone, text: "Storm warning for tonight.")
        sim.run(until: 1_000)
        return sim
    }

    // EndToEndKeysTests.aBundleFromAnOriginWhoseKeysAreUnknownIsKeptAndReadWhenTheyArrive
    static func keysUnknown() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[2].nodeID.short),
                       text: "The pump at the upper well has been broken for nine days.",
                       options: BundleOptions(kind: .grievance, encryptTo: sim.identities[2].publicKeys))
        sim.run(until: 1_800)
        return sim
    }

    // EndToEndKeysTests.identityFloodsTeachEveryMemberEveryOthersKeys
    static func identityFloods() throws -> MeshSimulator {
        var o = MeshSimulator.Options()
        o.configure = { $0.floodIdentity = true }
        let sim = try MeshSimulator(count: 5, edges: (0..<4).map { ($0, $0 + 1) }, options: o)
        sim.run(until: 600)
        try sim.submit(from: 0, kind: .grievance, to: .node(sim.identities[4].nodeID.short), text: "Sealed, five hops.",
                       options: BundleOptions(kind: .grievance, encryptTo: sim.identities[4].publicKeys))
        sim.run(until: 1_200)
        return sim
    }

    // EndToEndKeysTests.aRefusedBundleIsReportedAndItsOriginTold
    static func refusedOrigin() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        sim.nodes[1].setTrust(.members([sim.identities[1].publicKeys, sim.identities[2].publicKeys]))
        try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Is the bridge open?")
        sim.run(until: 600)
        return sim
    }

    // EndToEndKeysTests.aBundleThatExpiresInARelaysCustodyIsReportedToItsOrigin
    static func expiresInCustody() throws -> MeshSimulator {
        let sim = try MeshSimulator(count: 3, edges: [(0, 1), (1, 2)])
        sim.run(until: 60)
        try sim.submit(from: 2, kind: .text, to: .everyone, text: "Clinic open until six.")
        sim.run(until: 180)
        sim.setOnline(2, false)
        try sim.submit(from: 0, kind: .text, to: .node(sim.identities[2].nodeID.short), text: "Bring the vaccine box.",
                       options: BundleOptions(kind: .text, lifetime: 3))
        sim.run(until: 900)
        return sim
    }

    // courier-bench mesh: one seed of the 20-node alert scenario (defaults: loss 0.2, degree 4).
    static func benchAlert(seed: UInt64) throws -> MeshSimulator {
        var o = MeshSimulator.Options()
        o.loss = 0.2
        o.seed = seed
        o.configure = { $0.floodIdentity = true }
        let edges = MeshSimulator.randomMesh(count: 20, degree: 4.0, seed: seed)
        let sim = try MeshSimulator(count: 20, edges: edges, options: o)
        let warmUp = 900.0
        sim.run(until: warmUp)
        try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Flash flood: the river is rising fast. Move to high ground now.")
        sim.run(until: warmUp + 3_600)
        return sim
    }
}
