import CourierSim
import CourierStore
@testable import CourierNode
import Foundation
import Testing

/// Spray-and-focus (issue 13 point 7; SPEC 5.14 rules 3 and 4): a directed bundle without a route to a quiet node (one
/// that has sent nothing for longer than a route is used) goes the way the destination's last bundle came: its
/// copies to that neighbour first, and the last copy on along it, where halving alone left it waiting at a fork.
@Suite(.serialized, .timeLimit(.minutes(20))) struct SprayAndFocusTests {
    /// A path r0, p1 … p6, d, each of r0 and p1 … p6 with three more neighbours that lead nowhere (leaves): at every
    /// fork the last copy of a bundle has more than one neighbour to go to. d floods an alert at 30 s (every relay
    /// learns a route to it) and is then quiet (its last bundle, about its alert's receipts, at about 1,170 s); at
    /// 8,600 s, after the routes have aged out of use (4 neighbour timeouts, 7,200 s), r0 writes to d, 7 hops away.
    /// Halving alone leaves the copies at most five hops along (32, 16, …, 1), whatever the budget up to 32, each
    /// waiting at a fork.
    static let leaves = ForksScenario.leaves
    static var names: [String] { ForksScenario.names }
    static let json = ForksScenario.json(name: "forks", seed: 11, duration: 9600, traffic: """
        [{"at": 30, "from": "d", "to": "everyone", "kind": "alert", "bytes": 40},
         {"at": 8600, "from": "r0", "to": "d", "kind": "text", "bytes": 60}]
        """)

    @Test func aMessageToAQuietNodeGoesTheWayItsLastBundleCame() throws {
        let scenario = try Scenario.decode(Data(Self.json.utf8))
        let sim = try DrillSimulator(scenario: scenario)
        let d = Self.names.count - 1
        try sim.run(until: 8_590)
        // The premise: every relay heard d's alert, and r0 has no route to d it may use any more.
        #expect(sim.deliveredAt.count == d, "the alert reached \(sim.deliveredAt.count) of \(d) relays")
        let dest = sim.identities[d].nodeID.short
        #expect(sim.nodes[0].nextHop(for: dest, now: sim.now) == nil, "r0 still has a route to d: \(String(describing: sim.nodes[0].routes[dest]))")
        try sim.run()
        let text = try #require(sim.bundleOf[1])
        let arrived = sim.deliveredAt[.init(message: 1, recipient: d)]
        // Without the focus the copies waited at forks until the run's end (and after: d writes nothing).
        #expect(arrived.map { $0 - 8_600 < 600 } ?? false, "the text reached d after \(arrived.map { $0 - 8_600 } ?? .infinity) s")
        let holders = try (0..<d).filter { try sim.stores[$0].bundle(text) != nil }
        #expect(holders.count <= Tuning.copyBudget, "held by \(holders.map { sim.names[$0] })")
    }
}
