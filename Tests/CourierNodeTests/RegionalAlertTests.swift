import CourierSim
import Foundation
import Testing

/// Issue 13 point 7 on small scenarios: the alert on a channel whose relays spent their allowance, and the recovery
/// figures against the intact mesh (`relay drill simulate`).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct RegionalAlertTests {
    /// Twelve relays along a valley road, 1 km apart, explicit links between next neighbours only (the far end is
    /// 11 hops from the first); LoRa SF9 at 1% duty cycle. Eight aid requests of 250 bytes to everyone in the first
    /// four minutes (each relay floods each once: most of its hour's allowance), then an alert from one end.
    /// `events`: JSON events to add; `aid`: how many of the aid requests.
    static func grid(events: String = "[]", duration: Int = 900, aid: Int = 8) throws -> Scenario {
        var nodes: [String] = []
        var links: [String] = []
        for c in 0..<12 {
            nodes.append(#"{"id": "g\#(c / 10)\#(c % 10)", "x": \#(c * 1_000), "y": 0}"#)
            if c < 11 { links.append(#"{"a": "g\#(c / 10)\#(c % 10)", "b": "g\#((c + 1) / 10)\#((c + 1) % 10)", "loss": 0}"#) }
        }
        let senders = ["g00", "g11", "g02", "g09", "g04", "g07", "g01", "g10"]
        var traffic = senders.prefix(aid).enumerated().map { i, s in
            #"{"at": \#(70 + i * 20), "from": "\#(s)", "to": "everyone", "kind": "aid", "bytes": 250}"#
        }
        traffic.append(#"{"at": 300, "from": "g00", "to": "everyone", "kind": "alert", "bytes": 120}"#)
        return try Scenario.decode(Data("""
            {"name": "grid-10", "seed": 10, "duration": \(duration),
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.01},
             "nodes": [\(nodes.joined(separator: ","))], "links": [\(links.joined(separator: ","))],
             "traffic": [\(traffic.joined(separator: ","))], "events": \(events)}
            """.utf8))
    }

    /// After the relays spent most of their allowance on aid requests, the alert still reaches all eleven others,
    /// the farthest 11 hops away, within three minutes: alerts start with hop limit 15 (SPEC 6.10; at 8 they stopped
    /// at the ninth relay) and each relay's urgent reserve (SPEC 8.5) carries them at once. The report says how it
    /// spread and where the airtime went.
    @Test func theAlertReachesEveryRelayOfASpentValleyWithinThreeMinutes() throws {
        let sim = try DrillSimulator(scenario: try Self.grid())
        try sim.run()
        let r = sim.result()
        let alert = try #require(r.alerts.first)
        #expect(alert.from == "g00" && alert.recipients == 11)
        let to99 = try #require(alert.to99, "the alert never reached 99% of the valley: \(alert)")
        #expect(to99 <= 180, "99% of the valley had the alert after \(to99) s: \(alert.reachAfter)")
        #expect(alert.reachAfter.map(\.after) == [60, 120, 300, 600])
        // Where the airtime went: every transmission opened and sorted, the alert's own data among it.
        let classes = r.airtimeByClass
        #expect((classes["data: alert"] ?? 0) > 0 && (classes["data: aid"] ?? 0) > 0 && (classes[PacketClass.announces] ?? 0) > 0, "\(classes)")
        #expect(classes[PacketClass.unreadable] == nil, "\(classes)")
        #expect(abs(classes.values.reduce(0, +) - r.airtime) < 0.01 * r.airtime, "the classes add up to the airtime")
        let lines = r.text(radio: sim.scenario.radio, seed: sim.scenario.seed)
        #expect(lines.contains { $0.hasPrefix("airtime by what it carried: ") && $0.contains("data: alert") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("  g00 at 300 s to 11 relays: ") }, "\(lines)")
        let json = r.json()
        #expect((json["alerts"] as? [[String: Any]])?.first?["to_99_s"] as? Double == (to99 * 1000).rounded() / 1000)
    }

    /// The triangle of trust's partition and its relay down: each recovery is set against the same copies on the
    /// intact mesh (the scenario without its events), in the text and in `--json`.
    @Test func aRecoveryIsSetAgainstTheIntactMesh() throws {
        let s = try Scenario.load(contentsOf: DrillSimTests.scenarios.appendingPathComponent("triangle-of-trust.json"))
        let sim = try DrillSimulator(scenario: s)
        try sim.run()
        var r = sim.result()
        let intactScenario = DrillResult.intactScenario(s)
        #expect(intactScenario.events.isEmpty && intactScenario.traffic == s.traffic && !s.events.isEmpty)
        let intact = try DrillSimulator(scenario: intactScenario)
        try intact.run()
        r.intact(intact)
        #expect(r.disruptions.count == 2)
        let lines = r.text(radio: s.radio, seed: s.seed)
        for d in r.disruptions {
            #expect(d.queued > 0, "copies crossed \(d.label)")
            let i = try #require(d.intact, "the intact mesh delivered the copies queued in \(d.label)")
            #expect(i > 0 && d.targetMet == d.recovery.map { $0 <= 2 * i } ?? false)
            #expect(lines.contains { $0.contains(String(format: "intact mesh %.1f s, target %.1f s (2x): ", i, 2 * i)) }, "\(lines)")
        }
        let json = r.json()
        #expect((json["intact_s"] as? [Any])?.count == 2)
        #expect((json["disruptions"] as? [[String: Any]])?.first?["target_met"] as? Bool == r.disruptions[0].targetMet)
    }
}
