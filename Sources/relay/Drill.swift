import ArgumentParser
import CourierSim
import Foundation

extension Relay {
    struct Drill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resilience drills: break the mesh on purpose and measure how it recovers.",
            subcommands: [Simulate.self])

        struct Simulate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run a scenario file with the real engine on a simulated radio channel and a virtual clock.",
                discussion: """
                    Every relay of the scenario is the relay engine with its own in-memory database; every packet goes \
                    through a shared radio channel (airtime, collisions and capture, half-duplex, listen-before-talk, \
                    duty cycle). Prints delivery, latency per kind, airtime, collisions, recovery after each \
                    disruption and the offers each aid request got. The same file gives the same figures. The format \
                    of scenario files is in the README ("Scenario files"); scenarios/ holds examples.
                    """)
            @Argument(help: "The scenario file (JSON).") var file: String
            @Flag(help: "Print one JSON object instead of lines.") var json = false
            @Option(help: "Also write a self-contained HTML page with plots to this file.") var report: String?

            func run() async throws {
                try await guarded {
                    let url = URL(fileURLWithPath: self.file)
                    guard FileManager.default.fileExists(atPath: url.path) else {
                        throw RelayError.noInput("\(self.file): no such scenario file: check the path (examples are in scenarios/)")
                    }
                    let scenario: Scenario
                    do { scenario = try Scenario.load(contentsOf: url) } catch {
                        throw RelayError.data("\(error)")
                    }
                    let started = Date()
                    let sim: DrillSimulator
                    do {
                        sim = try DrillSimulator(scenario: scenario)
                        try sim.run()
                    } catch {
                        throw RelayError.data("\(self.file): the scenario could not be simulated (\(error)): check it against \"Scenario files\" in the README")
                    }
                    let result = sim.result()
                    let wall = Date().timeIntervalSince(started)
                    if let path = self.report {
                        do {
                            try Data(result.html(radio: scenario.radio, seed: scenario.seed).utf8).write(to: URL(fileURLWithPath: path))
                        } catch {
                            throw RelayError.cannotCreate("cannot write the report \(path) (\(error.localizedDescription)): check the folder exists and is writable")
                        }
                    }
                    if self.json {
                        let data = try JSONSerialization.data(withJSONObject: result.json(), options: [.sortedKeys])
                        print(String(decoding: data, as: UTF8.self))
                    } else {
                        for line in result.text(radio: scenario.radio, seed: scenario.seed) { print(line) }
                        if let path = self.report { print("report: \(path)") }
                        print(String(format: "simulated in %.1f s of wall time", wall))
                    }
                }
            }
        }
    }
}
