import ArgumentParser
import CourierLinks
import CourierNode
import CourierSim
import CourierStore
import CourierWire
import Foundation

/// The engine's own costs (issue 11 point 5): what one `tick` costs with a large queue on a real SQLite file, how
/// many durable writes (committed transactions, each an fsync with synchronous = FULL) receiving one 3 KB message
/// takes, and how big every in-memory table of the engine is after a simulated month. Printed, not enforced.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Engine tick cost with 100,000 bundles queued, durable writes per received 3 KB message, engine table sizes after a simulated month.")

    @Option(help: "Bundles queued for the tick cost (half floods, half directed in custody).") var bundles = 100_000
    @Option(help: "Ticks to time (one each 250 ms of virtual time, as `relay run` wakes).") var ticks = 2_400
    @Option(help: "3 KB messages received for the durable-write count.") var messages = 20
    @Option(help: "Nodes in the simulated month.") var nodes = 10
    @Option(help: "Days simulated.") var days = 30.0
    @Option(help: "Folder for the database (default: a new temporary folder, removed afterwards).") var dir: String?
    @Flag(help: "Only the tick cost (no durable-write count, no simulated month).") var tickOnly = false
    @Flag(help: "A short run for CI: 5,000 bundles, 400 ticks, 5 messages, 5 nodes for 2 days (the figures mean little).") var smoke = false

    /// The target for the median tick (issue 11): under 1 ms.
    static let tickTargetMicroseconds = 1_000.0

    func run() throws {
        let bundles = self.smoke ? 5_000 : self.bundles
        let ticks = self.smoke ? 400 : self.ticks
        let messages = self.smoke ? 5 : self.messages
        let nodes = self.smoke ? 5 : self.nodes
        let days = self.smoke ? 2 : self.days
        print("Courier engine benchmark: the real engine; tick cost on a SQLite file (WAL, synchronous=FULL), the rest in the simulator")
        try self.tickCost(bundles: bundles, ticks: ticks)
        guard !self.tickOnly else { return }
        try self.writesPerMessage(messages: messages)
        try self.tables(nodes: nodes, days: days)
    }

    /// 1. Wall time of `Node.tick` with `bundles` queued on a SQLite file: engine start (building the engine on the
    /// store and bringing its link up), then `ticks` ticks with no neighbour, then `ticks` more with one neighbour
    /// in range (announced, its link up, holding none of them: it never answers). The slowest tick of each run is
    /// named: when it was, the storage calls it made (counted by `CountingStorage`) and the packets it sent.
    func tickCost(bundles: Int, ticks: Int) throws {
        let folder = self.dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("courier-bench-engine-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer {
            if self.dir == nil {
                do { try FileManager.default.removeItem(atPath: folder) } catch { print("  (could not remove \(folder): \(error))") }
            }
        }
        var sc = Store.Configuration()
        sc.quotaBytes = 1 << 40
        let store = try Store(path: folder + "/engine.db", configuration: sc)
        var kg = SplitMix64(seed: 11)
        let net = try NetworkKey(bytes: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) })
        let me = NodeIdentity()
        let others = (0..<16).map { _ in NodeIdentity() }
        let compressor = BodyCompressor()
        let now = Date().timeIntervalSince1970
        let created = CourierTime.minutes(unixSeconds: Int64(now))
        let texts = ["Water distribution moves to Thursday 7:00 at the east well.", "The road to the clinic is open again.",
                     "Meeting of the water committee at the school, 18:00.", "Two families need tents near the north gate."]
        let t0 = Date()
        var seq: UInt32 = 0
        let batch = 1_000
        var made = 0
        while made < bundles {
            let n = min(batch, bundles - made)
            let directed = (made / batch) % 2 == 1
            let bs = try (0..<n).map { _ -> CourierBundle in
                seq += 1
                let origin = others[Int(seq) % others.count]
                let dest: Destination = directed ? .node(others[(Int(seq) + 1) % others.count].nodeID.short) : .everyone
                return try CourierBundle.make(
                    kind: .text, destination: dest, content: Array(texts[Int(seq) % texts.count].utf8), origin: origin,
                    created: created, sequence: seq, options: BundleOptions(kind: .text, sign: false), compressor: compressor)
            }
            _ = try store.insert(bs, now: Int64(now), local: false, custody: directed, from: "bench")
            made += n
        }
        let fill = Date().timeIntervalSince(t0)
        let counted = CountingStorage(store)
        let link = MeshSimulator.Options().link
        let t1 = Date()
        let node = try Node(config: NodeConfig(identity: me, networkKey: net, name: "bench"), store: counted,
                            links: [LinkInfo(name: "radio", properties: link)], now: now, seed: 1, compressor: compressor)
        let built = Date().timeIntervalSince(t1)
        _ = node.linkUp("radio", now: now)
        let start = Date().timeIntervalSince(t1)
        print("  \(try store.count()) bundles queued (\(bundles / 2) floods, \(bundles - bundles / 2) directed in custody), one LoRa link; queue filled in \(String(format: "%.1f", fill)) s")
        print(String(format: "      engine start: %.3f s (building the engine on the store %.3f s, bringing its link up %.3f s)", start, built, start - built))
        // The neighbour: a member this node has not heard yet, announcing itself (with the hello bit, as after a
        // start) every `announceEvery` seconds; it holds none of the bundles and answers nothing.
        let neighbour = NodeIdentity()
        let sealer = PacketSealer(networkKey: net, sender: neighbour.nodeID)
        var counter: UInt32 = 0
        func announce() -> [UInt8] {
            counter += 1
            let k = neighbour.publicKeys
            let a = AnnounceRecord(capabilities: 1 | AnnounceRecord.compact | (counter == 1 ? AnnounceRecord.hello : 0),
                                   signingKey: k.signing, agreementKey: k.agreement, name: "neighbour")
            return sealer.seal([.announce(a)], counter: counter, announceSalt: counter)
        }
        let announceEvery = 120.0
        var clock = now
        for withNeighbour in [false, true] {
            var micros: [Double] = []
            micros.reserveCapacity(ticks)
            var slowest = (index: 0, micros: -1.0, at: 0.0, calls: [String: Int](), sent: 0, what: "")
            var sent = 0
            var callsTotal = 0
            var quietTicks = 0
            var quietCalls = 0
            var lastAnnounce = -Double.infinity
            let lookedAt = node.heldBundlesLookedAt
            for i in 1...ticks {
                clock += 0.25
                var what = "tick"
                counted.reset()
                let t = Date()
                var out: [NodeOutput]
                if withNeighbour && clock - lastAnnounce >= announceEvery {
                    lastAnnounce = clock
                    what = "the neighbour's announce received (and the tick it ends with)"
                    out = node.receive(announce(), on: "radio", now: clock)
                } else {
                    out = node.tick(now: clock)
                }
                let us = Date().timeIntervalSince(t) * 1e6
                micros.append(us)
                let calls = counted.calls
                let packets = out.filter { if case .send = $0 { return true } else { return false } }.count
                sent += packets
                callsTotal += calls.values.reduce(0, +)
                if packets == 0 && what == "tick" {
                    quietTicks += 1
                    quietCalls += calls.values.reduce(0, +)
                }
                if us > slowest.micros { slowest = (i, us, clock - now, calls, packets, what) }
            }
            let sorted = micros.sorted()
            let median = sorted[sorted.count / 2]
            let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            print(withNeighbour
                  ? "  tick cost with one neighbour in range (announced every \(Int(announceEvery)) s, link up, holding none of the bundles, answering nothing):"
                  : "  tick cost with no neighbour:")
            print(String(format: "      %d ticks over %.0f s of virtual time: median %.0f µs, mean %.0f µs, p99 %.0f µs, max %.0f µs   (target: median < %.0f µs: %@)",
                         ticks, Double(ticks) * 0.25, median, micros.reduce(0, +) / Double(max(1, ticks)), p99, sorted.last ?? 0,
                         Self.tickTargetMicroseconds, median < Self.tickTargetMicroseconds ? "met" : "NOT met"))
            print(String(format: "      %d packets sent; %d storage calls in all, %d of them in the %d ticks that sent nothing (housekeeping, every %.0f s, included)",
                         sent, callsTotal, quietCalls, quietTicks, 60.0))
            print(String(format: "      held bundles looked at by routing: %d in all (%d transfers under way at the end)",
                         node.heldBundlesLookedAt - lookedAt, node.tables.first { $0.table == "transfers" }?.size ?? 0))
            let named = slowest.calls.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            print(String(format: "      the slowest tick: number %d at %.2f s (%.0f µs): %@; %d packets sent; storage calls: %@",
                         slowest.index, slowest.at, slowest.micros, slowest.what, slowest.sent, named.isEmpty ? "none" : named))
        }
    }

    /// 2. Commits on the receiving (and the sending) store per 3 KB message sent directly between two neighbours.
    func writesPerMessage(messages: Int) throws {
        let sim = try MeshSimulator(count: 2, edges: [(0, 1)])
        // Past the start (announces, hellos, keys): what follows is the cost of the messages.
        sim.run(until: 120)
        let receiver = sim.stores[1].countCommits()
        let sender = sim.stores[0].countCommits()
        var rng = SplitMix64(seed: 3)
        let to = sim.identities[1].nodeID.short
        var delivered = 0
        var packets = 0
        for m in 0..<messages {
            // 3 KB of text that compresses about as real text does not: base64 of random bytes.
            let text = Data((0..<2_250).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).base64EncodedString()
            let id = try sim.submit(from: 0, kind: .text, to: .node(to), text: text)
            let start = sim.elapsed
            while !sim.has(1, id) && sim.elapsed - start < 1_800 { sim.run(until: sim.elapsed + 5) }
            if sim.has(1, id) { delivered += 1 }
            packets += sim.packetsCarrying[id] ?? 0
            // The receipt and the last acks settle before the next one.
            sim.run(until: sim.elapsed + 120)
            _ = m
        }
        let n = Double(max(1, messages))
        print("  durable writes (committed transactions; each one fsync with synchronous=FULL) per received 3 KB message, LoRa MTU 255, no loss:")
        print(String(format: "      receiver %.1f, sender %.1f a message (%d messages, %d delivered, %.1f data packets each; the counts include the announces, acks and receipt of the exchange)",
                     Double(receiver.commits) / n, Double(sender.commits) / n, messages, delivered, Double(packets) / n))
    }

    /// 3. Every engine table's size after `days` of village traffic in a random mesh: the largest over the nodes,
    /// halfway and at the end (a table that keeps growing has no bound).
    func tables(nodes: Int, days: Double) throws {
        var o = MeshSimulator.Options()
        o.loss = 0.1
        o.seed = 5
        o.configure = { $0.floodIdentity = true }
        let sim = try MeshSimulator(count: nodes, edges: MeshSimulator.randomMesh(count: nodes, degree: 3, seed: 5), options: o)
        let t0 = Date()
        let hours = Int(days * 24)
        var half: [String: Int] = [:]
        var submitted = 0
        for hour in 0..<hours {
            sim.run(until: Double(hour) * 3_600 + 60)
            let from = (hour * 7) % nodes
            if hour % 6 == 0 {
                try sim.submit(from: from, kind: .alert, to: .everyone, text: "Check \(hour): the road to the clinic is open.")
                submitted += 1
            }
            let to = (from + 1 + hour % (nodes - 1)) % nodes
            try sim.submit(from: from, kind: .text, to: .node(sim.identities[to].nodeID.short), text: "Message \(hour) from node \(from) to node \(to).")
            submitted += 1
            if hour == hours / 2 { half = Self.largest(sim) }
        }
        sim.run(until: Double(hours) * 3_600 + 3_600)
        let end = Self.largest(sim)
        print(String(format: "  engine tables after %.0f simulated days, %d nodes, %d messages (largest over the nodes; halfway -> end; %.1f s of wall time):",
                     days, nodes, submitted, Date().timeIntervalSince(t0)))
        for t in sim.nodes[0].tables {
            let e = end[t.table] ?? t.size
            let h = half[t.table] ?? 0
            print("      \(t.table.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(h).leftPad(7)) -> \(String(e).leftPad(7))\(e > h && e > 16 ? "   grows" : "")   bound: \(t.bound)")
        }
    }

    static func largest(_ sim: MeshSimulator) -> [String: Int] {
        var m: [String: Int] = [:]
        for n in sim.nodes { for t in n.tables { m[t.table] = max(m[t.table] ?? 0, t.size) } }
        return m
    }
}

extension String {
    func leftPad(_ width: Int) -> String { self.count >= width ? self : String(repeating: " ", count: width - self.count) + self }
}
