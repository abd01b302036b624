import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that accepts one connection at a time and reads until it closes: the far end a
/// `kiss-tcp:` link needs (a software TNC that hears nothing on the air).
final class TCPSink: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0, listen(fd, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        withUnsafeMutablePointer(to: &addr) { p in
            _ = p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: addr.sin_port)
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread {
                    var buf = [UInt8](repeating: 0, count: 4_096)
                    while read(c, &buf, buf.count) > 0 {}
                    Glibc.close(c)
                }
            }
        }
    }

    func close() { shutdown(self.fd, Int32(SHUT_RDWR)); Glibc.close(self.fd) }
}

/// `relay run` stops and reloads as a service: SIGTERM and SIGINT on every link type, however it was started;
/// SIGHUP re-reads relay.conf; a second SIGTERM cuts a slow stop short. Real processes, real ptys and sockets.
@Suite(.serialized, .timeLimit(.minutes(20))) struct SignalTests {
    struct Case {
        let launch: R.Launch
        let signal: Int32
        var name: String { self.signal == SIGTERM ? "SIGTERM" : "SIGINT" }
    }

    static let cases: [Case] = [
        Case(launch: .service, signal: SIGTERM),
        Case(launch: .service, signal: SIGINT),
        Case(launch: .shellBackground, signal: SIGTERM),
        Case(launch: .shellBackground, signal: SIGINT),
        Case(launch: .blockedAndIgnored, signal: SIGTERM),
        Case(launch: .blockedAndIgnored, signal: SIGINT),
    ]

    @Test(arguments: ["serial", "kiss-tcp", "tcp-listen"])
    func stopsOnSigtermAndSigintHoweverItWasStarted(linkType: String) throws {
        let root = R.tempDir()
        let dir = root + "/relay"
        // Open mode: an amateur-band KISS link carries a callsign, which a sealed federation may not use.
        #expect(try R.run(["init", "--data-dir", dir, "--name", "clinic", "--open"]).0 == 0)
        let cable = try VirtualCable()
        let sink = try TCPSink()
        defer { cable.stop(); sink.close() }
        let link: [String]
        switch linkType {
        case "serial": link = ["--link", "serial:\(cable.pathA):115200"]
        case "kiss-tcp": link = ["--link", "kiss-tcp:127.0.0.1:\(sink.port)", "--callsign", "N0CALL-1"]
        default: link = ["--link", "tcp-listen:127.0.0.1:0"]
        }
        // Something waits in the queue: it must still be there after every stop.
        let queued = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "alert", "Well 3 is dry; use well 5."])
        #expect(queued.0 == 0)
        let alertID = queued.1.trimmingCharacters(in: .whitespacesAndNewlines)
        var slowest = 0.0
        for (i, c) in Self.cases.enumerated() {
            let log = dir + "/run-\(i).log"
            let r = try R.start(["run", "--data-dir", dir] + link, log: log, as: c.launch)
            let up = R.wait(60) { R.text(log).contains("relay running") }
            #expect(up, "\(linkType), \(c.launch): the relay did not start: \(R.text(log))")
            guard up else { R.stop(r.process); continue }
            let sent = Date()
            kill(r.pid, c.signal)
            let exited = R.wait(30) { !r.isRunning }
            let took = Date().timeIntervalSince(sent)
            slowest = max(slowest, took)
            #expect(exited, "\(linkType), \(c.launch): still running 30 s after \(c.name): \(R.text(log))")
            guard exited else { kill(r.pid, SIGKILL); r.process.waitUntilExit(); continue }
            // The issue's bar is 2 s; a loaded 2-core CI machine gets some slack here.
            #expect(took < 5, "\(linkType), \(c.launch): \(c.name) took \(took) s")
            #expect(r.process.terminationReason == .exit && r.process.terminationStatus == 0,
                    "\(linkType), \(c.launch), \(c.name): exit \(r.process.terminationStatus)")
            let text = R.text(log)
            #expect(text.contains("\(c.name): stopping") && text.contains("stopped; everything queued is kept"),
                    "\(linkType), \(c.launch): \(text)")
        }
        print("\(linkType): slowest stop after a signal: \(String(format: "%.2f", slowest)) s")
        let queue = try R.queuedIDs(dir)
        #expect(queue.contains(alertID), "the queue after six stops: \(queue)")
    }

    @Test func sighupReloadsEvenWhenTheParentIgnoredIt() throws {
        let dir = R.tempDir() + "/clinic"
        #expect(try R.run(["init", "--data-dir", dir, "--name", "clinic"]).0 == 0)
        let log = dir + "/run.log"
        // Started with SIGHUP ignored and blocked, as `nohup` and some supervisors leave it.
        let r = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log, as: .blockedAndIgnored)
        defer { R.stop(r.process) }
        #expect(R.wait(60) { R.text(log).contains("relay running") }, "the relay did not start: \(R.text(log))")
        #expect(R.count("configuration applied", in: R.text(log)) == 0)
        let conf = dir + "/relay.conf"
        let original = try String(contentsOfFile: conf, encoding: .utf8)
        try (original + "group = water-committee\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(r.pid, SIGHUP)
        // The signal's own line, then the change applied: each exactly once per SIGHUP.
        #expect(R.wait(60) { R.count("configuration applied", in: R.text(log)) == 1 }, "no reload: \(R.text(log))")
        let text = R.text(log)
        #expect(R.count("SIGHUP: reloading \(conf)", in: text) == 1 && text.contains("groups=water-committee"), "\(text)")
        try (original + "group = water-committee\ngroup = clinic-staff\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(r.pid, SIGHUP)
        #expect(R.wait(60) { R.count("configuration applied", in: R.text(log)) == 2 }, "no second reload: \(R.text(log))")
        #expect(R.count("SIGHUP: reloading", in: R.text(log)) == 2 && R.text(log).contains("groups=water-committee,clinic-staff"))
        #expect(r.isRunning, "SIGHUP must not stop the relay")
    }

    @Test func aSecondSigtermCutsASlowStopShort() throws {
        let dir = R.tempDir() + "/clinic"
        #expect(try R.run(["init", "--data-dir", dir, "--name", "clinic"]).0 == 0)
        let aid = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "aid", "Fuel for the clinic generator."])
        #expect(aid.0 == 0)
        let aidID = aid.1.trimmingCharacters(in: .whitespacesAndNewlines)
        let log = dir + "/run.log"
        let r = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log, as: .service)
        #expect(R.wait(60) { R.text(log).contains("relay running") }, "the relay did not start: \(R.text(log))")
        // Another process holds the database's write lock (a backup tool, a stuck `sqlite3` shell): the relay's
        // last step when it stops, folding the write-ahead log into the database, waits for it.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(120)
            """, dir + "/courier.db"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        // SIGKILL: the holder inherits the test thread's mask, in which SIGTERM is blocked.
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() } }
        #expect(String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).contains("locked"))

        kill(r.pid, SIGTERM)
        #expect(R.wait(30) { R.text(log).contains("SIGTERM: stopping") })
        // It is waiting on the lock, not gone.
        #expect(!R.wait(2) { !r.isRunning }, "the stop was not slow: the test proves nothing: \(R.text(log))")
        let sent = Date()
        kill(r.pid, SIGTERM)
        #expect(R.wait(30) { !r.isRunning }, "a second SIGTERM did not end a slow stop")
        print("second SIGTERM to exit: \(String(format: "%.2f", Date().timeIntervalSince(sent))) s")
        #expect(r.process.terminationReason == .exit && r.process.terminationStatus == 1)
        #expect(R.text(log).contains("SIGTERM again: stopping now without waiting"))
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        // Nothing was lost: the queue is intact and the next start stops cleanly.
        #expect(try R.queuedIDs(dir).contains(aidID))
        let again = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: dir + "/run2.log")
        #expect(R.wait(60) { R.text(dir + "/run2.log").contains("relay running") })
        R.stop(again)
    }
}
