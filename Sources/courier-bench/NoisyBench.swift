import ArgumentParser
import CourierLinks
import CourierNode
import CourierRuntime
import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Logging

/// Two relays (the real runtime, engine, store and serial links, in process) on a virtual serial cable that damages
/// bytes, as a poor cable or a marginal radio path does: one message a second from A to B for some minutes. Prints
/// how many arrived and how long the last ones took after the last was handed over (the drain time).
struct NoisyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noisy",
        abstract: "Two relays on a serial cable that damages bytes: messages A -> B at a steady rate for some minutes; delivered/total and the drain time after the end.")

    @Option(help: "Minutes of sending.") var minutes = 10.0
    @Option(help: "Probability that a byte crossing the cable has a bit flipped (0.01: 1% of bytes damaged).") var damage = 0.01
    @Option(help: "Messages handed to relay A per second.") var rate = 1.0
    @Option(help: "Serial baud rate of both links.") var baud = 115_200
    @Option(help: "The messages, one JSON object a line, used in turn (default: corpus/en.jsonl, 57 B-3.5 KB).")
    var messages = Corpus.defaultDirectory("corpus/en.jsonl")
    @Option(help: "Longest message used, bytes (longer ones in the file are skipped).") var maxBytes = 3_600
    @Option(help: "Seconds to wait after the last message for the rest to arrive before giving up.") var drainLimit = 600.0
    @Option(help: "Fail (exit 1) unless everything arrives within this many seconds of the end.") var target = 300.0
    @Flag(help: "A smoke run (CI): print the figures and whether the target was met, without failing when it was not.") var smoke = false
    @Flag(help: "Relay logs (info) to standard error.") var trace = false

    func run() async throws {
        let msgs = try DirewolfBench.loadMessages(self.messages).filter { $0.utf8.count <= self.maxBytes }
        guard !msgs.isEmpty else { throw ValidationError("no message of at most \(self.maxBytes) B in \(self.messages)") }
        guard self.damage >= 0 && self.damage < 1, self.rate > 0, self.minutes > 0 else {
            throw ValidationError("--damage must be in [0, 1), --rate and --minutes above 0")
        }
        let total = max(1, Int((self.minutes * 60 * self.rate).rounded()))
        say("Courier on a noisy serial line: two relays on a virtual cable at \(self.baud) baud, "
              + String(format: "%.2f%% of bytes damaged (one bit flipped), both ways", self.damage * 100))
        say(String(format: "  %d messages A -> B (directed, end-to-end encrypted, from %@), %.2f a second for %.1f min",
                     total, (self.messages as NSString).lastPathComponent, self.rate, self.minutes))

        let dir = NSTemporaryDirectory() + "courier-noisy-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cable: VirtualCable
        do { cable = try VirtualCable() } catch { throw DirewolfBench.BenchFailure(message: "\(error)") }
        defer { cable.stop() }
        func logger(_ name: String) -> Logger {
            var l = Logger(label: "relay-\(name)") { StreamLogHandler.standardError(label: $0) }
            l.logLevel = self.trace ? .info : .critical
            return l
        }
        let key = NetworkKey.random()
        let a = try Side(name: "A", identity: NodeIdentity(), key: key, dir: dir, link: "serial:\(cable.pathA):\(self.baud)", logger: logger("A"))
        let b = try Side(name: "B", identity: NodeIdentity(), key: key, dir: dir, link: "serial:\(cable.pathB):\(self.baud)", logger: logger("B"))
        b.start()
        a.start()
        // Warm-up on a clean line: the relays learn each other's keys.
        guard await DirewolfBench.waitUntil(60, { a.knows(b) && b.knows(a) }) else {
            await a.stop(); await b.stop()
            throw DirewolfBench.BenchFailure(message: "the relays did not learn each other's keys within 60 s")
        }
        cable.setNoise(self.damage)

        let submitStore = try Store(path: a.dbPath, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
        // As `relay send`: bundles made and stored without an engine; A's runtime adopts them from the change feed.
        let submitter = BundleMaker(identity: a.config.identity, groups: a.config.groups, store: submitStore)
        let bKeys = try submitStore.peers().first { $0.nodeID == b.config.identity.nodeID }!.keys
        let t0 = Date().timeIntervalSince1970
        var submitted: [BundleID: Double] = [:]
        var deliveredAt: [BundleID: Double] = [:]
        func collect() {
            for m in (try? b.store.inbox(limit: 100_000)) ?? [] where submitted[m.id] != nil && deliveredAt[m.id] == nil {
                deliveredAt[m.id] = Date().timeIntervalSince1970
            }
        }
        var lastReport = t0
        for i in 0..<total {
            let due = t0 + Double(i) / self.rate
            while Date().timeIntervalSince1970 < due { try await Task.sleep(for: .milliseconds(20)) }
            let m = msgs[i % msgs.count]
            var opts = BundleOptions(kind: .text)
            opts.encryptTo = bKeys
            let id = try submitter.submit(kind: .text, destination: .node(b.config.identity.nodeID.short), content: m.utf8,
                                          options: opts, now: Date().timeIntervalSince1970)
            submitted[id] = Date().timeIntervalSince1970
            a.runtime.poll()
            if Date().timeIntervalSince1970 - lastReport >= 60 {
                lastReport = Date().timeIntervalSince1970
                collect()
                say(String(format: "  %4.0f s: %d sent, %d delivered", lastReport - t0, submitted.count, deliveredAt.count))
            }
        }
        let end = Date().timeIntervalSince1970
        var checkpoints: [(Double, Int)] = []
        var nextCheckpoint = 60.0
        while deliveredAt.count < total && Date().timeIntervalSince1970 - end < self.drainLimit {
            collect()
            let since = Date().timeIntervalSince1970 - end
            if since >= nextCheckpoint {
                checkpoints.append((nextCheckpoint, deliveredAt.count))
                say(String(format: "  end + %3.0f s: %d of %d delivered", nextCheckpoint, deliveredAt.count, total))
                nextCheckpoint += 60
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        collect()
        let counters = b.link.counters
        await a.stop()
        await b.stop()
        let latencies = deliveredAt.map { $0.value - submitted[$0.key]! }.sorted()
        func pct(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let lastAt = deliveredAt.values.max() ?? end
        let drain = max(0, lastAt - end)
        say(String(format: "delivered %d/%d; drain %.1f s after the last message was handed over%@",
                     deliveredAt.count, total, drain, deliveredAt.count < total ? String(format: " (gave up after %.0f s)", self.drainLimit) : ""))
        say(String(format: "  latency: median %.1f s, 90%% %.1f s, 99%% %.1f s, max %.1f s", pct(0.5), pct(0.9), pct(0.99), latencies.last ?? .nan))
        say("  at B: \(counters.framesIn) frames in, \(counters.crcErrors) CRC errors, \(counters.framingErrors) framing errors; A: \(a.runtime.node.stats.retransmissions) retransmission timeouts")
        let ok = deliveredAt.count == total && drain <= self.target
        say(String(format: "target: everything within %.0f s of the end: ", self.target) + (ok ? "met" : "NOT met"))
        if !ok && !self.smoke { throw ExitCode(1) }
    }

    final class Side {
        let config: NodeConfig
        let dbPath: String
        let store: Store
        let link: any Link
        let runtime: Runtime
        var task: Task<Void, Never>?

        init(name: String, identity: NodeIdentity, key: NetworkKey, dir: String, link spec: String, logger: Logger,
             compressor: BodyCompressor = BodyCompressor()) throws {
            self.config = NodeConfig(identity: identity, networkKey: key, name: "relay \(name)")
            self.dbPath = "\(dir)/\(name).sqlite"
            self.store = try Store(path: self.dbPath, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
            self.link = try LinkFactory.make(LinkConfig(spec), logger: logger)
            let node = try Node(config: self.config, store: self.store,
                                links: [LinkInfo(name: self.link.name, properties: self.link.properties)], now: Date().timeIntervalSince1970,
                                compressor: compressor)
            self.runtime = Runtime(node: node, store: self.store, links: [self.link], statusPath: "\(dir)/\(name).status.json", logger: logger)
        }

        func start() {
            let r = self.runtime
            self.task = Task { await r.run() }
        }

        func stop() async {
            self.runtime.stop()
            await self.task?.value
        }

        func knows(_ other: Side) -> Bool {
            ((try? self.store.peers()) ?? []).contains { $0.nodeID == other.config.identity.nodeID }
        }
    }
}

/// Prints a line at once (the bench's output is followed live, also through a pipe).
private func say(_ line: String) {
    print(line)
    fflush(nil)
}
