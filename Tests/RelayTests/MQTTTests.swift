import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real mosquitto broker for a test: listening on 127.0.0.1 only, on a free port, with its own temporary
/// configuration (never the system's service), started and waited for with a connect probe, stopped at the end.
final class TestBroker {
    let port: Int
    let dir: String
    let extra: String
    private(set) var process: Process?

    static var binary: String? {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `extra`: more configuration lines (a bridge to another broker).
    init(extra: String = "") throws {
        self.port = try Self.freePort()
        self.dir = R.tempDir()
        self.extra = extra
        try self.start()
    }

    /// A port nobody listens on now: the kernel's pick for a socket bound to 127.0.0.1 port 0 (the flood tests' relays
    /// listen on one too).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw BrokerError(message: "cannot find a free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    struct BrokerError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    func start() throws {
        guard let binary = Self.binary else { throw BrokerError(message: "mosquitto is not installed (apt-get install mosquitto)") }
        let conf = self.dir + "/mosquitto.conf"
        try """
            listener \(self.port) 127.0.0.1
            allow_anonymous true
            persistence false
            log_dest stderr
            log_type error
            log_type warning
            log_type notice
            \(self.extra)
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        // Through Python, which clears the signal mask the test's thread passes on (it blocks SIGTERM): the broker
        // then stops on SIGTERM as it does under a service manager.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_SETMASK, [])\nos.execv(sys.argv[1], sys.argv[1:])\n",
                       binary, "-c", conf]
        let log = self.dir + "/mosquitto.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        h.seekToEndOfFile()
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        self.process = p
        let up = R.wait(15) { p.isRunning && Self.accepts(self.port) }
        guard up else {
            self.kill()
            throw BrokerError(message: "mosquitto did not listen on 127.0.0.1:\(self.port) within 15 s: \(R.text(log))")
        }
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    static func accepts(_ port: Int) -> Bool {
        do {
            let ch = try TCP.connect(host: "127.0.0.1", port: port, timeout: 1)
            ch.close()
            return true
        } catch {
            return false
        }
    }

    /// SIGKILL: the broker vanishes as a crashed or rebooted machine's does.
    func kill() {
        guard let p = self.process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func stop() {
        guard let p = self.process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGTERM)
        if !R.wait(10, { !p.isRunning }) { self.kill() }
        p.waitUntilExit()
    }

    var log: String { R.text(self.dir + "/mosquitto.log") }
}

/// Gateways joined through an MQTT broker: two radio meshes (relays on virtual serial cables), each with gateways
/// that also have an `mqtt:` link to a real mosquitto the test starts; real `relay` processes.
@Suite(.serialized, .timeLimit(.minutes(20))) struct MQTTTests {
    /// Valley A: gateway ga1 - relay a - gateway ga2 (two gateways of one valley, both on the broker);
    /// valley B: gateway gb - relay b. Returns the processes and cables to stop.
    struct Meshes {
        var dirs: [String: String]
        var processes: [String: Process] = [:]
        var cables: [VirtualCable] = []
        var ids: [String: String] = [:]
        static let names = ["a", "ga1", "ga2", "gb", "b"]

        func stop() {
            for p in self.processes.values { R.stop(p) }
            for c in self.cables { c.stop() }
        }
    }

    func startMeshes(brokerFor: (String) -> TestBroker) throws -> Meshes {
        let dirs = try R.federation(Meshes.names)
        var m = Meshes(dirs: Dictionary(uniqueKeysWithValues: zip(Meshes.names, dirs)))
        for n in Meshes.names { m.ids[n] = try R.id(m.dirs[n]!) }
        let (c1, c2, c3) = (try VirtualCable(), try VirtualCable(), try VirtualCable())
        m.cables = [c1, c2, c3]
        func mqtt(_ n: String) -> String { "mqtt:127.0.0.1:\(brokerFor(n).port)" }
        let links: [String: [String]] = [
            "a": ["serial:\(c1.pathA):115200", "serial:\(c2.pathA):115200"],
            "ga1": ["serial:\(c1.pathB):115200", mqtt("ga1")],
            "ga2": ["serial:\(c2.pathB):115200", mqtt("ga2")],
            "gb": ["serial:\(c3.pathA):115200", mqtt("gb")],
            "b": ["serial:\(c3.pathB):115200"],
        ]
        for n in Meshes.names {
            let d = m.dirs[n]!
            m.processes[n] = try R.start(["run", "--data-dir", d] + links[n]!.flatMap { ["--link", $0] }, log: d + "/run.log")
        }
        return m
    }

    func status(_ dir: String) throws -> [String: Any] {
        let out = try R.run(["status", "--data-dir", dir, "--json"]).1
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    /// The live state of a relay's mqtt link (`relay status --json`): its `connection` and whether it is up.
    func mqttLink(_ dir: String) throws -> [String: Any]? {
        let links = ((try self.status(dir)["live"] as? [String: Any])?["links"] as? [[String: Any]]) ?? []
        return links.first { ($0["name"] as? String)?.hasPrefix("mqtt:") == true }
    }

    func mqttUp(_ dir: String) throws -> Bool { try self.mqttLink(dir)?["up"] as? Bool == true }

    func knows(_ dir: String, _ node: String) throws -> Bool {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        let o = (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
        return ((o["peers"] as? [[String: Any]]) ?? []).contains { $0["node"] as? String == node }
    }

    func send(_ dir: String, _ args: [String]) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0 && err.isEmpty, "send: \(err)")
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// How many times each bundle id is in the inbox.
    func inboxCounts(_ dir: String) throws -> [String: Int] {
        var c: [String: Int] = [:]
        for m in try R.inbox(dir) { if let id = m["id"] as? String { c[id, default: 0] += 1 } }
        return c
    }

    /// An alert from valley A reaches every relay of both valleys exactly once (two gateways of valley A hear each
    /// other through the broker and over the radio), and a grievance from b crosses to a end to end encrypted.
    func alertAndGrievanceCross(_ m: Meshes) throws {
        let allUp = try R.wait(60) { try ["ga1", "ga2", "gb"].allSatisfy { try self.mqttUp(m.dirs[$0]!) } }
        #expect(allUp, "the gateways' mqtt links came up")

        let alert = try self.send(m.dirs["a"]!, ["--everyone", "--kind", "alert", "Flood warning: the river is rising. Move to high ground."])
        let everywhere = try R.wait(90) { try Meshes.names.allSatisfy { try self.inboxCounts(m.dirs[$0]!)[alert] != nil } }
        #expect(everywhere, "the alert reached every relay of both valleys")

        // b learns a's keys through the federation (across the broker), then writes to it end to end encrypted.
        let learnt = try R.wait(90) { try self.knows(m.dirs["b"]!, m.ids["a"]!) }
        #expect(learnt, "b learnt a's keys across the broker")
        let text = "The pump at the upper well has been broken for nine days."
        let grievance = try self.send(m.dirs["b"]!, ["--to", m.ids["a"]!, "--kind", "grievance", text])
        let crossed = try R.wait(90) { try self.inboxCounts(m.dirs["a"]!)[grievance] != nil }
        #expect(crossed, "the grievance crossed from valley B to valley A")
        let got = try R.inbox(m.dirs["a"]!).first { $0["id"] as? String == grievance }
        #expect(got?["text"] as? String == text && got?["kind"] as? String == "grievance" && got?["encrypted"] as? Bool == true, "grievance: \(got ?? [:])")
        #expect(try R.inbox(m.dirs["ga1"]!).allSatisfy { $0["id"] as? String != grievance }, "a grievance to a is not in a gateway's inbox")

        // Exactly once everywhere, and still once after the copies through the second gateway had time to arrive.
        for n in Meshes.names {
            let c = try self.inboxCounts(m.dirs[n]!)
            #expect(c[alert] == 1, "\(n) holds the alert \(c[alert] ?? 0) times")
            #expect(c.values.allSatisfy { $0 == 1 }, "\(n) has a duplicate in its inbox: \(c)")
        }
    }

    @Test func anAlertReachesBothValleysOnceAndAGrievanceCrossesThroughTheBroker() throws {
        let broker = try TestBroker()
        defer { broker.stop() }
        let m = try self.startMeshes { _ in broker }
        defer { m.stop() }
        try self.alertAndGrievanceCross(m)

        // `relay status` names the broker and says it is connected.
        let (rc, out, _) = try R.run(["status", "--data-dir", m.dirs["ga1"]!])
        #expect(rc == 0)
        #expect(out.contains("link mqtt:127.0.0.1:\(broker.port): up"), "status: \(out)")
        #expect(out.contains("broker 127.0.0.1:\(broker.port), topic courier/"), "status: \(out)")
        #expect(out.contains(": connected since"), "status: \(out)")
    }

    @Test func aBrokerKilledAndRestartedMidTransferLosesNothing() throws {
        let broker = try TestBroker()
        defer { broker.stop() }
        let m = try self.startMeshes { _ in broker }
        defer { m.stop() }
        let (a, b) = (m.dirs["a"]!, m.dirs["b"]!)
        let allUp = try R.wait(60) { try ["ga1", "ga2", "gb"].allSatisfy { try self.mqttUp(m.dirs[$0]!) } }
        #expect(allUp, "the gateways' mqtt links came up")
        let learnt = try R.wait(90) { try self.knows(a, m.ids["b"]!) }
        #expect(learnt, "a learnt b's keys across the broker")

        // A stream of messages from a to b: a long report (several fragments on the radio) and short notes.
        var g = SystemRandomNumberGenerator()
        let words = ["water", "rota", "east", "quarter", "pump", "committee", "assembly", "vote", "bread", "clinic", "road", "diesel"]
        let report = (0..<2_500).map { _ in words[Int(g.next() % UInt64(words.count))] + String(g.next() % 100) }.joined(separator: " ")
        let path = R.tempDir() + "/report.txt"
        try report.write(toFile: path, atomically: true, encoding: .utf8)
        var sent: [String: String] = [:]
        for i in 0..<3 {
            let t = "Note \(i) before the outage."
            sent[try self.send(a, ["--to", m.ids["b"]!, "--kind", "text", t])] = t
        }
        sent[try self.send(a, ["--to", m.ids["b"]!, "--kind", "minutes", "--file", path])] = report
        // Kill the broker once the first note is through (the rest is on its way, on the radio or the broker).
        let first = try R.wait(90) { try !Set(self.inboxCounts(b).keys).isDisjoint(with: sent.keys) }
        #expect(first, "a first message crossed before the outage")
        broker.kill()
        let early = try self.inboxCounts(b)
        #expect(!Set(sent.keys).isSubset(of: early.keys), "everything crossed before the broker was killed: the test needs a longer message")
        let down = try R.wait(30) {
            let l = try self.mqttLink(m.dirs["ga1"]!)
            return l?["up"] as? Bool == false && (l?["connection"] as? [String: Any])?["state"] as? String == "reconnecting"
        }
        #expect(down, "ga1's status shows the broker reconnecting")
        let (_, text, _) = try R.run(["status", "--data-dir", m.dirs["ga1"]!])
        #expect(text.contains("link mqtt:127.0.0.1:\(broker.port): DOWN") && text.contains(": RECONNECTING since") && text.contains("last error"),
                "status while the broker is down: \(text)")
        for i in 0..<3 {
            let t = "Note \(i) during the outage."
            sent[try self.send(a, ["--to", m.ids["b"]!, "--kind", "text", t])] = t
        }
        try broker.start()
        let back = try R.wait(60) { try ["ga1", "ga2", "gb"].allSatisfy { try self.mqttUp(m.dirs[$0]!) } }
        #expect(back, "the gateways reconnected to the restarted broker")
        // Within seconds of the reconnection, not at the engine's next housekeeping (a minute): what the gateways
        // took into custody while the broker was away is routed again as soon as the link is back.
        let all = try R.wait(40) { try Set(sent.keys).isSubset(of: Set(self.inboxCounts(b).keys)) }
        let missing = Set(sent.keys).subtracting(try self.inboxCounts(b).keys)
        #expect(all, "every message reached b: missing \(missing)")
        let inbox = try R.inbox(b)
        for (id, t) in sent {
            let copies = inbox.filter { $0["id"] as? String == id }
            #expect(copies.count == 1, "\(id) is in b's inbox \(copies.count) times")
            #expect(copies.first?["text"] as? String == t, "\(id) arrived intact")
        }
        let c = try #require(try self.mqttLink(m.dirs["ga1"]!)?["counters"] as? [String: Any])
        #expect((c["reconnects"] as? Int ?? 0) >= 1, "ga1 counted the reconnect: \(c)")
    }

    @Test func aBrokerWithPasswordsAndAnACLAdmitsGatewaysAndStatusShowsARefusal() throws {
        // Users named after the gateways' node ids, each allowed to write only under its own id.
        let dirs = try R.federation(["valley", "town", "intruder"])
        let ids = try dirs.map(R.id)
        let etc = R.tempDir()
        var users: [String] = []
        for (i, id) in ids.prefix(2).enumerated() {
            let password = "secret-\(i)-\(UUID().uuidString)"
            try (password + "\n").write(toFile: etc + "/\(id).pw", atomically: true, encoding: .utf8)
            users.append(id)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_passwd")
            p.arguments = (i == 0 ? ["-c"] : []) + ["-b", etc + "/passwd", id, password]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "mosquitto_passwd")
        }
        try "wrong\n".write(toFile: etc + "/wrong.pw", atomically: true, encoding: .utf8)
        try "pattern read courier/#\npattern write courier/+/%u\n".write(toFile: etc + "/acl", atomically: true, encoding: .utf8)
        // mosquitto started as root reads these as the mosquitto user.
        for f in ["passwd", "acl"] { chmod(etc + "/" + f, 0o644) }
        chmod(etc, 0o755)
        let broker = try TestBroker(extra: """
            allow_anonymous false
            password_file \(etc)/passwd
            acl_file \(etc)/acl
            """)
        defer { broker.stop() }
        func link(_ user: String, _ pw: String) -> String { "mqtt:127.0.0.1:\(broker.port),user=\(user),password-file=\(etc)/\(pw).pw" }
        var ps: [Process] = []
        defer { for p in ps { R.stop(p) } }
        ps.append(try R.start(["run", "--data-dir", dirs[0], "--link", link(ids[0], ids[0])], log: dirs[0] + "/run.log"))
        ps.append(try R.start(["run", "--data-dir", dirs[1], "--link", link(ids[1], ids[1])], log: dirs[1] + "/run.log"))
        // The intruder knows a user name, not its password.
        ps.append(try R.start(["run", "--data-dir", dirs[2], "--link", link(ids[0], "wrong")], log: dirs[2] + "/run.log"))

        let learnt = try R.wait(60) { try self.knows(dirs[0], ids[1]) }
        #expect(learnt, "valley learnt town's keys through the broker")
        let text = "The clinic's generator needs diesel."
        let id = try self.send(dirs[0], ["--to", ids[1], "--kind", "aid", text])
        let crossed = try R.wait(60) { try self.inboxCounts(dirs[1])[id] == 1 }
        #expect(crossed, "the aid request crossed the broker with passwords")

        let refused = try R.wait(30) {
            let c = try self.mqttLink(dirs[2])?["connection"] as? [String: Any]
            return (c?["lastError"] as? String)?.contains("not authorised") == true
        }
        #expect(refused, "the intruder's status shows the broker's refusal")
        let (_, out, _) = try R.run(["status", "--data-dir", dirs[2]])
        #expect(out.contains("link mqtt:127.0.0.1:\(broker.port): DOWN") && out.contains(": CONNECTING since")
                && out.contains("the broker refused the connection: Connection Refused: not authorised."), "status: \(out)")
        #expect(try R.inbox(dirs[2]).isEmpty && !self.knows(dirs[2], ids[0]), "the intruder heard nothing")
    }

    @Test func twoBrokersJoinedByAMosquittoBridgeCarryTheSameTraffic() throws {
        // Valley A's gateways use broker 1; valley B's gateway uses broker 2, which bridges the courier/ topics to 1.
        let one = try TestBroker()
        defer { one.stop() }
        let two = try TestBroker(extra: """
            connection courier-bridge
            address 127.0.0.1:\(one.port)
            topic courier/# both 1
            cleansession true
            restart_timeout 1
            """)
        defer { two.stop() }
        let m = try self.startMeshes { $0 == "gb" ? two : one }
        defer { m.stop() }
        try self.alertAndGrievanceCross(m)
        #expect(two.log.contains("Connecting bridge"), "broker 2 bridged to broker 1: \(two.log)")
    }
}
