import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A relay as a service sees it: locks on its data directory and ports, errors at start, waiting for hardware with
/// backoff, and the amateur-band rules. Real `relay` processes, real ptys, TCP on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(20))) struct OperationsTests {
    func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    func log(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Waits until `relay status` says the relay on `dir` runs, and returns what it printed.
    func running(_ dir: String) throws -> String {
        var status = ""
        _ = try R.wait(60) {
            status = try R.run(["status", "--data-dir", dir]).1
            return status.contains(": running")
        }
        return status
    }

    // MARK: point 3, locks

    @Test func aSecondRelayOnOneDataDirectoryIsRefusedNamingTheFirst() throws {
        let dir = try R.federation(["clinic"])[0]
        let first = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: dir + "/run.log")
        defer { R.stop(first) }
        _ = try self.running(dir)
        let (rc, out, err) = try R.runWithin(15, ["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"])
        #expect(rc == 75, "a second relay on the same data directory must stop at once with 75, got \(rc.map(String.init) ?? "still running"): \(err)")
        #expect(out.isEmpty)
        #expect(self.lines(err).count == 1 && err.contains("in use by another relay (pid \(first.processIdentifier))"), "\(err)")
        #expect(first.isRunning, "the first relay runs on")
        // Everything but `run` works beside the running relay.
        let (rs, id, errS) = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "text", "beside a running relay"])
        #expect(rs == 0 && !id.isEmpty, "send: \(errS)")
        #expect(try R.run(["inbox", "--data-dir", dir]).0 == 0)
        #expect(try R.queuedIDs(dir).contains(id.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(try R.run(["status", "--data-dir", dir]).0 == 0)
        // Once the first stops, the directory is free again.
        R.stop(first)
        let (rc2, _, err2) = try R.runWithin(5, ["run", "--data-dir", dir, "--link", "serial:/dev/ttyCourierMissing0"])
        #expect(rc2 == 69 && !err2.contains("in use"), "after the first relay stopped: \(err2)")
    }

    @Test func aSecondRelayOnOneSerialPortIsRefusedNamingTheFirst() throws {
        let dirs = try R.federation(["village", "market"])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let link = "serial:\(cable.pathA):115200"
        let first = try R.start(["run", "--data-dir", dirs[0], "--link", link], log: dirs[0] + "/run.log")
        defer { R.stop(first) }
        #expect(try R.wait(60) { self.log(dirs[0] + "/run.log").contains("link up") }, "\(self.log(dirs[0] + "/run.log"))")
        // Another relay, another data directory, the same port: as root TIOCEXCL does not stop it, the lock does.
        let (rc, _, err) = try R.runWithin(15, ["run", "--data-dir", dirs[1], "--link", link])
        #expect(rc == 69, "the second relay on one port must stop at once with 69, got \(rc.map(String.init) ?? "still running"): \(err)")
        #expect(self.lines(err).count == 1 && err.contains("\(cable.pathA): in use by process \(first.processIdentifier)"), "\(err)")
        #expect(first.isRunning)
    }

    // MARK: point 4, errors at start and waiting for hardware

    @Test func startupErrorsGiveOneLineAndAnExitCode() throws {
        let dirs = try R.federation(["ridge"], open: true)
        let dir = dirs[0]
        // A port that does not exist.
        let (rc1, out1, err1) = try R.runWithin(15, ["run", "--data-dir", dir, "--link", "serial:/dev/ttyCourierMissing0"])
        #expect(rc1 == 69 && out1.isEmpty, "missing port: \(rc1.map(String.init) ?? "still running") \(err1)")
        #expect(self.lines(err1).count == 1 && err1.contains("/dev/ttyCourierMissing0: no such device") && err1.contains("--wait-for-links"), "\(err1)")
        // A baud rate that is not a number is a usage error, not a path.
        let cable = try VirtualCable()
        defer { cable.stop() }
        let (rc2, _, err2) = try R.runWithin(15, ["run", "--data-dir", dir, "--link", "serial:\(cable.pathA):fast"])
        #expect(rc2 == 64, "baud 'fast': \(rc2.map(String.init) ?? "still running") \(err2)")
        #expect(self.lines(err2).count == 1 && err2.contains("the baud rate 'fast' is not a number"), "\(err2)")
        // A KISS TCP port nobody listens on (one just bound and closed again).
        let probe = try TCP.Listener(host: "127.0.0.1", port: 0)
        let port = probe.port
        probe.close()
        let (rc3, _, err3) = try R.runWithin(15, ["run", "--data-dir", dir, "--link", "kiss-tcp:127.0.0.1:\(port)", "--callsign", "N0CALL-1"])
        #expect(rc3 == 69, "kiss-tcp nobody listens on: \(rc3.map(String.init) ?? "still running") \(err3)")
        #expect(self.lines(err3).count == 1 && err3.contains("127.0.0.1:\(port): cannot connect"), "\(err3)")
        // Asked to wait, the relay starts and shows the link down.
        let waiting = try R.start(["run", "--data-dir", dir, "--link", "serial:/dev/ttyCourierMissing0", "--wait-for-links"], log: dir + "/run.log")
        defer { R.stop(waiting) }
        var status = ""
        let down = try R.wait(60) {
            status = try R.run(["status", "--data-dir", dir]).1
            return status.contains(": running") && status.contains("link serial:/dev/ttyCourierMissing0:9600: DOWN")
        }
        #expect(down, "status: \(status)")
        #expect(waiting.isRunning)
    }

    @Test func waitingForAPortThatAppearsLaterAndBackingOffFromOneThatFailsAtOnce() throws {
        let dirs = try R.federation(["committee"], open: true)
        let dir = dirs[0]
        // The service case: relay.conf asks to wait; the port (a udev-style symlink) appears later.
        let later = dir + "/ttyLATER"
        let conf = try String(contentsOfFile: dir + "/relay.conf", encoding: .utf8)
        try (conf + "wait-for-links = yes\nlink = serial:\(later):115200\n").write(toFile: dir + "/relay.conf", atomically: true, encoding: .utf8)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let relay = try R.start(["run", "--data-dir", dir], log: dir + "/run.log")
        defer { R.stop(relay) }
        var status = ""
        #expect(try R.wait(60) {
            status = try R.run(["status", "--data-dir", dir]).1
            return status.contains(": running") && status.contains("DOWN")
        }, "status before the port exists: \(status)")
        try FileManager.default.createSymbolicLink(atPath: later, withDestinationPath: cable.pathA)
        #expect(try R.wait(60) {
            status = try R.run(["status", "--data-dir", dir]).1
            return status.contains("link serial:\(later):115200: up")
        }, "the relay never came up on the port that appeared: \(status)\n\(self.log(dir + "/run.log"))")
        // While it waited: one line for the missing port, however many retries.
        #expect(self.log(dir + "/run.log").components(separatedBy: "cannot open").count - 1 == 1, "\(self.log(dir + "/run.log"))")
        R.stop(relay)

        // A TNC that accepts and hangs up at once: retried with growing delays, about a line per retry.
        let tnc = try HangUpListener()
        defer { tnc.stop() }
        let flapLog = dir + "/flap.log"
        let flapping = try R.start(["run", "--data-dir", dir, "--link", "kiss-tcp:127.0.0.1:\(tnc.port)", "--callsign", "N0CALL-1"], log: flapLog)
        defer { R.stop(flapping) }
        // Retries after about 2 s, then 4 s (±20%); up, down and one line per retry, where every retry used to log
        // up and down again, every half second.
        #expect(try R.wait(60) { tnc.accepted.count >= 3 }, "the relay stopped retrying: \(self.log(flapLog))")
        let times = tnc.accepted
        let lines = self.lines(self.log(flapLog)).filter { $0.contains("link=kiss-tcp:127.0.0.1:\(tnc.port)") }
        #expect(times[2] - times[0] >= 4, "three connections in \(times[2] - times[0]) s: no backoff")
        #expect(lines.count <= 6, "\(lines.count) log lines for 3 connections:\n\(lines.joined(separator: "\n"))")
        #expect(flapping.isRunning)
    }

    // MARK: point 5, amateur bands

    @Test func kissLinksFollowTheAmateurBandRules() throws {
        let sealed = try R.federation(["sealed"])[0]
        let open = try R.federation(["open"], open: true)[0]
        let tnc = try KISSCapture()
        defer { tnc.stop() }
        let kiss = "kiss-tcp:127.0.0.1:\(tnc.port)"
        // No callsign on a KISS link: refused, naming both ways out.
        let (rc1, _, err1) = try R.runWithin(15, ["run", "--data-dir", open, "--link", kiss])
        #expect(rc1 == 64, "KISS without a callsign: \(rc1.map(String.init) ?? "still running") \(err1)")
        #expect(self.lines(err1).count == 1 && err1.contains("--callsign CALL[-SSID]") && err1.contains("--i-know-this-is-not-amateur"), "\(err1)")
        // A callsign on a sealed federation: refused.
        let (rc2, _, err2) = try R.runWithin(15, ["run", "--data-dir", sealed, "--link", kiss, "--callsign", "N0CALL-1"])
        #expect(rc2 == 64, "callsign on a sealed federation: \(rc2.map(String.init) ?? "still running") \(err2)")
        #expect(self.lines(err2).count == 1 && err2.contains("sealed") && err2.contains("relay init --open"), "\(err2)")
        // A callsign on links that cannot carry it: refused.
        for link in ["serial:/dev/ttyCourierMissing0", "tcp-listen:127.0.0.1:0"] {
            let (rc, _, err) = try R.runWithin(15, ["run", "--data-dir", open, "--link", link, "--callsign", "N0CALL-1"])
            #expect(rc == 64 && self.lines(err).count == 1 && err.contains("cannot carry a callsign"), "\(link): \(rc.map(String.init) ?? "still running") \(err)")
        }
        #expect(tnc.frames.isEmpty, "nothing may reach the TNC from a refused start")

        // Open federation and a callsign: every frame is AX.25 from that station; start line and status say so.
        let log = open + "/run.log"
        let relay = try R.start(["run", "--data-dir", open, "--link", kiss, "--callsign", "n0call-1"], log: log)
        defer { R.stop(relay) }
        #expect(try R.wait(60) { tnc.frames.contains { $0.type == 0x00 } }, "no data frame reached the TNC: \(self.log(log))")
        let data = tnc.frames.filter { $0.type == 0x00 }
        #expect(data.allSatisfy { AX25.parseUI($0.data)?.source.description == "N0CALL-1" }, "a data frame without the callsign")
        #expect(self.log(log).contains("callsign=N0CALL-1") && self.log(log).contains("mode=open") && self.log(log).contains("relay running"), "\(self.log(log))")
        let status = try self.running(open)
        #expect(status.contains("open federation, callsign N0CALL-1"), "\(status)")
        R.stop(relay)

        // A KISS modem that is not on an amateur band (a sealed federation): allowed when the operator says so.
        let before = tnc.frames.count
        let ism = try R.start(["run", "--data-dir", sealed, "--link", kiss, "--i-know-this-is-not-amateur"], log: sealed + "/run.log")
        defer { R.stop(ism) }
        #expect(try R.wait(60) { tnc.frames.dropFirst(before).contains { $0.type == 0x00 } }, "\(self.log(sealed + "/run.log"))")
        #expect(tnc.frames.dropFirst(before).filter { $0.type == 0x00 }.allSatisfy { AX25.parseUI($0.data) == nil }, "no AX.25 without a callsign")
        let status2 = try self.running(sealed)
        #expect(status2.contains("sealed federation, no callsign"), "\(status2)")
    }
}

/// A TCP port that accepts connections and closes each at once, recording when (a TNC that hangs up).
final class HangUpListener: @unchecked Sendable {
    private let listener: TCP.Listener
    private let lock = NSLock()
    private var times: [Double] = []
    private var stopped = false
    let port: Int

    init() throws {
        self.listener = try TCP.Listener(host: "127.0.0.1", port: 0)
        self.port = self.listener.port
        Thread { [self] in
            while !self.isStopped {
                guard let c = try? self.listener.accept(timeout: 0.2) else { continue }
                c.close()
                self.lock.lock()
                self.times.append(Date().timeIntervalSince1970)
                self.lock.unlock()
            }
        }.start()
    }

    var accepted: [Double] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.times
    }

    var isStopped: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.stopped
    }

    func stop() {
        self.lock.lock()
        self.stopped = true
        self.lock.unlock()
        self.listener.close()
    }
}

/// A KISS TCP port (as Direwolf's) that records every KISS frame it is sent.
final class KISSCapture: @unchecked Sendable {
    private let listener: TCP.Listener
    private let lock = NSLock()
    private var got: [(type: UInt8, data: [UInt8])] = []
    private var stopped = false
    let port: Int

    init() throws {
        self.listener = try TCP.Listener(host: "127.0.0.1", port: 0)
        self.port = self.listener.port
        Thread { [self] in
            while !self.isStopped {
                guard let c = try? self.listener.accept(timeout: 0.2) else { continue }
                Thread { [self] in
                    var decoder = KISSDecoder()
                    while !self.isStopped {
                        guard let bytes = try? c.read(max: 4_096, timeout: 0.2) else { break }
                        let frames = decoder.feed(bytes[...])
                        self.lock.lock()
                        self.got += frames
                        self.lock.unlock()
                    }
                    c.close()
                }.start()
            }
        }.start()
    }

    var frames: [(type: UInt8, data: [UInt8])] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.got
    }

    var isStopped: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.stopped
    }

    func stop() {
        self.lock.lock()
        self.stopped = true
        self.lock.unlock()
        self.listener.close()
    }
}
