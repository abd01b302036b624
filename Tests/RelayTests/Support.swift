import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Two real pseudo-terminals joined back to back by a thread in the test: what one relay writes to its port, the
/// other reads from its own, as over a null-modem cable.
final class PTYBridge: @unchecked Sendable {
    let pathA: String
    let pathB: String
    private var masters: [Int32] = []
    private var slaves: [Int32] = []
    private let lock = NSLock()
    private var stopped = false

    init() {
        var paths: [String] = []
        for _ in 0..<2 {
            var m: Int32 = -1
            var s: Int32 = -1
            precondition(openpty(&m, &s, nil, nil, nil) == 0)
            var t = termios()
            tcgetattr(s, &t)
            cfmakeraw(&t)
            tcsetattr(s, TCSANOW, &t)
            paths.append(String(cString: ttyname(s)))
            // Non-blocking: bytes sent while the far side is down are lost, as on a cable to a switched-off box.
            _ = fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK)
            self.masters.append(m)
            self.slaves.append(s)
        }
        self.pathA = paths[0]
        self.pathB = paths[1]
        let (a, b) = (self.masters[0], self.masters[1])
        Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 4096)
            while !self.isStopped {
                var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, 200) > 0 else { continue }
                if fds.allSatisfy({ $0.revents & Int16(POLLIN) == 0 }) { usleep(20_000); continue }
                for (i, (from, to)) in [(a, b), (b, a)].enumerated() where fds[i].revents & Int16(POLLIN) != 0 {
                    let n = read(from, &buf, buf.count)
                    if n > 0 { _ = buf.withUnsafeBytes { write(to, $0.baseAddress, n) } }
                }
            }
        }.start()
    }

    var isStopped: Bool { self.lock.lock(); defer { self.lock.unlock() }; return self.stopped }

    func stop() {
        self.lock.lock()
        self.stopped = true
        self.lock.unlock()
    }
}

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

    /// Runs `relay ARGS` to completion: (exit code, stdout, stderr).
    @discardableResult
    static func run(_ args: [String], stdin: String? = nil) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: self.binary)
        p.arguments = args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
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
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Starts `relay run` in the background, logging to a file.
    static func start(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: self.binary)
        p.arguments = args
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = FileHandle(forWritingAtPath: log)!
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        return p
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

    static func stop(_ p: Process) {
        guard p.isRunning else { return }
        p.terminate()
        let end = Date().addingTimeInterval(20)
        while p.isRunning && Date() < end { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }
}
