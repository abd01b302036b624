import CourierSim
import CourierStore
import CourierWire
@testable import CourierNode
import Foundation
import Testing

/// The last copy of a directed bundle with no route, no hint and several ways on (SPEC 5.14 rule 4, the focus): it goes
/// to a neighbour heard talking with the destination, instead of waiting for a route a quiet destination never gives
/// (issue 13 point 7; docs/journal/session-19-spray.md).
@Suite(.serialized, .timeLimit(.minutes(20))) struct LastCopyFocusTests {
    /// The triangle with seed 8. The east assembly writes to west-3, which has sent nothing yet (no relay of the east
    /// has a route or a hint to it): text 8 from east-3 at 1,620 s and grievance 14 from east-4 at 2,748 s. Each is
    /// sprayed among the four east relays (8, 4, 2, 1), which hand each other copies they already hold, and east-1, the
    /// only one that hears the other assemblies, is left with the last copy and two ways on, west-1 and north-1. It
    /// waited for a route: both were still held by the east at 5,400 s, delivered at 5,469 s when west-3 first wrote
    /// (the parent, cd9c050). west-1 is heard acknowledging west-3's data and sending it data: it takes the copy, and
    /// both arrive within a neighbour timeout of being sent (the time a relay is kept as a neighbour unheard: a bound
    /// from the protocol, not from a measured run).
    @Test func theLastCopyGoesToTheNeighbourHeardTalkingWithTheDestination() throws {
        var scenario = try Scenario.load(contentsOf: DrillSimTests.scenarios.appendingPathComponent("triangle-of-trust.json"))
        scenario.seed = 8
        let sim = try DrillSimulator(scenario: scenario)
        try sim.run(until: 5_400)
        let west3 = try #require(sim.names.firstIndex(of: "west-3"))
        let east1 = try #require(sim.names.firstIndex(of: "east-1"))
        let timeout = sim.nodes[east1].config.neighbourTimeout
        for m in [8, 14] {
            let t = scenario.traffic[m]
            #expect(t.to == .node("west-3") && t.from.hasPrefix("east-"), "message \(m) is \(t)")
            let id = try #require(sim.bundleOf[m])
            let story = try CourierMailTests.story(sim, id.description)
            let at = try #require(sim.deliveredAt[.init(message: m, recipient: west3)], "message \(m) (\(t.from) to west-3) still held at 5,400 s\n\(story)")
            #expect(at - t.at < timeout, "message \(m) took \(at - t.at) s\n\(story)")
            // Nothing of it is left in custody anywhere beyond the origin's budget.
            var held = 0
            for (k, store) in sim.stores.enumerated() where try store.bundle(id) != nil { held += sim.nodes[k].copiesLeft(id) }
            #expect(held <= Tuning.copyBudget, "message \(m): \(held) copies held\n\(story)")
        }
        // The premise: west-3 wrote nothing before 4,315 s, so no relay of the east could have had a route to it.
        let firstFromWest3 = try #require(scenario.traffic.first { $0.from == "west-3" })
        #expect(firstFromWest3.at > 4_000)
        // Every directed message of the day arrives (texts, grievances, offers; before: 89 of 91 copies on this seed).
        try sim.run()
        let directed = (0..<scenario.traffic.count).filter { if case .node = scenario.traffic[$0].to { return true } else { return false } }
        let missing = directed.filter { m in sim.recipients[m, default: []].contains { sim.deliveredAt[.init(message: m, recipient: $0)] == nil } }
        #expect(missing.isEmpty, "directed messages not delivered: \(missing.map { "\($0): \(scenario.traffic[$0].from) to \(scenario.traffic[$0].to)" })")
    }

    /// The focus itself, in the engine: of two neighbours not known to hold a bundle, the last copy goes to the one
    /// heard talking with the destination (`focusHop`), and with neither it waits (nil) and says which destination it
    /// waits for, so that hearing one do so routes held bundles again.
    @Test func focusPicksTheNeighbourHeardTalkingWithTheDestination() throws {
        var scenario = try Scenario.load(contentsOf: DrillSimTests.scenarios.appendingPathComponent("triangle-of-trust.json"))
        scenario.seed = 8
        let sim = try DrillSimulator(scenario: scenario)
        try sim.run(until: 1_000)
        let e1 = try #require(sim.names.firstIndex(of: "east-1"))
        let node = sim.nodes[e1]
        func id(_ name: String) throws -> NodeID { sim.identities[try #require(sim.names.firstIndex(of: name))].nodeID }
        let (west1, north1, dest) = (try id("west-1"), try id("north-1"), try id("west-3").short)
        #expect(node.neighbours[west1] != nil && node.neighbours[north1] != nil, "east-1 hears west-1 and north-1")
        let now = sim.now
        node.neighbours[west1]?.talksWith[dest] = nil
        node.neighbours[north1]?.talksWith[dest] = nil
        node.routeWalk.focusWaiting = []
        #expect(node.focusHop(to: dest, among: [north1, west1], now: now) == nil)
        #expect(node.routeWalk.focusWaiting.contains(dest))
        node.neighbours[west1]?.talksWith[dest] = now - 10
        #expect(node.focusHop(to: dest, among: [north1, west1], now: now) == west1)
        // Heard more recently with it: north-1.
        node.neighbours[north1]?.talksWith[dest] = now - 5
        #expect(node.focusHop(to: dest, among: [north1, west1], now: now) == north1)
        // Older than the turns keep a partner: no claim.
        node.neighbours[north1]?.talksWith[dest] = now - Tuning.talkPartnersKeptFor - 1
        #expect(node.focusHop(to: dest, among: [north1, west1], now: now) == west1)
        // One way on is not the focus's to choose (rule 4's only way on).
        #expect(node.focusHop(to: dest, among: [west1], now: now) == nil)
    }
}
