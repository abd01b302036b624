import Foundation
import Testing

/// `relay drill simulate`: a scenario file run with the real engine on the simulated radio channel.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DrillTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    @Test func simulateTheTriangleOfTrustAsJSON() throws {
        let file = Self.scenarios.appendingPathComponent("triangle-of-trust.json").path
        let (code, out, err) = try R.run(["drill", "simulate", file, "--json"])
        #expect(code == 0, "\(err)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1, "one JSON object: \(out)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        for key in ["delivered", "sent", "delivery_ratio", "latency_p50_s", "latency_p95_s", "transmissions", "airtime_s",
                    "collisions", "recovery_s"] {
            #expect(o[key] != nil, "key \(key)")
        }
        let sent = try #require(o["sent"] as? Int)
        let delivered = try #require(o["delivered"] as? Int)
        let ratio = try #require(o["delivery_ratio"] as? Double)
        // 41 messages: 38 to one relay, an alert, an aid request and three sets of minutes to the 11 others each.
        #expect(sent == 38 + 5 * 11)
        #expect(delivered > sent * 9 / 10 && delivered <= sent)
        #expect(abs(ratio - Double(delivered) / Double(sent)) < 0.001)
        let p50 = try #require(o["latency_p50_s"] as? Double)
        let p95 = try #require(o["latency_p95_s"] as? Double)
        #expect(p50 > 0 && p50 <= p95 && p95 < 7_200)
        let tx = try #require(o["transmissions"] as? Int)
        let airtime = try #require(o["airtime_s"] as? Double)
        #expect(tx > 0 && airtime > 0 && airtime < Double(tx) * 1.0, "SF9 packets of at most 255 bytes last under a second")
        #expect((o["collisions"] as? Int).map { $0 >= 0 } == true)
        let recovery = try #require(o["recovery_s"] as? [Any])
        #expect(recovery.count == 2, "the partition and east-1's outage")
        #expect((recovery.first as? Double).map { $0 > 0 } == true, "the partition's recovery: \(recovery)")
    }

    @Test func aMissingOrBadScenarioIsOneLineAndItsExitCode() throws {
        let dir = R.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (missing, _, err1) = try R.run(["drill", "simulate", dir + "/nothing.json"])
        #expect(missing == 66)
        #expect(err1.split(separator: "\n").count == 1 && err1.contains("nothing.json"), "\(err1)")
        let bad = dir + "/bad.json"
        try Data(#"{"name": "x", "seed": 1, "duration": 60, "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5}, "nodes": [{"id": "a", "x": 0, "y": 0}], "traffic": [{"at": 1, "from": "zed", "to": "everyone", "kind": "alert", "bytes": 10}]}"#.utf8)
            .write(to: URL(fileURLWithPath: bad))
        let (code, out, err2) = try R.run(["drill", "simulate", bad])
        #expect(code == 65)
        #expect(out.isEmpty)
        #expect(err2.split(separator: "\n").count == 1 && err2.contains("traffic[0].from") && err2.contains("zed"), "\(err2)")
    }
}
