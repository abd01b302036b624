import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `relay` executable. (Relays are joined by `VirtualCable`: two real pseudo-terminals back to back.)
enum R {
    static var binary: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("relay").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/relay").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    static func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("relay-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Runs `relay ARGS` to completion: (exit code, stdout, stderr). Output goes to temporary files, not pipes: a
    /// pipe's reader waits for every holder of its write end (a relay another test starts at the same moment can
    /// inherit it), and a child that fills one pipe while the parent reads the other would block both. A command
    /// still running after `deadline` seconds is killed and reported (exit code -1): a test never hangs on it.
    @discardableResult
    static func run(_ args: [String], stdin: String? = nil, deadline: Double = 300) throws -> (Int32, String, String) {
        try self.exec(self.binary, args, stdin: stdin, deadline: deadline)
    }

    /// Runs any program as `run` runs `relay` (output through files, a deadline).
    static func exec(_ program: String, _ args: [String], stdin: String? = nil, deadline: Double = 300) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        let dir = self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (outPath, errPath) = (dir + "/stdout", dir + "/stderr")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        if let stdin {
            let i = Pipe()
            p.standardInput = i
            try p.run()
            i.fileHandleForWriting.write(Data(stdin.utf8))
            try i.fileHandleForWriting.close()
        } else {
            p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try p.run()
        }
        let end = Date().addingTimeInterval(deadline)
        while p.isRunning && Date() < end { usleep(5_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            Issue.record("\((program as NSString).lastPathComponent) \(args.joined(separator: " ")) still ran after \(Int(deadline)) s: killed")
            return (-1, self.text(outPath), self.text(errPath))
        }
        p.waitUntilExit()
        return (p.terminationStatus, self.text(outPath), self.text(errPath))
    }

    /// How a test starts a relay: as the field does.
    enum Launch {
        /// As systemd does: default signal actions, nothing blocked (Foundation's `Process` spawns this way).
        case service
        /// As `relay run … &` in a shell script: a non-interactive shell starts a background job with SIGINT and
        /// SIGQUIT ignored.
        case shellBackground
        /// From a parent that left SIGTERM, SIGINT and SIGHUP blocked and ignored (both survive `exec`).
        case blockedAndIgnored
    }

    /// A running `relay` process: its pid (the relay's own, not a wrapper's) and the process the test waits on.
    struct Running {
        let process: Process
        let pidFile: String?
        var pid: Int32 {
            guard let f = self.pidFile else { return self.process.processIdentifier }
            return Int32(((try? String(contentsOfFile: f, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        var isRunning: Bool { self.process.isRunning }
    }

    /// Starts `relay run` in the background, logging to a file.
    static func start(_ args: [String], log: String) throws -> Process {
        try self.start(args, log: log, as: .service).process
    }

    /// Starts `relay ARGS` the way `launch` says, logging to a file.
    static func start(_ args: [String], log: String, as launch: Launch) throws -> Running {
        // `Process` passes on the spawning thread's signal mask, and a test runs on a thread that blocks every
        // signal (libdispatch's workers do): a child would start with SIGTERM and SIGCHLD blocked. So each launch
        // goes through a small Python step that sets the signals the way its model leaves them, then execs.
        let p = Process()
        var pidFile: String? = nil
        let prepare: String
        var command = [self.binary] + args
        switch launch {
        case .service:
            prepare = """
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD): signal.signal(s, signal.SIG_DFL)
                """
        case .shellBackground:
            let f = log + ".pid"
            pidFile = f
            prepare = """
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD): signal.signal(s, signal.SIG_DFL)
                """
            command = ["/bin/sh", "-c", "\"$0\" \"$@\" & echo $! > '\(f)'; wait $!"] + command
        case .blockedAndIgnored:
            prepare = """
                sigs = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
                signal.pthread_sigmask(signal.SIG_SETMASK, sigs)
                for s in sigs: signal.signal(s, signal.SIG_IGN)
                """
        }
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import os, signal, sys\n" + prepare + "\nos.execv(sys.argv[1], sys.argv[1:])\n"] + command
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = FileHandle(forWritingAtPath: log)!
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        let r = Running(process: p, pidFile: pidFile)
        if pidFile != nil { _ = self.wait(30) { r.pid > 0 } }
        return r
    }

    /// Runs `relay ARGS` for at most `seconds`: (exit code, or nil when it was still running and had to be killed;
    /// stdout; stderr). A command that should refuse at once must not run on.
    static func runWithin(_ seconds: Double, _ args: [String]) throws -> (Int32?, String, String) {
        let dir = self.tempDir()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: self.binary)
        p.arguments = args
        FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: dir + "/out")!
        p.standardError = FileHandle(forWritingAtPath: dir + "/err")!
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        _ = self.wait(seconds) { !p.isRunning }
        var code: Int32? = nil
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        } else {
            code = p.terminationStatus
        }
        return (code, self.text(dir + "/out"), self.text(dir + "/err"))
    }

    /// Polls until `condition` holds or the deadline passes.
    static func wait(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            usleep(200_000)
        }
        return try condition()
    }

    static func inbox(_ dir: String) throws -> [[String: Any]] {
        let (_, out, _) = try self.run(["inbox", "--data-dir", dir, "--json"])
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Stops a relay as a service manager does: SIGTERM, then wait. Records a test issue unless it exits with
    /// status 0 within `seconds` (then it is killed so the test run goes on).
    static func stop(_ p: Process, within seconds: Double = 20, sourceLocation: SourceLocation = #_sourceLocation) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(20_000) }
        if p.isRunning {
            Issue.record("relay \(p.processIdentifier) still running \(seconds) s after SIGTERM: killed", sourceLocation: sourceLocation)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return
        }
        #expect(p.terminationReason == .exit && p.terminationStatus == 0,
                "relay stopped by SIGTERM exited with \(p.terminationReason == .exit ? "status" : "signal") \(p.terminationStatus)",
                sourceLocation: sourceLocation)
    }

    /// Relays made as operators make them: `relay init` for the first (`--open` if asked), `relay invite`, then
    /// `relay init --join CODE` for the others. Returns their data directories, in a new temporary folder.
    static func federation(_ names: [String], open: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let root = self.tempDir()
        var dirs: [String] = []
        var code: String? = nil
        for n in names {
            let dir = root + "/" + n
            var args = ["init", "--data-dir", dir, "--name", n]
            if let code { args += ["--join", code] } else if open { args.append("--open") }
            let (rc, _, err) = try self.run(args)
            #expect(rc == 0, "init \(n): \(err)", sourceLocation: sourceLocation)
            if code == nil { code = try self.run(["invite", "--data-dir", dir]).1.trimmingCharacters(in: .whitespacesAndNewlines) }
            dirs.append(dir)
        }
        return dirs
    }

    /// A relay's short node id, as `relay id` prints it.
    static func id(_ dir: String) throws -> String {
        try self.run(["id", "--data-dir", dir]).1.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The ids of the bundles queued in a relay's database (read with Python's sqlite3 from the real file).
    static func queuedIDs(_ dir: String) throws -> Set<String> {
        let out = try self.exec("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
            for (i,) in c.execute("SELECT printf('%08x.%d.%d', origin, created, sequence) FROM bundle"): print(i)
            """, dir + "/courier.db"]).1
        return Set(out.split(separator: "\n").map(String.init))
    }

    /// The text of a log file ("" before it exists).
    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// How many times `needle` occurs in `haystack`.
    static func count(_ needle: String, in haystack: String) -> Int { haystack.components(separatedBy: needle).count - 1 }
}

/// A hostile federation member (issue 10): `courier-dev forge` builds bundles of any kind claiming any origin,
/// signed with any key or unsigned, with any priority override, seals them in packets with the federation's
/// network key as the member `--member DIR`, and writes them on a pty line (one end of a `VirtualCable`, so the
/// relay on the other end hears them as from the air). See `courier-dev forge --help`.
enum Forger {
    static var binary: String {
        URL(fileURLWithPath: R.binary).deletingLastPathComponent().appendingPathComponent("courier-dev").path
    }

    /// Runs `courier-dev forge ARGS` to completion and returns the ids of the bundles it forged (records an issue
    /// when it fails).
    @discardableResult
    static func forge(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let (rc, o, e) = try R.exec(self.binary, ["forge"] + args)
        #expect(rc == 0, "courier-dev forge \(args): \(e)", sourceLocation: sourceLocation)
        return o.split(separator: "\n").map(String.init)
    }
}

extension R {
    /// Packets the running relay on `dir` refused as replays (SPEC 4.8), over all its links, from its status file
    /// (`relay status --json`; counters reach it within about 5 s). 0 when it does not run.
    static func replays(_ dir: String) -> Int {
        guard let (_, out, _) = try? R.run(["status", "--data-dir", dir, "--json"]),
              let o = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let links = (o["live"] as? [String: Any])?["links"] as? [[String: Any]]
        else { return 0 }
        return links.compactMap { $0["replays"] as? Int }.reduce(0, +)
    }
}
