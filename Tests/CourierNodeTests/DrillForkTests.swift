import CourierNode
import CourierSim
import Foundation
import Testing

/// The intact reference forked from the day at its first disruption (`DrillSimulator.forkWithoutDisruptions`, issue
/// 13 point 7: the 1,000-relay day with its reference in under 10 minutes of CPU): until then the day and the
/// scenario without its disruptions run the same, so the reference simulates only the rest, with the same figures.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DrillForkTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    /// Each committed small drill with disruptions: the fork run to the end gives what a new simulator of the intact
    /// scenario gives (every figure, every delivery, every relay's counters, the channel's), and its recovery targets
    /// are the same; it simulated only from the first disruption; and the day that forked it is the day unforked.
    @Test(arguments: ["triangle-of-trust", "valley-chain-12"])
    func theForkedReferenceIsTheIntactRun(name: String) throws {
        let scenario = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("\(name).json"))
        let first = try #require(DrillSimulator.firstDisruption(scenario))
        #expect(first > 0 && first < scenario.duration)

        let day = try DrillSimulator(scenario: scenario)
        let fork = try #require(try day.run(forkingIntact: true))
        let disrupted = day.result()
        let plainDay = try DrillSimulator(scenario: scenario)
        try plainDay.run()
        #expect(disrupted == plainDay.result(), "\(name): forking changed the day")

        #expect(fork.elapsed == first)
        #expect(fork.scenario == DrillResult.intactScenario(scenario))
        let atFork = fork.engineCalls
        let fresh = try DrillSimulator(scenario: DrillResult.intactScenario(scenario))
        try fresh.run()
        try fork.run()

        #expect(fork.result() == fresh.result(), "\(name): the forked reference's figures differ")
        #expect(fork.deliveredAt == fresh.deliveredAt)
        #expect(fork.submittedAt == fresh.submittedAt)
        #expect(fork.engineCalls == fresh.engineCalls)
        #expect(fork.channel.statistics == fresh.channel.statistics)
        #expect(fork.nodes.map(\.stats) == fresh.nodes.map(\.stats))
        #expect(fork.deliveredCount > 0)

        // Less simulated: the fork's own engine calls are those after the first disruption.
        #expect(atFork.ticks > 0 && atFork.receptions > 0, "\(name): nothing happened before the fork")
        #expect(fresh.engineCalls.ticks - atFork.ticks < fresh.engineCalls.ticks)

        // The recovery targets, forked and fresh (stopping early or not, as `relay drill simulate` does).
        var withFork = disrupted
        var withFresh = disrupted
        withFresh.intact(fresh)
        let again = try #require(try DrillSimulator(scenario: scenario).run(forkingIntact: true))
        try withFork.measureIntact(again)
        #expect(withFork == withFresh)
        #expect(withFork.disruptions.contains { ($0.intact ?? 0) > 0 }, "\(name): no recovery target to compare")
    }

    /// The engine's copy (`Node(copying:)`) leaves out none of its stored properties: each reads the same in the copy
    /// as in the relay it was copied from, mid-run (the store and compressor are the copy's own by design).
    @Test func aCopiedEngineHoldsEveryProperty() throws {
        let scenario = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("valley-chain-12.json"))
        let first = try #require(DrillSimulator.firstDisruption(scenario))
        let copied = try DrillSimulator(scenario: scenario)
        try copied.run(until: first.nextDown)
        let f2 = try copied.forkWithoutDisruptions()
        var compared = 0
        for (i, node) in copied.nodes.enumerated() {
            let a = Mirror(reflecting: node).children
            let b = Mirror(reflecting: f2.nodes[i]).children
            #expect(a.map(\.label) == b.map(\.label))
            for (x, y) in zip(a, b) where x.label != "store" && x.label != "compressor" {
                #expect(String(reflecting: x.value) == String(reflecting: y.value), "relay \(i): \(x.label ?? "?") not copied")
                compared += 1
            }
        }
        #expect(compared > 12 * 40)
    }
}
