import CourierLinks
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Link health an operator can trust (counters, the wrong-baud warning, refused packets in the debug log) and
/// `relay status` / logging as a service expects (exit 3 when not running, status in the runtime directory and
/// written on change, journald-style lines), on real relay processes.
@Suite(.serialized, .timeLimit(.minutes(20))) struct HealthTests {
    /// The first link of `relay status --json`'s live part.
    func link(_ dir: String) throws -> [String: Any]? {
        let out = try R.run(["status", "--data-dir", dir, "--json"]).1
        let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return ((o?["live"] as? [String: Any])?["links"] as? [[String: Any]])?.first
    }

    func counter(_ link: [String: Any]?, _ key: String) -> Int {
        ((link?["counters"] as? [String: Any])?[key] as? Int) ?? (link?[key] as? Int) ?? 0
    }

    /// `relay run` as systemd starts it (signals unblocked, as `R.start(as: .service)`), with extra environment.
    func startWithEnvironment(_ env: [String: String], _ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let prepare = """
            import os, signal, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD): signal.signal(s, signal.SIG_DFL)
            os.execv(sys.argv[1], sys.argv[1:])
            """
        p.arguments = env.map { "\($0.key)=\($0.value)" } + ["python3", "-c", prepare, R.binary] + args
        // An existing file is kept (its inode may be the journal stream the test names).
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        let h = FileHandle(forWritingAtPath: log)!
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        return p
    }

    /// Two relays on a serial cable that turns noisy (2% of bytes damaged): the receiving relay's status shows
    /// CRC errors growing and warns once; its debug log shows every refused frame and packet with the reason.
    @Test func aNoisyLineShowsInCountersStatusAndTheDebugLog() throws {
        let dirs = try R.federation(["hill", "valley"])
        let idB = try R.id(dirs[1])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let logA = dirs[0] + "/run.log"
        let a = try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(cable.pathA):115200", "--log-level", "debug"], log: logA)
        let b = try R.start(["run", "--data-dir", dirs[1], "--link", "serial:\(cable.pathB):115200"], log: dirs[1] + "/run.log")
        defer { R.stop(a); R.stop(b) }
        let heard = try R.wait(60) { try R.run(["status", "--data-dir", dirs[0]]).1.contains("neighbour \(idB)") }
        #expect(heard, "the relays never met on a clean line: \(R.text(logA))")
        // The status file's counters are rewritten at most every `statusCountersInterval` when nothing else changed:
        // the write that showed the neighbour may predate our first frame out (CI's run of 0035830 read framesOut 0).
        var clean: [String: Any]?
        let both = try R.wait(60) {
            clean = try self.link(dirs[0])
            return self.counter(clean, "framesIn") > 0 && self.counter(clean, "bytesIn") > 0 && self.counter(clean, "framesOut") > 0
        }
        #expect(both, "a clean line counts frames both ways: \(String(describing: clean))")
        #expect(self.counter(clean, "crcErrors") == 0)
        cable.setNoise(0.02)
        // Traffic on the noisy line: a message from the valley to the hill every second or so (each one sent again
        // while unacknowledged).
        let idA = try R.id(dirs[0])
        var status = ""
        var polls = 0
        let warned = try R.wait(90) {
            if polls % 5 == 0 {
                let (rc, _, err) = try R.run(["send", "--data-dir", dirs[1], "--to", idA, "--kind", "text", "noisy line test \(polls): the road to the hill is closed"])
                #expect(rc == 0, "send: \(err)")
            }
            polls += 1
            status = try R.run(["status", "--data-dir", dirs[0]]).1
            return status.contains("wrong baud or bad cable")
        }
        #expect(warned, "2% line noise must raise the warning in status: \(status)")
        let noisy = try self.link(dirs[0])
        #expect(self.counter(noisy, "crcErrors") + self.counter(noisy, "framingErrors") >= 5, "\(String(describing: noisy))")
        #expect(status.contains("errors: ") && status.contains(" CRC, "), "\(status)")
        // A well-framed packet (good CRC) that is not from this federation: refused by the engine, with the reason.
        var g = SplitMix64(seed: 12)
        for _ in 0..<3 {
            cable.inject(COBSFrameCodec().encode((0..<60).map { _ in UInt8(truncatingIfNeeded: g.next()) }), toward: cable.pathA)
        }
        let refused = R.wait(30) { R.text(logA).contains("refused packet") }
        let log = R.text(logA)
        #expect(refused && (log.contains("reason=authentication") || log.contains("reason=unknown sender")),
                "the debug log shows packets refused by the engine with the reason: \(log.suffix(3_000))")
        #expect(log.contains("refused frame") && log.contains("CRC mismatch"), "the debug log shows damaged frames: \(log.suffix(3_000))")
        #expect(R.count("wrong baud or bad cable", in: log) == 1, "the warning is logged once per condition")
        let counted = try R.wait(20) {
            let l = try self.link(dirs[0])
            return self.counter(l, "authFailures") + self.counter(l, "unknownSender") >= 1
        }
        #expect(counted, "packets the engine refused are counted in status")
    }

    /// Garbage on the line, as from a modem at another baud rate: framing errors grow in `relay status` (text and
    /// JSON), the warning shows there and is logged once however long the garbage goes on.
    @Test func garbageLikeAWrongBaudRateWarnsOnce() throws {
        let dirs = try R.federation(["pump"])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let logA = dirs[0] + "/run.log"
        let a = try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(cable.pathA):115200"], log: logA)
        defer { R.stop(a) }
        #expect(try R.wait(30) { try R.run(["status", "--data-dir", dirs[0]]).1.contains(": up") }, "\(R.text(logA))")
        var g = SplitMix64(seed: 9600)
        func burst() { cable.inject((0..<4_096).map { _ in UInt8(truncatingIfNeeded: g.next()) }, toward: cable.pathA) }
        burst()
        var status = ""
        let warned = try R.wait(30) {
            status = try R.run(["status", "--data-dir", dirs[0]]).1
            return status.contains("WARNING:") && status.contains("wrong baud or bad cable")
        }
        #expect(warned, "\(status)\n\(R.text(logA))")
        let first = self.counter(try self.link(dirs[0]), "framingErrors") + self.counter(try self.link(dirs[0]), "crcErrors")
        #expect(first >= 5)
        burst()
        let grew = try R.wait(30) {
            let l = try self.link(dirs[0])
            return self.counter(l, "framingErrors") + self.counter(l, "crcErrors") > first
        }
        #expect(grew, "the error counters grow with more garbage")
        let l = try self.link(dirs[0])
        #expect(((l?["warnings"] as? [String]) ?? []).contains { $0.contains("wrong baud or bad cable") }, "\(String(describing: l))")
        #expect(self.counter(l, "bytesIn") >= 8_192)
        #expect(R.count("wrong baud or bad cable", in: R.text(logA)) == 1, "\(R.text(logA))")
        // Well-framed packets that are not from this federation: refused by the engine, counted, warned about.
        var f = SplitMix64(seed: 868)
        for _ in 0..<8 {
            cable.inject(COBSFrameCodec().encode((0..<60).map { _ in UInt8(truncatingIfNeeded: f.next()) }), toward: cable.pathA)
        }
        var last = ""
        let foreign = try R.wait(30) {
            last = try R.run(["status", "--data-dir", dirs[0]]).1
            return last.contains("another federation on this channel")
        }
        #expect(foreign, "\(last)")
    }

    /// `relay status` exits 3 while no relay runs, and knows at once when one was killed (the lock, not the age
    /// of a file); with $RUNTIME_DIRECTORY the status file is there, found by `relay status` run without it, and
    /// an idle relay does not rewrite it every second.
    @Test func statusExitsThreeWhenNotRunningAndReadsTheRuntimeDirectory() throws {
        let dirs = try R.federation(["school"])
        let dir = dirs[0]
        let (rc0, out0, _) = try R.run(["status", "--data-dir", dir])
        #expect(rc0 == 3 && out0.contains("not running"), "\(rc0): \(out0)")
        #expect(try R.run(["status", "--data-dir", dir, "--json"]).0 == 3)
        let runDir = R.tempDir()
        let p = try self.startWithEnvironment(["RUNTIME_DIRECTORY": runDir], ["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: dir + "/run.log")
        defer { R.stop(p) }
        var status = (Int32(0), "", "")
        let up = try R.wait(30) {
            status = try R.run(["status", "--data-dir", dir])
            return status.0 == 0 && status.1.contains("running (pid \(p.processIdentifier))") && status.1.contains("link tcp-listen")
        }
        #expect(up, "\(status) \(R.text(dir + "/run.log"))")
        #expect(FileManager.default.fileExists(atPath: runDir + "/status.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/status.json"), "the status file is in the runtime directory only")
        // Idle: the file stays as it is (written on change, not every second).
        let before = try FileManager.default.attributesOfItem(atPath: runDir + "/status.json")[.modificationDate] as? Date
        let rewritten = R.wait(4) {
            ((try? FileManager.default.attributesOfItem(atPath: runDir + "/status.json"))?[.modificationDate] as? Date) != before
        }
        #expect(!rewritten, "an idle relay rewrote its status file")
        // Killed without a chance to clean up: its status file is fresh, yet status knows at once.
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let (rc1, out1, _) = try R.run(["status", "--data-dir", dir])
        #expect(rc1 == 3 && out1.contains("not running"), "\(rc1): \(out1)")
    }

    /// Under systemd (stderr is the journal stream $JOURNAL_STREAM names), log lines carry a syslog priority and
    /// no timestamp of their own.
    @Test func underSystemdTheLogSuitsTheJournal() throws {
        let dirs = try R.federation(["market"])
        let log = dirs[0] + "/run.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        var st = stat()
        #expect(stat(log, &st) == 0)
        let p = try self.startWithEnvironment(["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"], ["run", "--data-dir", dirs[0], "--link", "tcp-listen:127.0.0.1:0"], log: log)
        let started = R.wait(30) { R.text(log).contains("relay running") }
        R.stop(p)
        let lines = R.text(log).split(separator: "\n")
        #expect(started, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<5>notice relay running") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<5>notice stopped") }, "\(lines)")
        #expect(!lines.contains { $0.first?.isNumber == true }, "no line starts with a timestamp under systemd: \(lines)")
    }
}
