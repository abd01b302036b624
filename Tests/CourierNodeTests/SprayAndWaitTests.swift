import CourierSim
import CourierStore
@testable import CourierNode
import Foundation
import Testing

/// Binary spray-and-wait (issue 13; SPEC 5.14): a directed bundle without a route is copied within a budget the
/// origin starts (`Tuning.copyBudget`), halved at each copy given, and no longer spreads through a dense mesh.
@Suite(.serialized, .timeLimit(.minutes(20))) struct SprayAndWaitTests {
    /// More relays than the budget (16 beyond it), all hearing one another, and d, heard only by the last relay and
    /// switched off from the start: nobody has a route to d. At 120 s r0 writes to d. At 900 s d comes back and
    /// floods an alert (every relay learns a route to it from the alert), so the copies held go to it.
    static let relayCount = Tuning.copyBudget + 16
    static let json: String = {
        let n = Self.relayCount
        let relays = (0..<n).map { "r\($0)" }
        let nodes = relays.enumerated().map { #"{"id": "\#($1)", "x": \#($0 % 8 * 150), "y": \#($0 / 8 * 150)}"# } + [#"{"id": "d", "x": 5000, "y": 0}"#]
        var links: [String] = []
        for a in 0..<n { for b in (a + 1)..<n { links.append(#"{"a": "r\#(a)", "b": "r\#(b)"}"#) } }
        links.append(#"{"a": "r\#(n - 1)", "b": "d"}"#)
        return """
            {"name": "dense", "seed": 5, "duration": 1500,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes.joined(separator: ", "))],
             "links": [\(links.joined(separator: ", "))],
             "traffic": [{"at": 120, "from": "r0", "to": "d", "kind": "text", "bytes": 60},
                         {"at": 902, "from": "d", "to": "everyone", "kind": "alert", "bytes": 40}],
             "events": [{"at": 1, "type": "down", "nodes": ["d"]}, {"at": 900, "type": "up", "nodes": ["d"]}]}
            """
    }()

    @Test func aMessageWithoutARouteIsHeldByAtMostItsBudgetOfRelaysAndStillArrives() throws {
        let scenario = try Scenario.decode(Data(Self.json.utf8))
        let sim = try DrillSimulator(scenario: scenario)
        // Run until just before d comes back: the copies handed out while there is no route.
        try sim.run(until: 890)
        let id = try #require(sim.bundleOf[0])
        let holders = try (0..<Self.relayCount).filter { try sim.stores[$0].bundle(id) != nil }
        // Without the budget every relay that took a copy gave two more: all of them held it.
        #expect(holders.count <= Tuning.copyBudget, "held by \(holders.map { sim.names[$0] })")
        #expect(holders.count >= 4, "the copies were handed out: \(holders.map { sim.names[$0] })")
        #expect(holders.contains(0), "the origin keeps a copy (and custody) until a receipt")
        try sim.run()
        let d = Self.relayCount
        #expect(sim.deliveredAt[.init(message: 0, recipient: d)] != nil, "a copy reaches d once a route to it is known")
    }
}
