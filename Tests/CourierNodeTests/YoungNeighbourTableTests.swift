import CourierSim
import CourierStore
import Foundation
import Testing

/// An alert is not silenced by coverage alone while a relay may not have heard all its neighbours yet (Flooding.swift,
/// `neighbourTableYoung`). On valley-chain-12 v03 took the alert from v02 at 147 s, had never heard v04 (its hello had
/// collided), counted nobody that lacked it and stayed quiet: the alert reached 2 of 11 relays in 10 minutes.
@Suite(.serialized, .timeLimit(.minutes(20))) struct YoungNeighbourTableTests {
    /// A chain a – b – c – d on a 10% duty-cycled channel, cut between b and c until 61 s (the relays come up within
    /// the first minute): c's hello reaches d, which answers (so c does not say it again), but not b, and c's next
    /// announce is minutes away. a floods an alert at 62 s. Before the rule b had heard nobody but a, counted nobody
    /// that lacked it and stayed quiet: the alert reached b alone by the end of the 15 minutes.
    ///
    ///     a ── b ─╳(0-61 s)─ c ── d
    static let json = """
        {"name": "young", "seed": 3, "duration": 900,
         "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.1},
         "nodes": [{"id": "a", "x": 0, "y": 0}, {"id": "b", "x": 3000, "y": 0}, {"id": "c", "x": 6000, "y": 0},
                   {"id": "d", "x": 9000, "y": 0}],
         "links": [{"a": "a", "b": "b"}, {"a": "b", "b": "c"}, {"a": "c", "b": "d"}],
         "traffic": [{"at": 62, "from": "a", "to": "everyone", "kind": "alert", "bytes": 80}],
         "events": [{"at": 0.001, "type": "partition", "groups": [["a", "b"], ["c", "d"]]}, {"at": 61, "type": "heal"}]}
        """

    @Test func aRelayThatHasNotHeardANeighbourYetStillPassesAnAlertOn() throws {
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.json.utf8)))
        try sim.run()
        let atB = try #require(sim.deliveredAt[.init(message: 0, recipient: 1)], "b has the alert")
        let atC = try #require(sim.deliveredAt[.init(message: 0, recipient: 2)], "c has the alert by the end")
        let atD = try #require(sim.deliveredAt[.init(message: 0, recipient: 3)], "d has the alert by the end")
        // b's rebroadcast, not a summary exchange minutes later, brings it to c, and c's to d.
        #expect(atC - atB < 60, "c got the alert \(atC - atB) s after b")
        #expect(atD < 62 + 600, "d got the alert at \(atD) s")
    }
}
