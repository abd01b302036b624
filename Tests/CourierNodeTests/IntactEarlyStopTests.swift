import CourierSim
import Foundation
import Testing

/// The recovery target's reference run (the scenario without its disruptions, `DrillResult.intactScenario`) stops as
/// soon as its figures are decided (`DrillResult.measureIntact`, issue 13 point 7: the 1,000-relay day with its
/// reference in under 10 minutes of CPU): the same figures as running it to the end of the scenario, for less of it.
@Suite(.serialized, .timeLimit(.minutes(20))) struct IntactEarlyStopTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    /// Each committed small drill with disruptions: the intact figures of the run that stops early equal those of the
    /// run to the end (every other figure too), and the early run simulated less of the day, with fewer engine calls.
    @Test(arguments: ["triangle-of-trust", "valley-chain-12"])
    func theIntactRunStopsEarlyWithTheSameFigures(name: String) throws {
        let scenario = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("\(name).json"))
        let day = try DrillSimulator(scenario: scenario)
        try day.run()
        let disrupted = day.result()
        #expect(!disrupted.disruptions.isEmpty && disrupted.disruptions.contains { $0.queued > 0 }, "\(name): nothing queued by a disruption")

        var full = disrupted
        let whole = try DrillSimulator(scenario: DrillResult.intactScenario(scenario))
        try whole.run()
        full.intact(whole)

        var early = disrupted
        let part = try DrillSimulator(scenario: DrillResult.intactScenario(scenario))
        var hours: [Double] = []
        let stop = try early.measureIntact(part, every: 3_600) { hours.append($0) }

        let figures = full.disruptions.map(\.intact)
        #expect(figures.contains { ($0 ?? 0) > 0 }, "\(name): no intact figure to compare: \(figures)")
        #expect(early.disruptions.map(\.intact) == figures, "\(name): stopped at \(stop) s")
        #expect(early == full)
        #expect(stop == part.elapsed)
        #expect(stop < scenario.duration, "\(name): the intact run went to the end (\(scenario.duration) s): \(figures)")
        #expect(whole.elapsed == scenario.duration)
        #expect(part.engineCalls.ticks < whole.engineCalls.ticks && part.channel.statistics.transmissions < whole.channel.statistics.transmissions)
        #expect(hours == Array(stride(from: 3_600.0, through: stop, by: 3_600)), "\(hours)")
    }

    /// A disruption that queued nothing is decided before the intact run starts: it is not run at all, and its
    /// figure is 0 as it was when run to the end.
    @Test func nothingQueuedIsDecidedAtOnce() throws {
        var scenario = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("triangle-of-trust.json"))
        // Only the traffic before the partition (1,800 s): nothing is submitted during either disruption.
        scenario.traffic = scenario.traffic.filter { $0.at < 1_700 }
        let day = try DrillSimulator(scenario: scenario)
        try day.run()
        var r = day.result()
        #expect(r.disruptions.count == 2 && r.disruptions.allSatisfy { $0.queued == 0 })
        let intact = try DrillSimulator(scenario: DrillResult.intactScenario(scenario))
        let stop = try r.measureIntact(intact)
        #expect(stop == 0)
        #expect(r.disruptions.map(\.intact) == [0, 0])
    }
}
