import ArgumentParser
import CourierTooling
import CourierWire
import Foundation

@main
struct CourierBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-bench",
        abstract: "Benchmarks that print figures: run by hand, or as a smoke in CI.",
        subcommands: [WireBench.self, StoreBench.self, MeshBench.self, DirewolfBench.self, MQTTBench.self, NoisyBench.self, MeshtasticBench.self, EngineBench.self])
}
