import CourierSim
import CourierStore
import Foundation
import Testing

/// Recovery after a partition heals (issue 13 point 7): a relay holding a directed bundle for a neighbour that went
/// silent sends it as soon as that neighbour is heard again, not when its backed-off retry or its next probe of a
/// neighbour given up on comes round.
@Suite(.serialized, .timeLimit(.minutes(15))) struct RecoveryTests {
    /// Two villages of two relays in a chain, joined by one link (a2 – b1) that a partition cuts for 30 minutes.
    /// Before the cut b2 wrote to a1 (so a1 and a2 know a route to b2, through b1). After the cut a1 writes to b2:
    /// custody goes to a2, whose next hop b1 is silent; a2 retries, backs off and gives b1 up. The partition heals
    /// at `heal`; two seconds later b1 sends a message of its own to b2, the first packet a2 hears from b1 since the
    /// cut. On a duty-cycled channel (10%, as the committed drills) a neighbour counts as near for over an hour
    /// without a word (`neighbourTimeout`), so b1's packet is no contact: it is a neighbour heard again after silence.
    ///
    ///     a1 ── a2 ─╳─ b1 ── b2
    static func json(heal: Double) -> String {
        """
        {"name": "heal", "seed": 11, "duration": \(heal + 900),
         "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.1},
         "nodes": [{"id": "a1", "x": 0, "y": 0}, {"id": "a2", "x": 2000, "y": 0}, {"id": "b1", "x": 4000, "y": 0},
                   {"id": "b2", "x": 6000, "y": 0}],
         "links": [{"a": "a1", "b": "a2"}, {"a": "a2", "b": "b1"}, {"a": "b1", "b": "b2"}],
         "traffic": [{"at": 120, "from": "b2", "to": "a1", "kind": "text", "bytes": 60},
                     {"at": 700, "from": "a1", "to": "b2", "kind": "text", "bytes": 60},
                     {"at": \(heal + 2), "from": "b1", "to": "b2", "kind": "text", "bytes": 40}],
         "events": [{"at": 600, "type": "partition", "groups": [["a1", "a2"], ["b1", "b2"]]},
                    {"at": \(heal), "type": "heal"}]}
        """
    }

    /// Whatever the moment of the heal (a2's retries to b1 run on their own clock: backed off, given up, probed every
    /// few minutes), a1's message reaches b2 within 30 s of b1's first packet after it.
    @Test(arguments: [2_400.0, 2_530.0, 2_660.0])
    func aBundleForANeighbourHeardAgainGoesAtOnce(heal: Double) throws {
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.json(heal: heal).utf8)))
        try sim.run()
        let r = sim.result()
        #expect(r.sent == 3)
        let before = try #require(sim.deliveredAt[.init(message: 0, recipient: 0)], "b2 to a1 before the cut")
        #expect(before < 600)
        let story = try CourierMailTests.story(sim, try #require(sim.bundleOf[1]).description)
        let at = try #require(sim.deliveredAt[.init(message: 1, recipient: 3)], "a1 to b2 arrives after the heal\n\(story)")
        #expect(at > heal, "not before the heal: \(at)\n\(story)")
        #expect(at <= heal + 2 + 30, "within 30 s of b1's first packet after the heal at \(heal) s: \(at)\n\(story)")
        let partition = try #require(r.disruptions.first)
        #expect(partition.queued == 1 && partition.deliveredAfter == 1)
    }

    /// The drill's trace (`relay drill simulate --trace FROM-TO`) shows each packet in the window with what it carried
    /// and, for each relay in range, whether it got it: before the heal nothing of b1's reaches a2; after it, b1's
    /// message to b2 (its first packet across) does, and a2's retry of a1's message to b1 follows.
    @Test func theTraceShowsThePacketsAcrossAHealedPartition() throws {
        let heal = 2_400.0
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.json(heal: heal).utf8)))
        var lines: [String] = []
        sim.trace = ((heal - 600)...(heal + 60), { lines.append($0) })
        try sim.run()
        let sends = lines.filter { !$0.hasPrefix(" ") }
        let receptions = lines.filter { $0.hasPrefix("  ") }
        #expect(!sends.isEmpty && !receptions.isEmpty, "\(lines.joined(separator: "\n"))")
        func time(_ line: String) -> Double { Double(line.trimmingCharacters(in: .whitespaces).split(separator: "-")[0].split(separator: " ")[0])! }
        for s in sends { #expect(time(s) >= heal - 600 && time(s) <= heal + 60, "\(s)") }
        // Cut: b1's packets do not reach a2 (the channel does not even try: no reception line at all).
        #expect(!receptions.contains { $0.contains(" a2 from b1") && time($0) < heal }, "\(lines.joined(separator: "\n"))")
        // Healed: b1's message to b2 is its first packet across; a2 hears b1 again.
        let across = try #require(sends.first { $0.contains(" b1 sends") && time($0) >= heal }, "\(lines.joined(separator: "\n"))")
        #expect(across.contains("bundle to b2"), "\(across)")
        #expect(receptions.contains { $0.hasSuffix(" a2 from b1: received") && time($0) >= heal }, "\(lines.joined(separator: "\n"))")
        // a2's retry of a1's message to b2 goes to b1 after the heal.
        #expect(sends.contains { $0.contains(" a2 sends") && $0.contains("bundle to b1") && time($0) >= heal }, "\(lines.joined(separator: "\n"))")
    }

    /// Four relays in a chain; a3 is switched off from 600 s to 2400 s. At 700 s a2 writes to a4, which has sent
    /// nothing, so nobody knows a route to it: a2 gives copies to the neighbours it hears (`replicas`), a3 among them,
    /// and a3 never acknowledges its copy. When a3 is back on (its announce at once), a2 gives it the copy again.
    ///
    ///     a1 ── a2 ── a3 ── a4          (a3 off for 30 minutes)
    static let offJSON = """
        {"name": "off", "seed": 12, "duration": 3600,
         "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
         "nodes": [{"id": "a1", "x": 0, "y": 0}, {"id": "a2", "x": 2000, "y": 0}, {"id": "a3", "x": 4000, "y": 0},
                   {"id": "a4", "x": 6000, "y": 0}],
         "links": [{"a": "a1", "b": "a2"}, {"a": "a2", "b": "a3"}, {"a": "a3", "b": "a4"}],
         "traffic": [{"at": 700, "from": "a2", "to": "a4", "kind": "text", "bytes": 60}],
         "events": [{"at": 600, "type": "down", "nodes": ["a3"]}, {"at": 2400, "type": "up", "nodes": ["a3"]}]}
        """

    /// A copy given without a route that never arrived is not counted as given: a2 hands it to a3 once a3 is back.
    @Test func aCopyThatNeverArrivedIsGivenAgainWhenTheNeighbourIsBack() throws {
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.offJSON.utf8)))
        try sim.run()
        let r = sim.result()
        #expect(r.sent == 1)
        let story = try CourierMailTests.story(sim, try #require(sim.bundleOf[0]).description)
        let at = try #require(sim.deliveredAt[.init(message: 0, recipient: 3)], "a2 to a4 arrives once a3 is back\n\(story)")
        #expect(at > 2_400 && at <= 2_400 + 60, "within a minute of a3's return at 2400 s: \(at)\n\(story)")
        let off = try #require(r.disruptions.first)
        #expect(off.kind == "down" && off.queued == 1 && off.deliveredAfter == 1)
    }
}
