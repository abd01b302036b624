import Foundation
import Testing

/// `relay drill simulate --until SECONDS` and `--progress`: running part of a long scenario, and watching a long run.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DrillScaleTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    /// The triangle (7,200 s) cut at 1,500 s: only the messages of its first 1,500 s count, the run's duration is
    /// 1,500 s, and the partition at 1,800 s is not in it.
    @Test func untilRunsTheFirstSecondsOnly() throws {
        let file = Self.scenarios.appendingPathComponent("triangle-of-trust.json")
        let (code, out, err) = try R.run(["drill", "simulate", file.path, "--until", "1500", "--json"])
        #expect(code == 0, "\(err)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(o["duration_s"] as? Double == 1_500)
        // What the file sends by then: each message to one relay is one copy, to everyone one per other relay.
        let s = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        let traffic = try #require(s["traffic"] as? [[String: Any]])
        let relays = try #require(s["nodes"] as? [Any]).count
        let early = traffic.filter { ($0["at"] as? Double ?? .infinity) <= 1_500 }
        let copies = early.reduce(0) { $0 + (($1["to"] as? String) == "everyone" ? relays - 1 : 1) }
        #expect(copies > 0 && early.count < traffic.count)
        #expect(o["sent"] as? Int == copies, "\(o["sent"] ?? "nil") copies sent, \(copies) in the first 1,500 s")
        #expect(o["messages"] as? Int == early.count)
        let delivered = try #require(o["delivered"] as? Int)
        #expect(delivered > 0 && delivered <= copies)
        // The partition (1,800 s) and east-1's outage (4,200 s) come later: no disruption in this run.
        #expect((o["recovery_s"] as? [Any])?.isEmpty == true, "\(o["recovery_s"] ?? "nil")")

        let (notANumber, _, _) = try R.run(["drill", "simulate", file.path, "--until", "abc"])
        #expect(notANumber == 64)
        for bad in ["0", "-5", "7201"] {
            let (c, o2, e) = try R.run(["drill", "simulate", file.path, "--until=\(bad)"])
            #expect(c == 64, "--until \(bad): \(e)")
            #expect(o2.isEmpty)
            #expect(e.split(separator: "\n").count == 1 && e.contains("until"), "\(e)")
        }
    }

    /// `--progress`: one line on stderr per simulated hour (and the end), the figures on stdout as without it.
    @Test func progressPrintsALinePerSimulatedHour() throws {
        let file = Self.scenarios.appendingPathComponent("triangle-of-trust.json").path
        let (code, out, err) = try R.run(["drill", "simulate", file, "--until", "4000", "--progress", "--json"])
        #expect(code == 0, "\(err)")
        let all = err.split(separator: "\n").map(String.init)
        // Then the run without the partition (1,800-3,000 s), the recovery target's reference: its hours, and where
        // it stopped (as soon as the target was decided, or the end).
        let lines = all.filter { $0.hasPrefix("drill triangle-of-trust: ") }
        let intact = all.filter { $0.hasPrefix("drill triangle-of-trust without its disruptions: ") }
        #expect(lines.count == 2, "3,600 s and the end at 4,000 s: \(err)")
        #expect(lines.first?.hasPrefix("drill triangle-of-trust: 3600 of 4000 s simulated, ") == true, "\(err)")
        #expect(lines.last?.hasPrefix("drill triangle-of-trust: 4000 of 4000 s simulated, ") == true, "\(err)")
        #expect(all == lines + intact, "\(err)")
        #expect(intact.last?.contains(" of 4000 s simulated, every recovery target ") == true, "\(err)")
        for l in lines + intact.dropLast() {
            #expect(l.contains(" transmissions, ") && l.contains(" copies delivered; engine calls: ") && l.hasSuffix(" MB"), "\(l)")
        }
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let (code2, out2, _) = try R.run(["drill", "simulate", file, "--until", "4000", "--json"])
        #expect(code2 == 0)
        let o2 = try #require(try JSONSerialization.jsonObject(with: Data(out2.utf8)) as? [String: Any])
        #expect(NSDictionary(dictionary: o).isEqual(to: o2), "the same figures with and without --progress")
        #expect(o["transmissions"] as? Int ?? 0 > 0)
    }
}
