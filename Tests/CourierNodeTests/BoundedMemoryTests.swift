import CourierNode
import CourierSim
import CourierWire
import Testing

/// Issue 11 point 5: every in-memory table of the engine stays bounded on a long-running relay. A simulated month of
/// traffic between two relays (the real engine and store, virtual clock): a directed message every hour to the
/// neighbour, one every three hours to a node never in reach (a copy given to the neighbour, custody kept until
/// expiry), an alert every six hours; at the end, no table is larger than what is held now or its fixed cap, though
/// about a thousand bundles passed.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct BoundedMemoryTests {
    @Test func everyEngineTableStaysBoundedThroughASimulatedMonth() throws {
        let sim = try MeshSimulator(count: 2, edges: [(0, 1)])
        let away = ShortID(0x0BAD_F00D)
        let day = 86_400.0
        let days = 30
        let short = BundleOptions(kind: .text, lifetime: 24 * 60)
        var made = 0
        for hour in 0..<(days * 24) {
            sim.run(until: Double(hour) * 3_600 + 60)
            try sim.submit(from: 0, kind: .text, to: .node(sim.identities[1].nodeID.short), text: "Hour \(hour): all well at the ford.", options: short)
            made += 1
            if hour % 3 == 0 {
                try sim.submit(from: 1, kind: .text, to: .node(away), text: "Hour \(hour): for the far valley.", options: short)
                made += 1
            }
            if hour % 6 == 0 {
                try sim.submit(from: 1, kind: .alert, to: .everyone, text: "Check \(hour): the road is open.")
                made += 1
            }
        }
        sim.run(until: Double(days) * day + 3_600)
        #expect(made > 1_000)
        #expect(try sim.inbox(1).count >= days * 24, "the hourly messages were not delivered")
        for i in 0..<2 {
            let held = try sim.stores[i].held().count
            let tables = sim.nodes[i].tables
            print("node \(i) after \(days) simulated days, \(held) bundles held: "
                  + tables.filter { $0.size > 0 }.map { "\($0.table) \($0.size)" }.joined(separator: ", "))
            for t in tables {
                // Tables kept per held bundle are at most what is held; those with a cap, at most the cap; the others
                // (per node: two nodes here), a handful.
                let caps = ["directedSeen": 8_192, "receiptOrigins": 1_024, "refusedReported": 4_096, "handBacks": 4_096, "arrived": 8_192, "reassembly": Reassembler.maxCompleted]
                let bound = ["knownLocal", "replicas", "copyBudgets", "cameFrom", "told", "transfers", "holders", "heardOf", "heldIndex"].contains(t.table) ? held : caps[t.table] ?? 10
                #expect(t.size <= bound, "node \(i): \(t.table) has \(t.size) entries (bound \(bound): \(t.bound))")
            }
        }
    }
}
