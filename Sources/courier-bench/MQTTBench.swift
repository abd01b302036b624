import ArgumentParser
import CMosquitto
import CourierStore
import CourierWire
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Relay processes joined by one local mosquitto broker (each with only an `mqtt:` link), messages between random
/// pairs: delivered, duplicates, latency, bytes through the broker.
struct MQTTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt",
        abstract: "N relay processes on one local mosquitto broker, M messages between random pairs: delivered, duplicates, latency p50/p90/p99, bytes through the broker per delivered message.")

    @Option(help: "Relay processes.") var relays = 20
    @Option(help: "Messages, each from a random relay to another random relay (as `relay send --to`).") var messages = 1_000
    @Option(help: "Bytes of text per message.") var size = 100
    @Option(help: "Seconds to wait for the last deliveries after the last message was handed over.") var timeout = 120.0
    @Option(help: "Random seed (pairs).") var seed: UInt64 = 1
    @Flag(help: "Keep the run directory (relay logs, broker log).") var keep = false

    struct Failure: Error, CustomStringConvertible { let description: String }

    func run() async throws {
        guard self.relays >= 2, self.messages >= 1, self.size >= 1 else { throw ValidationError("need --relays 2 or more, --messages and --size 1 or more") }
        let relay = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("relay").path
        guard FileManager.default.isExecutableFile(atPath: relay) else {
            throw Failure(description: "no relay executable next to courier-bench (\(relay)): build it with `swift build`")
        }
        guard let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "mosquitto is not installed: apt-get install mosquitto")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("courier-bench-mqtt-\(getpid())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let broker = try Broker(binary: mosquitto, dir: root)
        var processes: [Process] = []
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGTERM) }
            let end = Date().addingTimeInterval(20)
            while processes.contains(where: \.isRunning) && Date() < end { usleep(50_000) }
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            broker.stop()
            if !self.keep { try? FileManager.default.removeItem(atPath: root) }
        }

        say("Courier over MQTT: \(self.relays) relay processes (`relay run --link mqtt:127.0.0.1:\(broker.port)`), one mosquitto broker on this machine")
        say("  messages: \(self.messages), \(self.size) B of text each, from a random relay to another (as `relay send --to`, end-to-end encrypted), handed over one after another")

        // The federation, as operators make it.
        var dirs: [String] = []
        var code: String?
        for i in 0..<self.relays {
            let d = root + "/r\(i)"
            var args = ["init", "--data-dir", d, "--name", "r\(i)"]
            if let code { args += ["--join", code] }
            let (rc, _, err) = try Self.run(relay, args)
            guard rc == 0 else { throw Failure(description: "relay init: \(err)") }
            if code == nil { code = try Self.run(relay, ["invite", "--data-dir", d]).1.trimmingCharacters(in: .whitespacesAndNewlines) }
            dirs.append(d)
        }
        let ids = try dirs.map { try Self.run(relay, ["id", "--data-dir", $0]).1.trimmingCharacters(in: .whitespacesAndNewlines) }

        let started = Date()
        for d in dirs {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", Broker.unblocked, relay, "run", "--data-dir", d, "--link", "mqtt:127.0.0.1:\(broker.port)", "--log-level", "notice"]
            _ = FileManager.default.createFile(atPath: d + "/run.log", contents: nil)
            let h = FileHandle(forWritingAtPath: d + "/run.log")
            p.standardOutput = h
            p.standardError = h
            p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try p.run()
            processes.append(p)
        }
        var stores: [Store] = []
        var readOnly = Store.Configuration()
        readOnly.readOnly = true
        // Warm-up, not measured: every relay connected and knowing every other's keys (from their announces).
        let ready = await Self.waitUntil(180) {
            if stores.count < dirs.count {
                for d in dirs.dropFirst(stores.count) {
                    guard let s = try? Store(path: d + "/courier.db", configuration: readOnly) else { return false }
                    stores.append(s)
                }
            }
            return stores.allSatisfy { ((try? $0.peers().count) ?? 0) >= self.relays - 1 }
        }
        guard ready else {
            let known = stores.map { ((try? $0.peers().count) ?? 0) }
            throw Failure(description: "the relays did not learn each other's keys within 180 s (known: \(known)); logs in \(root)")
        }
        say(String(format: "  warm-up: all relays connected and knowing each other's keys after %.1f s", Date().timeIntervalSince(started)))

        let before = try broker.sys()
        var g = SplitMix(seed: self.seed)
        var sent: [(id: String, to: Int, at: Date)] = []
        var seen: [String: Date] = [:]
        var inboxes = [Set<String>](repeating: [], count: self.relays)
        var duplicates = 0
        var misdelivered = 0
        let destination = { (id: String) -> Int? in sent.first { $0.id == id }?.to }
        func poll() {
            let now = Date()
            for (i, s) in stores.enumerated() {
                guard let msgs = try? s.inbox(limit: 100_000) else { continue }
                var counts: [String: Int] = [:]
                for m in msgs { counts[m.id.description, default: 0] += 1 }
                for (id, n) in counts where !inboxes[i].contains(id) {
                    inboxes[i].insert(id)
                    duplicates += n - 1
                    if seen[id] == nil { seen[id] = now } else { duplicates += 1 }
                    if let to = destination(id), to != i { misdelivered += 1 }
                }
            }
        }
        let handOver = Date()
        for n in 0..<self.messages {
            let from = Int(g.next() % UInt64(self.relays))
            var to = Int(g.next() % UInt64(self.relays - 1))
            if to >= from { to += 1 }
            let text = String("message \(n) from r\(from) to r\(to): ".padding(toLength: self.size, withPad: "abcdefghij ", startingAt: 0).prefix(self.size))
            let (rc, out, err) = try Self.run(relay, ["send", "--data-dir", dirs[from], "--to", ids[to], "--kind", "text", text])
            guard rc == 0 else { throw Failure(description: "relay send: \(err)") }
            sent.append((out.trimmingCharacters(in: .whitespacesAndNewlines), to, Date()))
            if n % 20 == 19 { poll() }
        }
        let handedOver = Date().timeIntervalSince(handOver)
        let wanted = Set(sent.map(\.id))
        _ = await Self.waitUntil(self.timeout) {
            poll()
            return wanted.isSubset(of: Set(seen.keys))
        }
        // Late copies: one more look after the broker's statistics interval.
        try await Task.sleep(for: .seconds(2))
        poll()
        let after = try broker.sys()

        var latencies: [Double] = []
        for s in sent { if let t = seen[s.id] { latencies.append(t.timeIntervalSince(s.at)) } }
        latencies.sort()
        func pct(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            return String(format: "%.2f s", latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)])
        }
        let delivered = latencies.count
        let bytesIn = after.bytesReceived - before.bytesReceived, bytesOut = after.bytesSent - before.bytesSent
        let pubIn = after.publishReceived - before.publishReceived, pubOut = after.publishSent - before.publishSent
        say(String(format: "  handed over in %.1f s (%.1f messages/s, the pace of `relay send` processes)", handedOver, Double(self.messages) / handedOver))
        say("  delivered: \(delivered) of \(self.messages)\(delivered < self.messages ? " (within \(Int(self.timeout)) s of the last hand-over)" : "")")
        say("  duplicates in inboxes: \(duplicates); delivered to a relay they were not for: \(misdelivered)")
        say("  latency (handed over -> in the destination's inbox, polled every ~0.2 s): p50 \(pct(0.5)), p90 \(pct(0.9)), p99 \(pct(0.99)), max \(latencies.last.map { String(format: "%.2f s", $0) } ?? "-")")
        say("  broker ($SYS, from the first hand-over to the end): \(pubIn) publishes in, \(pubOut) out; \(bytesIn) B in, \(bytesOut) B out")
        if delivered > 0 {
            say(String(format: "  through the broker per delivered message: %.0f B in + %.0f B out = %.0f B (%.1f publishes in, %.1f out)",
                         Double(bytesIn) / Double(delivered), Double(bytesOut) / Double(delivered), Double(bytesIn + bytesOut) / Double(delivered),
                         Double(pubIn) / Double(delivered), Double(pubOut) / Double(delivered)))
        }
        if self.keep { say("  run directory kept: \(root)") }
        if delivered < self.messages || duplicates > 0 || misdelivered > 0 {
            throw Failure(description: "\(self.messages - delivered) messages not delivered, \(duplicates) duplicates, \(misdelivered) misdelivered (relay logs in \(root) with --keep)")
        }
    }

    static func run(_ binary: String, _ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func waitUntil(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return condition()
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { self.state = seed }
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

/// A line on standard output at once (a pipe would otherwise hold it until the end, or lose it on a crash).
private func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// A mosquitto broker on 127.0.0.1 (a free port, a temporary configuration), and its $SYS counters.
final class Broker: @unchecked Sendable {
    let port: Int
    let process: Process

    struct Sys { var bytesReceived = 0, bytesSent = 0, publishReceived = 0, publishSent = 0 }

    init(binary: String, dir: String) throws {
        // The kernel's pick of a free port on 127.0.0.1.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        close(fd)
        guard ok else { throw MQTTBench.Failure(description: "cannot find a free port on 127.0.0.1") }
        self.port = Int(UInt16(bigEndian: a.sin_port))
        let conf = dir + "/mosquitto.conf"
        try """
            listener \(self.port) 127.0.0.1
            allow_anonymous true
            persistence false
            sys_interval 1
            max_queued_messages 100000
            log_dest stderr
            log_type error
            log_type warning
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        // Through Python, which clears the signal mask this thread passes on (a worker thread blocks SIGTERM), so the
        // broker stops on SIGTERM.
        self.process = Process()
        self.process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        self.process.arguments = ["python3", "-c", Broker.unblocked, binary, "-c", conf]
        _ = FileManager.default.createFile(atPath: dir + "/mosquitto.log", contents: nil)
        let h = FileHandle(forWritingAtPath: dir + "/mosquitto.log")
        self.process.standardOutput = h
        self.process.standardError = h
        try self.process.run()
        let end = Date().addingTimeInterval(15)
        while Date() < end {
            if (try? self.sys(wait: 0.5)) != nil { return }
            usleep(100_000)
        }
        self.stop()
        throw MQTTBench.Failure(description: "mosquitto did not start on 127.0.0.1:\(self.port) within 15 s (\(dir)/mosquitto.log)")
    }

    static let unblocked = "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_SETMASK, [])\nos.execv(sys.argv[1], sys.argv[1:])\n"

    func stop() {
        guard self.process.isRunning else { return }
        kill(self.process.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(10)
        while self.process.isRunning && Date() < end { usleep(50_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.process.waitUntilExit()
    }

    /// The broker's retained $SYS counters (updated every second): bytes and PUBLISH packets in and out, everything
    /// counted (MQTT headers, acks, pings).
    func sys(wait: Double = 3) throws -> Sys {
        final class Box: @unchecked Sendable {
            var values: [String: Int] = [:]
        }
        let box = Box()
        guard let m = mosquitto_new(nil, true, Unmanaged.passUnretained(box).toOpaque()) else { throw MQTTBench.Failure(description: "libmosquitto: out of memory") }
        defer { mosquitto_destroy(m) }
        mosquitto_message_callback_set(m) { _, obj, msg in
            guard let obj, let msg, let t = msg.pointee.topic, let p = msg.pointee.payload else { return }
            let b = Unmanaged<Box>.fromOpaque(obj).takeUnretainedValue()
            let text = String(decoding: UnsafeRawBufferPointer(start: p, count: Int(msg.pointee.payloadlen)), as: UTF8.self)
            if let v = Int(text) { b.values[String(cString: t)] = v }
        }
        _ = mosquitto_lib_init()
        guard mosquitto_connect(m, "127.0.0.1", Int32(self.port), 10) == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTBench.Failure(description: "cannot connect to the broker on 127.0.0.1:\(self.port)")
        }
        let topics = ["$SYS/broker/bytes/received", "$SYS/broker/bytes/sent", "$SYS/broker/publish/messages/received", "$SYS/broker/publish/messages/sent"]
        for t in topics { mosquitto_subscribe(m, nil, t, 0) }
        let end = Date().addingTimeInterval(wait)
        while Date() < end && box.values.count < topics.count {
            if mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS.rawValue { break }
        }
        mosquitto_disconnect(m)
        guard box.values.count == topics.count else { throw MQTTBench.Failure(description: "the broker's $SYS counters did not arrive") }
        return Sys(bytesReceived: box.values[topics[0]]!, bytesSent: box.values[topics[1]]!,
                   publishReceived: box.values[topics[2]]!, publishSent: box.values[topics[3]]!)
    }
}
