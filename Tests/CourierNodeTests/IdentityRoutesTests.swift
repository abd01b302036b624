import CourierSim
import CourierStore
@testable import CourierNode
import Foundation
import Testing

/// The drill's relays may start with the routes an established federation's identity floods left them
/// (`DrillSimulator(identityRoutes:)`, `relay drill simulate --identity-routes`): the drill gives every relay the
/// members' keys without simulating those floods, and so started with no route at all. A message to a relay that sent
/// nothing during the run had no way to go: on regional-200 (seed 200) 787 of the 863 holders of undelivered directed
/// messages had no route to the destination.
@Suite(.serialized, .timeLimit(.minutes(20))) struct IdentityRoutesTests {
    /// SprayAndFocusTests' path of forks (r0, p1 … p6, d, each fork with three leaves that lead nowhere), but d sends
    /// nothing at all: r0 writes to it at 120 s, 7 hops away.
    static let leaves = ForksScenario.leaves
    static var names: [String] { ForksScenario.names }
    static let json = ForksScenario.json(name: "quiet forks", seed: 12, duration: 3600, traffic: """
        [{"at": 120, "from": "r0", "to": "d", "kind": "text", "bytes": 60}]
        """)

    /// When the text reached d (seconds after it was written), nil if it did not within the run.
    func run(_ sim: DrillSimulator) throws -> Double? {
        try sim.run()
        return sim.deliveredAt[.init(message: 0, recipient: Self.names.count - 1)].map { $0 - 120 }
    }

    @Test func aMessageToARelayThatSentNothingGoesTheWayItsIdentityCame() throws {
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.json.utf8)), identityRoutes: true)
        let d = Self.names.count - 1
        let dest = sim.identities[d].nodeID.short
        // The premise: r0's route to d goes through p1 and is a day old (a hint for copies, not a route in use).
        let r = try #require(sim.nodes[0].routes[dest])
        #expect(r.via == sim.identities[1 + Self.leaves].nodeID && r.hops == 6, "r0's route to d: through \(r.via.short), \(r.hops) hops")
        #expect(sim.nodes[0].usableRoute(dest, now: DrillSimulator.epoch) == nil)
        let arrived = try self.run(sim)
        #expect(arrived.map { $0 < 600 } ?? false, "the text reached d after \(arrived ?? .infinity) s")
        let text = try #require(sim.bundleOf[0])
        let holders = try (0..<d).filter { try sim.stores[$0].bundle(text) != nil }
        #expect(holders.count <= Tuning.copyBudget, "held by \(holders.map { sim.names[$0] })")
    }

    @Test func withoutThemItsCopiesWaitAtForks() throws {
        // The drill before: no route, no hint; halving leaves the copies waiting at forks (d never writes).
        let arrived = try self.run(try DrillSimulator(scenario: try Scenario.decode(Data(Self.json.utf8))))
        #expect(arrived == nil, "the text reached d after \(arrived ?? .infinity) s without any route")
    }
}
