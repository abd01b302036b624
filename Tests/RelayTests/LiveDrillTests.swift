import CourierLinks
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Live drills (issue 13 point 6, SPEC 6.17): `relay drill start` floods a drill every relay answers on its own with
/// its receipt part and hop count; `relay drill report` shows who answered, when, over how many hops, and who is
/// silent. Real `relay` processes on real ptys (`VirtualCable`), a federation made with `init`, `invite`, `init --join`.
@Suite(.serialized, .timeLimit(.minutes(20))) struct LiveDrillTests {
    func knownNodes(_ dir: String) throws -> Set<String> {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        guard let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else { return [] }
        return Set(((o["peers"] as? [[String: Any]]) ?? []).compactMap { $0["node"] as? String })
    }

    func report(_ dir: String, _ id: String) throws -> [String: Any] {
        let (rc, out, err) = try R.run(["drill", "report", "--data-dir", dir, id, "--json"])
        #expect(rc == 0, "drill report: \(err)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
    }

    func answered(_ r: [String: Any]) -> [String: Int?] {
        var out: [String: Int?] = [:]
        for a in (r["answered"] as? [[String: Any]]) ?? [] {
            if let n = a["node"] as? String { out[n] = a["hops"] as? Int }
        }
        return out
    }

    /// Alpha drills five relays, one of them (echo, at the end of the chain) stopped: four answer with their hops,
    /// echo is silent; echo restarts, gets the drill and answers over 4 hops.
    ///
    ///     alpha ── bravo ── charlie ── delta ── echo
    ///                │
    ///             foxtrot
    @Test func fiveRelaysOneStoppedAnswerADrillWithTheirHops() throws {
        let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
        let dirs = try R.federation(names)
        let ids = try dirs.map { try R.id($0) }
        let pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5)]
        let cables = try pairs.map { _ in try VirtualCable() }
        defer { for c in cables { c.stop() } }
        func start(_ i: Int) throws -> Process {
            var args = ["run", "--data-dir", dirs[i]]
            for (c, (a, b)) in pairs.enumerated() where a == i || b == i {
                args += ["--link", "serial:\(a == i ? cables[c].pathA : cables[c].pathB):115200"]
            }
            return try R.start(args, log: dirs[i] + "/run.log")
        }
        var relays = try dirs.indices.map { try start($0) }
        defer { for r in relays { R.stop(r) } }
        // Every relay knows every other's keys (identity bundles flood when relays start).
        let keys = try R.wait(120) { try dirs.indices.allSatisfy { i in try self.knownNodes(dirs[i]).isSuperset(of: Set(ids).subtracting([ids[i]])) } }
        let known = try dirs.map { try self.knownNodes($0) }
        try #require(keys, "keys did not spread: \(known)")
        R.stop(relays[4])

        let (rc, out, err) = try R.run(["drill", "start", "--data-dir", dirs[0], "--everyone"])
        #expect(rc == 0, "drill start: \(err)")
        let id = try #require(out.split(separator: "\n").last.map(String.init))
        #expect(out.contains("5 relays expected to answer"), "\(out)")
        let expected: [String: Int?] = [ids[1]: 1, ids[2]: 2, ids[3]: 3, ids[5]: 2]
        var r: [String: Any] = [:]
        let four = try R.wait(120) {
            r = try self.report(dirs[0], id)
            return self.answered(r).count >= 4
        }
        #expect(four, "\(r)")
        #expect(self.answered(r) == expected, "answered with hops: \(r)")
        #expect(r["silent"] as? [String] == [ids[4]], "echo is silent: \(r)")
        for a in (r["answered"] as? [[String: Any]]) ?? [] {
            let s = a["seconds"] as? Int ?? -1
            #expect(s >= 0 && s < 120, "seconds after the start: \(a)")
        }
        let text = try R.run(["drill", "report", "--data-dir", dirs[0], id]).1
        // Kept beside the data directories (the README's example is such a run).
        try (out + "\n$ relay drill report " + id + "\n" + text).write(toFile: dirs[0] + "/../drill-echo-stopped.txt", atomically: true, encoding: .utf8)
        #expect(text.contains("4 answered, 1 silent") && text.contains("SILENT    echo (\(ids[4]))") && text.contains("charlie (\(ids[2])) after"), "\(text)")
        // Each answer is in the origin's change feed.
        let feed = try R.run(["queue", "tail", "--data-dir", dirs[0], "--since", "0", "--no-follow"]).1
        #expect(R.count("drill answered by", in: feed) == 4, "\(feed)")

        // Echo comes back: it gets the drill from delta and answers, 4 hops out.
        relays[4] = try start(4)
        let back = try R.wait(120) {
            r = try self.report(dirs[0], id)
            return self.answered(r)[ids[4]] != nil
        }
        #expect(back, "\(r)")
        var all = expected
        all[ids[4]] = 4
        #expect(self.answered(r) == all, "\(r)")
        #expect((r["silent"] as? [String])?.isEmpty == true, "\(r)")
        let after = try R.run(["drill", "report", "--data-dir", dirs[0], id]).1
        let json = try R.run(["drill", "report", "--data-dir", dirs[0], id, "--json"]).1
        try (after + json).write(toFile: dirs[0] + "/../drill-echo-back.txt", atomically: true, encoding: .utf8)
    }

    /// `relay demo` runs a drill from the village: every relay answers, the report shows each with its hops, and the
    /// folders it leaves answer `relay drill report` the same way.
    @Test func theDemoShowsADrillAndItsReport() throws {
        let root = R.tempDir() + "/demo"
        let (rc, out, err) = try R.run(["demo", "--dir", root, "--timeout", "120"])
        #expect(rc == 0, "demo failed: \(err)")
        let id = try #require(out.split(separator: "\n").first { $0.contains("relay drill start --everyone") }?.split(separator: " ").last.map(String.init))
        #expect(out.contains("every relay answered: relay drill report \(id)") && out.contains("4 answered, 0 silent"), "\(out)")
        let r = try self.report(root + "/village", id)
        #expect(Set(self.answered(r).values.compactMap { $0 }) == [1, 2, 3], "the demo's relays are 1 to 3 hops from the village: \(r)")
        #expect((r["silent"] as? [String])?.isEmpty == true)
    }

    @Test func aDrillReportForAnUnknownOrMalformedIDIsOneLineAndExit64() throws {
        let dirs = try R.federation(["alpha"])
        let (rc, out, err) = try R.run(["drill", "report", "--data-dir", dirs[0], "\(try R.id(dirs[0])).1540050.77"])
        #expect(rc == 64 && out.isEmpty, "\(rc) \(out)")
        #expect(err.split(separator: "\n").count == 1 && err.contains("no drill") && err.contains("relay drill start"), "\(err)")
        let (rc2, _, err2) = try R.run(["drill", "report", "--data-dir", dirs[0], "not-an-id"])
        #expect(rc2 == 64 && err2.split(separator: "\n").count == 1 && err2.contains("bad bundle id"), "\(err2)")
        let (rc3, _, err3) = try R.run(["drill", "start", "--data-dir", dirs[0], "--group", "river-towns"])
        #expect(rc3 == 64 && err3.split(separator: "\n").count == 1 && err3.contains("no pact 'river-towns'"), "\(err3)")
    }
}
