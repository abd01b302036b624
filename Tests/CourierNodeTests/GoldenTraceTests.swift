import CourierSim
import Foundation
import Testing

/// The golden trace (issue 11 point 1): every output of every node (packets by virtual time, link, size and SHA-256
/// prefix; deliveries; events) in the simulator scenarios of the engine's tests and three seeds of `courier-bench
/// mesh`, compared line for line with the files in Golden/. A change to the engine that is meant to keep behaviour
/// must keep them byte-identical; one that changes behaviour rewrites them (`COURIER_GOLDEN_UPDATE=1 swift test
/// --filter GoldenTrace`) and says in its commit which lines change and why. `courier-dev trace NAME` prints one.
@Suite(.timeLimit(.minutes(20)))
struct GoldenTraceTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    @Test(arguments: GoldenScenarios.all.map(\.name))
    func traceMatchesTheGoldenFile(_ name: String) throws {
        let scenario = try #require(GoldenScenarios.named(name))
        let sim = try scenario.run()
        let trace = sim.trace.joined(separator: "\n") + "\n"
        #expect(sim.trace.contains { $0.contains(" send ") }, "the scenario sent nothing")
        let file = Self.directory.appendingPathComponent("\(name).trace")
        if ProcessInfo.processInfo.environment["COURIER_GOLDEN_UPDATE"] == "1" {
            try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
            try trace.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let golden = try #require(try? String(contentsOf: file, encoding: .utf8),
                                  "no golden file \(file.path): record it with COURIER_GOLDEN_UPDATE=1")
        guard golden != trace else { return }
        let a = golden.split(separator: "\n", omittingEmptySubsequences: false)
        let b = trace.split(separator: "\n", omittingEmptySubsequences: false)
        let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        Issue.record("""
            \(name): the trace differs from Golden/\(name).trace at line \(i + 1) (\(a.count) lines recorded, \(b.count) now)
              recorded: \(i < a.count ? String(a[i]) : "(end)")
              now:      \(i < b.count ? String(b[i]) : "(end)")
            """)
    }
}
