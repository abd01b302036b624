import ArgumentParser
import CourierLinks
import CourierNode
import CourierRuntime
import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Two relays, each on its own Direwolf software TNC (scripts/direwolf-lab), the two Direwolf stations on one
/// simulated AFSK 1200-baud simplex channel. The real runtime, engine, store and KISS-over-TCP links, in process.
struct DirewolfBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "direwolf",
        abstract: "Two relays over two Direwolf TNCs (AFSK 1200, simplex): five messages of 90 B-3 KB from A to B; time to the last delivery, frames and bytes on air.")

    @Option(help: "Runs of the scenario.") var runs = 3
    @Option(help: "The messages, one JSON object a line (default: corpus/bench/en.jsonl, 87-3232 B).")
    var messages = Corpus.defaultDirectory("corpus/bench/en.jsonl")
    @Option(help: "An ,mtu=N option on both links (default: the kiss-tcp default).") var mtu: Int?
    @Option(help: "Channel noise, dB SNR (lab.py --noise-db); default: a clean channel.") var noiseDb: Double?
    @Flag(help: "Do not encrypt end to end (as `relay send --no-encrypt`; by default a message to a node whose keys are known is).")
    var noEncrypt = false
    @Option(help: "Give up on a run after this many seconds.") var timeout = 300.0
    @Flag(help: "Print every frame each relay sent, relay logs to standard error, and keep the run directories (Direwolf logs, ether.log).")
    var trace = false

    static let baud = 1_200.0
    /// TXDELAY 30 in the lab's Direwolf configuration: 300 ms of key-up before each transmission.
    static let txDelay = 0.3
    static let ax25Header = 16

    func run() async throws {
        guard let direwolf = Self.which("direwolf") else {
            FileHandle.standardError.write(Data("courier-bench direwolf: direwolf is not installed (apt-get install direwolf)\n".utf8))
            throw ExitCode(69)
        }
        guard let python = Self.which("python3") else {
            FileHandle.standardError.write(Data("courier-bench direwolf: python3 is not installed (the Direwolf lab needs it)\n".utf8))
            throw ExitCode(69)
        }
        let script = Corpus.defaultDirectory("scripts/direwolf-lab/lab.py")
        guard FileManager.default.fileExists(atPath: script) else {
            FileHandle.standardError.write(Data("courier-bench direwolf: \(script) not found: run from the repository\n".utf8))
            throw ExitCode(66)
        }
        let msgs = try Self.loadMessages(self.messages)
        let linkOptions = self.mtu.map { ",mtu=\($0)" } ?? ""
        do { _ = try LinkConfig("kiss-tcp:127.0.0.1:1\(linkOptions)") } catch { throw ValidationError(error.description) }

        print("Courier over Direwolf: two relays, each on its own Direwolf TNC (\(direwolf)), one simulated AFSK 1200-baud simplex channel")
        print("  lab: scripts/direwolf-lab (TXDELAY 300 ms, TXTAIL 100 ms, PERSIST 63, SLOTTIME 100 ms)\(self.noiseDb.map { ", noise \($0) dB SNR" } ?? ", clean channel")")
        print("  links: kiss-tcp:127.0.0.1:PORT\(linkOptions), AX.25 UI frames N0CALA -> N0CALB; engine told \(Self.kissDescription(linkOptions))")
        print("  messages, all handed to relay A at once, all to relay B's node: "
              + msgs.map { "\($0.utf8.count) B \($0.kind)" }.joined(separator: ", "))
        print("  security: network-authenticated packets, " + (self.noEncrypt ? "no end-to-end encryption (--no-encrypt)" : "each bundle end-to-end encrypted to B, as `relay send` does")
              + "; alerts origin-signed")
        print("  time: from handing them to A (as `relay send`: a second Node on A's store, then Runtime.poll()) to the last one in B's inbox")
        print("  floor: bytes on air (AX.25 frames both relays gave their TNC, acks included) x 8 / 1200 + one TXDELAY (0.3 s)")
        print("")

        var results: [RunResult] = []
        for run in 1...max(1, self.runs) {
            var result: RunResult?
            for attempt in 1...3 {
                do {
                    result = try await self.scenario(run: run, attempt: attempt, python: python, script: script, msgs: msgs, linkOptions: linkOptions)
                    break
                } catch let e as BenchFailure {
                    print("  run \(run): \(e.message)\(attempt < 3 ? "; starting it again" : "")")
                }
            }
            guard let r = result else { throw ExitCode(1) }
            r.print(run: run)
            results.append(r)
        }

        func median(_ xs: [Double]) -> Double {
            let s = xs.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let medTime = median(results.map(\.elapsed))
        print("")
        print(String(format: "median of %d runs: last delivery %.1f s; floor %.1f s; %.0f frames (A %.0f, B %.0f); %.0f bytes on air; %.0f key-ups",
                     results.count, medTime, median(results.map(\.floor)), median(results.map { Double($0.framesA + $0.framesB) }),
                     median(results.map { Double($0.framesA) }), median(results.map { Double($0.framesB) }),
                     median(results.map { Double($0.bytesOnAir) }), median(results.map { Double($0.keyUpsA + $0.keyUpsB) })))
        print("Reticulum/LXMF, the same scenario: 36 s tuned, 39 s with defaults; ~4.6 KB on air in 18 frames")
        print(String(format: "target: at most 18 s; median %.1f s: ", medTime) + (medTime <= 18 ? "met" : "NOT met"))
    }

    // MARK: One run

    struct BenchFailure: Error { let message: String }

    struct RunResult {
        var elapsed: Double
        var perMessage: [(bytes: Int, seconds: Double)]
        var framesA = 0, framesB = 0
        var packetBytesA = 0, packetBytesB = 0
        var keyUpsA = 0, keyUpsB = 0
        var busyA = 0.0, busyB = 0.0
        var collisions = 0
        var firstFrame = 0.0
        var retransmitted = 0
        var repeatBytes = 0
        var warmupRestarts = 0
        var acked = 0.0
        var dir: String?
        var traceLines: [String] = []

        var bytesOnAir: Int { self.packetBytesA + self.packetBytesB + (self.framesA + self.framesB) * DirewolfBench.ax25Header }
        var floor: Double { Double(self.bytesOnAir) * 8 / DirewolfBench.baud + DirewolfBench.txDelay }

        func print(run: Int) {
            for l in self.traceLines { Swift.print(l) }
            Swift.print(String(format: "run %d: last delivery %.1f s (floor %.1f s); %d frames (A %d, B %d), %d bytes on air (A %d, B %d; Courier packets %d + 16 B AX.25 a frame)",
                               run, self.elapsed, self.floor, self.framesA + self.framesB, self.framesA, self.framesB, self.bytesOnAir,
                               self.packetBytesA + self.framesA * DirewolfBench.ax25Header, self.packetBytesB + self.framesB * DirewolfBench.ax25Header,
                               self.packetBytesA + self.packetBytesB))
            Swift.print("  delivered: " + self.perMessage.map { String(format: "%d B at %.1f s", $0.bytes, $0.seconds) }.joined(separator: ", ")
                        + String(format: "; all acknowledged at %.1f s", self.acked))
            Swift.print(String(format: "  channel: %d key-ups (A %d, B %d), on air %.1f s (A %.1f, B %.1f), %d collisions; A's first frame at %.1f s; %d fragments sent again (%d B of frames)",
                               self.keyUpsA + self.keyUpsB, self.keyUpsA, self.keyUpsB, self.busyA + self.busyB, self.busyA, self.busyB,
                               self.collisions, self.firstFrame, self.retransmitted, self.repeatBytes)
                        + (self.warmupRestarts > 0 ? "; warm-up: A restarted \(self.warmupRestarts)x (B's answer to its hello was lost)" : "")
                        + (self.dir.map { "; logs in \($0)" } ?? ""))
        }
    }

    final class Side {
        let name: String
        let config: NodeConfig
        let dbPath: String
        let statusPath: String
        let store: Store
        let link: RecordingLink
        let runtime: Runtime
        var task: Task<Void, Never>?

        init(name: String, identity: NodeIdentity, key: NetworkKey, dir: String, port: Int, linkOptions: String, callsign: String,
             logger: Logger) throws {
            self.name = name
            self.config = NodeConfig(identity: identity, networkKey: key, name: "relay \(name)")
            self.dbPath = "\(dir)/\(name).sqlite"
            self.statusPath = "\(dir)/\(name).status.json"
            self.store = try Store(path: self.dbPath, logger: quiet())
            var o = LinkOptions()
            o.callsign = AX25.Station(callsign)
            o.backoff = Backoff(initial: 0.2, maximum: 2)
            self.link = RecordingLink(try LinkFactory.make(LinkConfig("kiss-tcp:127.0.0.1:\(port)\(linkOptions)"), options: o, logger: logger))
            // As `relay run` builds it (no duty-cycle limit on an amateur 1200-baud channel).
            let node = try Node(config: self.config, store: self.store,
                                links: [LinkInfo(name: self.link.name, properties: self.link.properties)], now: Date().timeIntervalSince1970)
            self.runtime = Runtime(node: node, store: self.store, links: [self.link], statusPath: self.statusPath, logger: logger)
        }

        func start() {
            let r = self.runtime
            self.task = Task { await r.run() }
        }

        func stop() async {
            self.runtime.stop()
            await self.task?.value
        }

        /// The neighbours the runtime's status file lists (it writes it when a neighbour is heard, and every second).
        func hears(_ other: Side) -> Bool {
            guard let data = FileManager.default.contents(atPath: self.statusPath),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let ns = obj["neighbours"] as? [[String: Any]] else { return false }
            return ns.contains { ($0["node"] as? String) == other.config.identity.nodeID.short.description }
        }
    }

    func scenario(run: Int, attempt: Int, python: String, script: String, msgs: [CorpusMessage], linkOptions: String) async throws -> RunResult {
        let dir = NSTemporaryDirectory() + "courier-dw-\(getpid())-\(run)-\(attempt)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var keep = self.trace
        defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }

        let lab = try DirewolfLab(python: python, script: script, dir: "\(dir)/lab", seed: run * 10 + attempt, noiseDb: self.noiseDb)
        defer { lab.stop() }
        func logger(_ name: String) -> Logger {
            guard self.trace else { return quiet() }
            var l = Logger(label: "relay-\(name)") { StreamLogHandler.standardError(label: $0) }
            l.logLevel = .info
            return l
        }
        let key = NetworkKey.random()
        let idA = NodeIdentity()
        func sideA() throws -> Side {
            try Side(name: "A", identity: idA, key: key, dir: dir, port: lab.ports[0], linkOptions: linkOptions, callsign: "N0CALA", logger: logger("A"))
        }
        var a = try sideA()
        let b = try Side(name: "B", identity: NodeIdentity(), key: key, dir: dir, port: lab.ports[1], linkOptions: linkOptions,
                         callsign: "N0CALB", logger: logger("B"))

        // Warm-up, not measured: the two relays must know each other (announces) before A can route to B. B first, so
        // its start-up announce is off the air before A's hello (which B answers) instead of colliding with it.
        b.start()
        guard await Self.waitUntil(60, { b.link.sent.count >= 1 }) else { throw BenchFailure(message: "relay B sent nothing within 60 s (lab in \(dir))") }
        try await Task.sleep(for: .seconds(4))
        // B's answer to A's hello can collide with A's next packet, and nothing repeats it (the next announce is ~15 min
        // away): then restart A, as an operator would, so that it says hello again.
        var restarts = 0
        a.start()
        while !(await Self.waitUntil(20) { a.hears(b) && b.hears(a) }) {
            await a.stop()
            restarts += 1
            guard restarts < 5 else {
                await b.stop()
                keep = true
                throw BenchFailure(message: "the relays did not hear each other's announces after 5 starts of A: lab in \(dir)")
            }
            try? FileManager.default.removeItem(atPath: a.statusPath)
            a = try sideA()
            a.start()
        }
        // Let the contact traffic (announces, summaries) finish: both links silent for 5 s.
        _ = await Self.waitUntil(60) {
            let last = max(a.link.sent.last?.time ?? 0, b.link.sent.last?.time ?? 0)
            return Date().timeIntervalSince1970 - last > 5
        }

        // The measured part. The bundle maker and its store connection are made first: `relay send` is a separate
        // process (making bundles as this does, without an engine), but opening the database is not the protocol's time.
        let submitStore = try Store(path: a.dbPath, logger: quiet())
        let submitter = BundleMaker(identity: a.config.identity, groups: a.config.groups, store: submitStore)
        let sentBeforeA = a.link.sent.count
        let sentBeforeB = b.link.sent.count
        let etherBefore = lab.etherLines().count
        let t0 = Date().timeIntervalSince1970
        var ids: [(BundleID, Int)] = []
        for m in msgs {
            // As `relay send --to B`: end-to-end encrypted when A's store knows B's keys (heard in its announce).
            let kind = Self.kind(m.kind)
            var opts = BundleOptions(kind: kind)
            if !self.noEncrypt {
                let known = try submitStore.peers().filter { $0.nodeID.short == b.config.identity.nodeID.short }
                guard known.count == 1 else { throw BenchFailure(message: "relay A does not know B's keys after the announces") }
                opts.encryptTo = known[0].keys
            }
            let id = try submitter.submit(kind: kind, destination: .node(b.config.identity.nodeID.short),
                                          content: m.utf8, options: opts, now: Date().timeIntervalSince1970)
            ids.append((id, m.utf8.count))
        }
        // Tell A's runtime to read its store's change feed now rather than within the next second.
        a.runtime.poll()
        var deliveredAt: [BundleID: Double] = [:]
        let want = Set(ids.map { $0.0 })
        while deliveredAt.count < want.count && Date().timeIntervalSince1970 - t0 < self.timeout {
            for m in (try? b.store.inbox(limit: 100)) ?? [] where want.contains(m.id) && deliveredAt[m.id] == nil {
                deliveredAt[m.id] = Date().timeIntervalSince1970 - t0
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard deliveredAt.count == want.count else {
            await a.stop(); await b.stop()
            keep = true
            throw BenchFailure(message: "only \(deliveredAt.count) of \(want.count) delivered in \(Int(self.timeout)) s: lab in \(dir)")
        }
        // Count until A has every acknowledgement (custody released: the bundles leave A's queue), then 3 s more.
        // What is counted: every frame from the hand-over until A holds every acknowledgement (custody released: the
        // bundles leave A's queue). B's receipts (aggregated for 60 s) come later and are not counted.
        _ = await Self.waitUntil(120) { ids.allSatisfy { (try? a.store.bundle($0.0)) == nil } }
        let end = Date().timeIntervalSince1970
        let acked = end - t0
        try await Task.sleep(for: .milliseconds(500))
        let etherLines = lab.etherLines()
        await a.stop()
        await b.stop()

        let framesA = a.link.sent.dropFirst(sentBeforeA).filter { $0.time <= end }
        let framesB = b.link.sent.dropFirst(sentBeforeB).filter { $0.time <= end }
        var r = RunResult(elapsed: deliveredAt.values.max()!, perMessage: ids.map { ($0.1, deliveredAt[$0.0]!) })
        r.acked = acked
        r.warmupRestarts = restarts
        r.framesA = framesA.count
        r.framesB = framesB.count
        r.packetBytesA = framesA.reduce(0) { $0 + $1.bytes.count }
        r.packetBytesB = framesB.reduce(0) { $0 + $1.bytes.count }
        r.firstFrame = (framesA.first?.time ?? t0) - t0
        for line in etherLines.dropFirst(etherBefore) {
            let w = line.split(separator: " ")
            guard w.count >= 3 else { continue }
            if w[2] == "TX-START" {
                if w[1] == "A" { r.keyUpsA += 1 } else { r.keyUpsB += 1 }
                if line.contains("collision") { r.collisions += 1 }
            } else if w[2] == "TX-END", w.count >= 4, let s = Double(w[3]) {
                if w[1] == "A" { r.busyA += s } else { r.busyB += s }
            }
        }
        // What the frames carried, and fragments that went more than once.
        let opener = PacketOpener(networkKey: key)
        let nodes = [a.config.identity.nodeID, b.config.identity.nodeID]
        var seen: [String: Int] = [:]
        var repeatBytes = 0
        let all = (framesA.map { ("A", $0) } + framesB.map { ("B", $0) }).sorted { $0.1.time < $1.1.time }
        for (who, f) in all {
            var what: [String] = []
            var repeated = false
            if let p = try? opener.open(f.bytes, candidates: { s in nodes.filter { $0.short == s } }) {
                for rec in p.records {
                    switch rec {
                    case .bundle(let x):
                        what.append("bundle t\(x.transfer.map(String.init) ?? "-") \(x.bundle.count) B")
                        if who == "A", let t = x.transfer {
                            seen["\(t)", default: 0] += 1
                            repeated = repeated || seen["\(t)"]! > 1
                        }
                    case .fragment(let x):
                        what.append("frag t\(x.transfer) \(x.index + 1)/\(x.count) \(x.data.count) B")
                        if who == "A" {
                            seen["\(x.transfer).\(x.index)", default: 0] += 1
                            repeated = repeated || seen["\(x.transfer).\(x.index)"]! > 1
                        }
                    case .ack(let x): what.append("ack " + x.entries.map { "t\($0.transfer):\($0.received)" }.joined(separator: ","))
                    case .announce: what.append("announce")
                    case .summary: what.append("summary")
                    case .dictionaries: what.append("dictionaries")
                    case .receiptParts: what.append("receipt parts")
                    case .piece(let x): what.append("piece t\(x.transfer) \(x.data.count) B")
                    case .neighbours: what.append("neighbours")
                    case .copyBudgets: what.append("copy budgets")
                    case .unknown: what.append("?")
                    }
                }
            }
            if repeated { repeatBytes += f.bytes.count + Self.ax25Header }
            if self.trace {
                r.traceLines.append(String(format: "  %7.2f s  ", f.time - t0) + who + String(format: " %4d B  ", f.bytes.count + Self.ax25Header)
                                    + what.joined(separator: "; "))
            }
        }
        r.retransmitted = seen.values.reduce(0) { $0 + $1 - 1 }
        r.repeatBytes = repeatBytes
        if self.trace { r.dir = dir }
        return r
    }

    // MARK: Helpers

    static func kind(_ s: String) -> Kind {
        switch s {
        case "alert": return .alert
        case "aid-request": return .aidRequest
        case "aid-offer": return .aidOffer
        case "grievance": return .grievance
        case "minutes", "notice": return .minutes
        default: return .text
        }
    }

    static func kissDescription(_ linkOptions: String) -> String {
        var o = LinkOptions()
        o.callsign = AX25.Station("N0CALA")
        guard let c = try? LinkConfig("kiss-tcp:127.0.0.1:1\(linkOptions)"),
              let l = try? LinkFactory.make(c, options: o, logger: quiet()) else { return "?" }
        let p = l.properties
        return "\(p.bitsPerSecond.map(String.init) ?? "-") bit/s, \(p.duplex.rawValue) duplex, MTU \(p.mtu), a full frame "
            + String(format: "%.2f s on air", p.airtime(bytes: p.mtu))
    }

    static func loadMessages(_ path: String) throws -> [CorpusMessage] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read \(path)")
        }
        let msgs = try text.split(separator: "\n").map { try JSONDecoder().decode(CorpusMessage.self, from: Data($0.utf8)) }
        guard !msgs.isEmpty else { throw ValidationError("no messages in \(path)") }
        return msgs
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"]).map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func waitUntil(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}

private func quiet() -> Logger {
    var l = Logger(label: "courier-bench")
    l.logLevel = .critical
    return l
}


/// scripts/direwolf-lab/lab.py with two stations: started directly (it watches its parent), stopped with SIGTERM.
final class DirewolfLab {
    let dir: String
    var ports: [Int] = []

    init(python: String, script: String, dir: String, seed: Int, noiseDb: Double?) throws {
        self.dir = dir
        var lastText = ""
        // A busy KISS port makes the lab exit 2 before READY: try a few bases.
        for attempt in 0..<5 {
            let base = 21_000 + Int(UInt32(bitPattern: getpid() &* 7 &+ Int32(seed) &* 13 &+ Int32(attempt) &* 101) % 4_000) * 2
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = [script, "--stations", "2", "--dir", dir, "--base-port", "\(base)", "--seed", "\(seed)", "--ready-timeout", "120"]
                + (noiseDb.map { ["--noise-db", "\($0)"] } ?? [])
            let out = Pipe()
            p.standardOutput = out
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: dir + ".stderr", contents: nil)
            p.standardError = FileHandle(forWritingAtPath: dir + ".stderr")
            try p.run()
            var text = ""
            while !text.contains("\n") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                text += String(decoding: d, as: UTF8.self)
            }
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            if words.first == "READY", words.count >= 3 {
                self.ports = words.dropFirst().compactMap { Int($0) }
                self.processRef = p
                return
            }
            lastText = text
            p.waitUntilExit()
        }
        throw DirewolfBench.BenchFailure(message: "the Direwolf lab did not start (\(lastText.isEmpty ? "no READY" : lastText)); see \(dir).stderr")
    }

    private var processRef: Process?

    /// DIR/ether.log: one line per key-up and per end of transmission.
    func etherLines() -> [Substring] {
        ((try? String(contentsOfFile: self.dir + "/ether.log", encoding: .utf8)) ?? "").split(separator: "\n")
    }

    func stop() {
        guard let p = self.processRef, p.isRunning else { return }
        p.terminate()
        let end = Date().addingTimeInterval(20)
        while p.isRunning && Date() < end { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }
}
