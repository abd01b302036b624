import CourierLinks
import CourierTestSupport
import Foundation
import Testing

/// Two `relay` processes, each with an RNode on a pty (the firmware emulator), in a federation made with `init`,
/// `invite` and `init --join`: the signal each RNode reports with a neighbour's packets reaches `relay status`.
@Suite(.serialized, .timeLimit(.minutes(20))) struct RNodeRelayTests {
    @Test func statusShowsEachNeighboursSignalAsTheRNodeReportsIt() throws {
        let root = R.tempDir()
        let dirs = [root + "/hill", root + "/well"]
        #expect(try R.run(["init", "--data-dir", dirs[0], "--name", "hill"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", dirs[0]]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", dirs[1], "--name", "well", "--join", code]).0 == 0)
        let a = RNodeEmulator()
        let b = RNodeEmulator()
        a.peers = [b]
        b.peers = [a]
        // hill's RNode hears well faintly (below the noise, as LoRa can), well's hears hill better.
        a.reports = (-121, -7.5)
        b.reports = (-98, 4.25)
        a.start()
        b.start()
        defer { a.stop(); b.stop() }
        let p0 = try R.start(["run", "--data-dir", dirs[0], "--link", "rnode:\(a.pty.path)"], log: dirs[0] + "/run.log")
        let p1 = try R.start(["run", "--data-dir", dirs[1], "--link", "rnode:\(b.pty.path)"], log: dirs[1] + "/run.log")
        defer { R.stop(p0); R.stop(p1) }
        func neighbours(_ dir: String) throws -> [[String: Any]] {
            let out = try R.run(["status", "--data-dir", dir, "--json"]).1
            let o = (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
            return ((o["live"] as? [String: Any])?["neighbours"] as? [[String: Any]]) ?? []
        }
        let heard = try R.wait(120) {
            try neighbours(dirs[0]).contains { $0["name"] as? String == "well" && $0["snr"] as? Double == -7.5 }
                && neighbours(dirs[1]).contains { $0["name"] as? String == "hill" && $0["snr"] as? Double == 4.25 }
        }
        let (seenByHill, seenByWell) = (try neighbours(dirs[0]), try neighbours(dirs[1]))
        #expect(heard, "hill: \(seenByHill); well: \(seenByWell)")
        #expect(seenByHill.first { $0["name"] as? String == "well" }?["rssi"] as? Double == -121)
        let text = try R.run(["status", "--data-dir", dirs[0]]).1
        #expect(text.contains("well on rnode") && text.contains("SNR -7.5 dB, RSSI -121 dBm"), "\(text)")
        R.stop(p0)
        R.stop(p1)
    }
}
