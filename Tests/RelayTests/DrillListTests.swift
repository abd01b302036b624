import CourierLinks
import Foundation
import Testing

/// `relay drill list [--json]`: the live drills this relay started, newest first, each with its id, when, scope and
/// answered of expected. Real `relay` processes on a `VirtualCable`, a federation made with `init`, `invite`,
/// `init --join`.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DrillListTests {
    func list(_ dir: String) throws -> [[String: Any]] {
        let (rc, out, err) = try R.run(["drill", "list", "--data-dir", dir, "--json"])
        #expect(rc == 0, "drill list --json: \(err)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        return try #require(o["drills"] as? [[String: Any]], "\(o)")
    }

    /// No drill yet: one line, exit 0. Alpha drills twice with bravo running on the other end of a cable: the list
    /// shows both, newest first, the first answered by bravo (1 of 1).
    @Test func theDrillsARelayStartedAreListedNewestFirstWithTheirAnswers() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let bravo = try R.id(dirs[1])
        let (rc0, out0, err0) = try R.run(["drill", "list", "--data-dir", dirs[0]])
        #expect(rc0 == 0 && err0.isEmpty, "\(rc0) \(err0)")
        #expect(out0 == "no drills yet: `relay drill start` starts one\n", "\(out0)")
        #expect(try self.list(dirs[0]).isEmpty)

        let cable = try VirtualCable()
        defer { cable.stop() }
        let relays = [
            try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(cable.pathA):115200"], log: dirs[0] + "/run.log"),
            try R.start(["run", "--data-dir", dirs[1], "--link", "serial:\(cable.pathB):115200"], log: dirs[1] + "/run.log"),
        ]
        defer { for r in relays { R.stop(r) } }
        // Each knows the other's keys (identity bundles go out when relays start).
        let ids = try dirs.map { try R.id($0) }
        let keys = try R.wait(120) {
            try R.run(["peers", "--data-dir", dirs[0], "--json"]).1.contains(ids[1]) && R.run(["peers", "--data-dir", dirs[1], "--json"]).1.contains(ids[0])
        }
        #expect(keys)

        let (rc1, out1, err1) = try R.run(["drill", "start", "--data-dir", dirs[0], "--everyone"])
        #expect(rc1 == 0, "drill start: \(err1)")
        let first = try #require(out1.split(separator: "\n").last.map(String.init))
        var drills: [[String: Any]] = []
        let answered = try R.wait(120) {
            drills = try self.list(dirs[0])
            return drills.first?["answered"] as? Int == 1
        }
        #expect(answered, "bravo answers the drill: \(drills)")
        #expect(drills.count == 1)
        #expect(drills.first?["drill"] as? String == first && drills.first?["scope"] as? String == "everyone"
                && drills.first?["expected"] as? Int == 1 && drills.first?["silent"] as? Int == 0, "\(drills)")

        // A second drill: listed first (newest first), bravo not heard from yet or already answered.
        let (rc2, out2, err2) = try R.run(["drill", "start", "--data-dir", dirs[0], "--everyone", "second drill"])
        #expect(rc2 == 0, "drill start: \(err2)")
        let second = try #require(out2.split(separator: "\n").last.map(String.init))
        drills = try self.list(dirs[0])
        #expect(drills.map { $0["drill"] as? String } == [second, first], "newest first: \(drills)")
        let both = try R.wait(120) {
            drills = try self.list(dirs[0])
            return drills.allSatisfy { $0["answered"] as? Int == 1 }
        }
        #expect(both, "\(drills)")
        let (rc3, text, err3) = try R.run(["drill", "list", "--data-dir", dirs[0]])
        #expect(rc3 == 0, "\(err3)")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines[0].hasPrefix(second + "  started ") && lines[1].hasPrefix(first + "  started "), "\(text)")
        #expect(lines.allSatisfy { $0.hasSuffix("to everyone  1 of 1 answered") }, "\(text)")
        // The report of each agrees: bravo answered.
        let report = try R.run(["drill", "report", "--data-dir", dirs[0], first]).1
        #expect(report.contains("1 answered, 0 silent") && report.contains(bravo), "\(report)")
        // Kept beside the data directories (the README's example is such a run).
        try ("$ relay drill list\n" + text).write(toFile: dirs[0] + "/../drill-list.txt", atomically: true, encoding: .utf8)
    }

    @Test func drillListWithoutADataDirectoryIsOneLineAndExit66() throws {
        let (rc, out, err) = try R.run(["drill", "list", "--data-dir", R.tempDir() + "/nothing-here"])
        #expect(rc == 66 && out.isEmpty, "\(rc) \(out)")
        #expect(err.split(separator: "\n").count == 1, "\(err)")
    }
}
