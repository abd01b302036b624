import ArgumentParser
import CourierSim

/// `courier-dev trace`: prints a simulator scenario's golden trace (what Tests/CourierNodeTests/Golden/ records), so
/// two engines' traces can be compared with diff.
struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print the golden trace of a simulator scenario (every packet, delivery and event), or list the scenarios.")

    @Argument(help: "The scenario (omit to list them).") var scenario: String?

    func run() throws {
        guard let name = self.scenario else {
            for s in GoldenScenarios.all { print(s.name) }
            return
        }
        guard let s = GoldenScenarios.named(name) else {
            throw ValidationError("no scenario named \(name): `courier-dev trace` lists them")
        }
        for line in try s.run().trace { print(line) }
    }
}
