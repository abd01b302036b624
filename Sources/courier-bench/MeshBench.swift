import ArgumentParser
import CourierSim
import CourierWire
import Foundation

struct MeshBench: ParsableCommand {
    /// Seconds the mesh runs before the alert: the identity floods of a federation's start (every node's keys, so
    /// the alert's origin can be proven everywhere) are over, as they are on relays that have run for a while.
    static let warmUp: Double = 900

    /// Seconds after the alert within which every level of the receipts' first wave has had its turn (SPEC 6.16 rule 1:
    /// five levels of at most 1.25 rebroadcast windows, about 25 s each here, the origin's confirmation, and margin).
    static let firstWave: Double = 360

    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "The 20-node lossy-mesh alert scenario over many seeds: delivery, delivery time, transmissions vs naive flooding; and a 50-node simulated day.")

    @Option(help: "Nodes in the alert scenario.") var nodes = 20
    @Option(help: "Packet loss on every link (0-1).") var loss = 0.2
    @Option(help: "Seeds (runs).") var seeds = 20
    @Option(help: "Average links per node.") var degree = 4.0
    @Flag(help: "Skip the 50-node day.") var noDay = false
    @Option(help: "Flood suppression threshold k (copies heard that cancel a rebroadcast; default: the engine's).") var suppression: Int?
    @Option(help: "Flood rebroadcast window in packet airtimes (default: the engine's).") var floodWindow: Double?
    @Flag(help: "Relays send neighbour lists and flood with two-hop knowledge (SPEC 5.13, 8.5 rule 5; off by default).") var neighbourLists = false
    @Flag(help: "With --neighbour-lists: no relays named with floods (every relay that stores a flood may pass it on).") var noRelays = false

    func run() throws {
        print("Courier mesh benchmark: the real engine and store (in memory) on a virtual clock; LoRa SF9/125 kHz links, MTU 255")
        print("\(self.nodes) nodes, random mesh of average degree \(self.degree), \(Int(self.loss * 100))% loss on every packet, one alert, \(self.seeds) seeds")
        var ratios: [Double] = []
        var times: [Double] = []
        var delivered = 0
        // Every packet the nodes put on the air from the alert's submission to the end of the run, each in one class
        // (the first that applies, in this order).
        var alertBroadcast = 0, alertDirected = 0, receipts = 0, summaries = 0, receiptAcks = 0, acks = 0, other = 0
        // Packets carrying only identity bundles (keys and names: flooded once per relay, renewed before they expire,
        // and key requests): counted apart, not in the alert's cost.
        var identityPackets = 0
        var announces = 0, announcesWithSummary = 0, controlAnnounces = 0
        var oursBytes = 0, receiptBytes = 0
        var naiveTx = 0, naiveGot = 0, naiveBytes = 0
        var seedRatios: [Double] = [], seedNetRatios: [Double] = [], seedReceiptRatios: [Double] = []
        var controlOthers = 0, receiptsAlone = 0, receiptsOnAnnounces = 0, extraAnnounces = 0
        var seedMarginalRatios: [Double] = []
        var floorTx = 0, seedFloorRatios: [Double] = []
        // Who sends what: receipt-carrying packets by their sender's distance from the origin in the mesh (0: the
        // origin's confirmations), and alert packets by whether their sender had sent the alert before (a repair).
        var receiptsByHops: [Int: Int] = [:], alertFirst = 0, alertAgain = 0
        // And by when: within the first wave's time (`firstWave` after the alert) or later (parts sent again, late copies).
        var receiptsEarly = 0, receiptsLate = 0
        var allPackets = 0, controlPackets = 0, heardBy = 0
        let text = "Flash flood: the river is rising fast. Move to high ground now."
        let wall = Date()
        for seed in 1...self.seeds {
            var o = MeshSimulator.Options()
            o.loss = self.loss
            o.seed = UInt64(seed)
            // As `relay run` does: every node floods its identity (keys and name), so members can prove the alert's
            // origin (an alert from an origin whose keys are unknown is held until they arrive, SPEC 6.12).
            let (k, w, lists, relays) = (self.suppression, self.floodWindow, self.neighbourLists, !self.noRelays)
            o.configure = { c in
                c.floodIdentity = true
                c.neighbourLists = lists
                c.floodRelays = relays
                if let k { c.suppressionThreshold = k }
                if let w { c.floodDelayAirtimes = w }
            }
            let edges = MeshSimulator.randomMesh(count: self.nodes, degree: self.degree, seed: UInt64(seed))
            let sim = try MeshSimulator(count: self.nodes, edges: edges, options: o)
            sim.run(until: Self.warmUp)
            let start = sim.elapsed
            let id = try sim.submit(from: 0, kind: .alert, to: .everyone, text: text)
            sim.run(until: start + 3_600)
            let got = (1..<self.nodes).filter { sim.has($0, id) }
            delivered += got.count
            ratios.append(Double(got.count) / Double(self.nodes - 1))
            for i in got { times.append(sim.deliveryTimes[id]![i]! - MeshSimulator.epoch - start) }
            let window = sim.transmissions.filter { $0.time >= start }
            // Transfers of receipts for the alert (so acks for them count with the receipts).
            let receiptBundles = Set(window.filter { $0.receiptsFor.contains(id) }.flatMap(\.bundles))
            var mine = 0, seedReceipts = 0, seedAnnounces = 0, seedReceiptsOnAnnounces = 0
            let distance = MeshBench.hops(from: 0, count: self.nodes, edges: edges)
            // The nodes' short ids, to read the engine's own logs beside the lines below.
            if ProcessInfo.processInfo.environment["COURIER_MESH_RECEIPT_LOG"] != nil {
                print("seed \(seed) nodes: " + sim.identities.enumerated().map { "n\($0.offset)=\($0.element.nodeID.short)" }.joined(separator: " "))
            }
            var alertSenders: Set<Int> = []
            for t in window {
                if t.bundles.contains(id) && !t.directed {
                    if alertSenders.insert(t.node).inserted { alertFirst += 1 } else { alertAgain += 1 }
                } else if !t.bundles.contains(id) && t.receiptsFor.contains(id) {
                    receiptsByHops[distance[t.node], default: 0] += 1
                    if t.time - start < Self.firstWave { receiptsEarly += 1 } else { receiptsLate += 1 }
                    if ProcessInfo.processInfo.environment["COURIER_MESH_RECEIPT_LOG"] != nil {
                        let parts = t.receiptRecords.map { r in
                            "[hops \(r.hops): " + r.parts.filter { $0.id == id }.map { p in
                                sim.identities.firstIndex { $0.nodeID.short == p.holder }.map { "n\($0)" } ?? "\(p.holder)"
                            }.joined(separator: " ") + "]"
                        }.joined(separator: " ")
                        print(String(format: "seed %d t=%7.1f n%-2d hops %d%@ %@", seed, t.time - start, t.node, distance[t.node], t.hasAnnounce ? " announce" : "", parts))
                    }
                }
                if t.bundles.contains(id) {
                    if t.directed && !t.receiptsFor.contains(id) { alertDirected += 1 } else { alertBroadcast += 1 }
                } else if t.receiptsFor.contains(id) {
                    if t.hasAnnounce {
                        receiptsOnAnnounces += 1
                        seedReceiptsOnAnnounces += 1
                        seedAnnounces += 1
                    } else if t.bundles.isEmpty && !t.hasAck && !t.hasSummary { receiptsAlone += 1 }
                    receipts += 1
                    seedReceipts += 1
                    receiptBytes += t.bytes
                    continue
                } else if t.hasSummary && !t.periodicAnnounce {
                    summaries += 1
                } else if t.hasAck && !t.acked.isEmpty && t.acked.allSatisfy({ receiptBundles.contains($0) }) {
                    receiptAcks += 1
                    seedReceipts += 1
                    receiptBytes += t.bytes
                    continue
                } else if t.hasAck {
                    acks += 1
                } else if t.hasAnnounce {
                    announces += 1
                    seedAnnounces += 1
                    if t.periodicAnnounce { announcesWithSummary += 1 }
                    continue
                } else if t.identitiesOnly {
                    identityPackets += 1
                    continue
                } else {
                    other += 1
                }
                mine += 1
                oursBytes += t.bytes
            }
            // The same run without the alert: how many announces, and how many packets of the "other" class (identity
            // floods and key requests of the federation's start still crossing the lossy mesh), go out anyway.
            let control = try MeshSimulator(count: self.nodes, edges: edges, options: o)
            control.run(until: start + 3_600)
            let controlWindow = control.transmissions.filter { $0.time >= start }
            let seedControlAnnounces = controlWindow.filter { $0.hasAnnounce && $0.bundles.isEmpty && !$0.hasAck }.count
            controlAnnounces += seedControlAnnounces
            let controlOther = controlWindow.filter { !$0.bundles.isEmpty && !$0.identitiesOnly && $0.receiptsFor.isEmpty && !($0.hasSummary && !$0.periodicAnnounce) && !$0.hasAck }.count
            controlOthers += controlOther
            let naive = MeshSimulator.naiveFlood(count: self.nodes, edges: edges, loss: self.loss, origin: 0, seed: UInt64(seed) &* 31)
            naiveTx += naive.transmissions
            naiveGot += naive.reached
            naiveBytes += naive.transmissions * (window.first { $0.bundles == [id] && !$0.directed && $0.node == 0 }?.bytes ?? 0)
            let naiveSeed = Double(naive.transmissions) / Double(max(naive.reached, 1))
            // The floor: a planner that knows the mesh picks who sends, and nothing is lost (AlertFloor.plan).
            var heard = Array(repeating: Set<Int>(), count: self.nodes)
            for (a, b) in edges { heard[a].insert(b); heard[b].insert(a) }
            let planned = AlertFloor.plan(origin: 0, heard: heard)
            floorTx += planned.senders
            seedFloorRatios.append((Double(planned.senders) / Double(max(planned.has - 1, 1))) / naiveSeed)
            seedRatios.append((Double(mine) / Double(max(got.count, 1))) / naiveSeed)
            seedNetRatios.append((Double(max(0, mine - controlOther)) / Double(max(got.count, 1))) / naiveSeed)
            seedReceiptRatios.append((Double(mine + seedReceipts) / Double(max(got.count, 1))) / naiveSeed)
            // Announces that carried receipts went out instead of periodic ones (brought forward): what they cost is the
            // announces beyond those of the same run without the alert.
            let extra = max(0, seedAnnounces - seedControlAnnounces)
            allPackets += window.count
            controlPackets += controlWindow.count
            heardBy += Set(sim.events.filter { $0.node == 0 }.compactMap { e -> ShortID? in
                if case .receipt(let r, let by) = e.event, r == id { return by } else { return nil }
            }).count
            extraAnnounces += extra
            seedMarginalRatios.append((Double(mine + seedReceipts - seedReceiptsOnAnnounces + extra) / Double(max(got.count, 1))) / naiveSeed)
        }
        times.sort()
        func pct(_ p: Double) -> Double { times.isEmpty ? .nan : times[min(times.count - 1, Int(Double(times.count) * p))] }
        let copies = (self.nodes - 1) * self.seeds
        let ours = alertBroadcast + alertDirected + summaries + acks + other
        let withReceipts = ours + receipts + receiptAcks
        func per(_ n: Int, _ d: Int) -> Double { Double(n) / Double(max(d, 1)) }
        let naivePer = per(naiveTx, naiveGot)
        let runs = Double(self.seeds)
        print(String(format: "  delivery ratio: %.3f (%d of %d copies); naive flooding on the same meshes and loss: %.3f (%d)",
                     ratios.reduce(0, +) / Double(ratios.count), delivered, copies, per(naiveGot, copies), naiveGot))
        print(String(format: "  delivery time: median %.1f s, 95th percentile %.1f s, last %.1f s", pct(0.5), pct(0.95), times.last ?? .nan))
        print("  transmissions per delivered copy: every packet on the air from the alert's submission to the end of the hour:")
        print(String(format: "    naive flooding: %.2f (%d packets for %d copies): the origin and each node that gets it send it once, nothing else",
                     naivePer, naiveTx, naiveGot))
        print(String(format: "    ours: %.2f = %.2fx naive (%d packets: %d carrying the alert to everyone in range, %d to one neighbour, %d summaries, %d acks, %d other);",
                     per(ours, delivered), per(ours, delivered) / naivePer, ours, alertBroadcast, alertDirected, summaries, acks, other))
        print(String(format: "      per seed %.2fx naive on average, %.2fx at worst", seedRatios.reduce(0, +) / runs, seedRatios.max() ?? .nan))
        print(String(format: "      floor: %d packets (%.1f per run) when a planner with the whole mesh picks who sends and nothing is lost (a greedy connected dominating set from the origin, as under relay drill simulate --compare); per seed %.2fx naive on average, %.2fx at worst",
                     floorTx, Double(floorTx) / runs, seedFloorRatios.reduce(0, +) / runs, seedFloorRatios.max() ?? .nan))
        print(String(format: "      not counted: %d packets carrying only identity bundles (%.1f per run: keys and names still crossing the lossy mesh from the federation's start, and key requests); a relay learns an origin's keys once, not per alert",
                     identityPackets, Double(identityPackets) / runs))
        print(String(format: "      without the %d \"other\" packets the same runs send without the alert: %.2f = %.2fx naive; per seed %.2fx on average, %.2fx at worst",
                     controlOthers, per(max(0, ours - controlOthers), delivered), per(max(0, ours - controlOthers), delivered) / naivePer,
                     seedNetRatios.reduce(0, +) / runs, seedNetRatios.max() ?? .nan))
        print(String(format: "    ours with the receipts that tell the origin who has it (naive flooding has none): %.2f = %.2fx naive (+%d packets carrying receipts, +%d acks for them);",
                     per(withReceipts, delivered), per(withReceipts, delivered) / naivePer, receipts, receiptAcks))
        print("      of the packets carrying receipts, \(receiptsAlone) carry nothing else and \(receiptsOnAnnounces) are announces carrying them (most brought forward to, SPEC 6.16)")
        let marginal = withReceipts - receiptsOnAnnounces + extraAnnounces
        print(String(format: "      counting instead of those announces the announces beyond the same runs' without the alert (+%d): %.2f = %.2fx naive; per seed %.2fx on average, %.2fx at worst",
                     extraAnnounces, per(marginal, delivered), per(marginal, delivered) / naivePer,
                     seedMarginalRatios.reduce(0, +) / runs, seedMarginalRatios.max() ?? .nan))
        print(String(format: "      per seed %.2fx naive on average, %.2fx at worst; targets (issue 13 point 5): with receipts <= 1.5x, without <= 0.6x on average and <= 1.0x at worst",
                     seedReceiptRatios.reduce(0, +) / runs, seedReceiptRatios.max() ?? .nan))
        print(String(format: "    everything on the air in the hour less the same runs without the alert: %d - %d = %d packets, %.2f = %.2fx naive",
                     allPackets, controlPackets, allPackets - controlPackets, per(allPackets - controlPackets, delivered),
                     per(allPackets - controlPackets, delivered) / naivePer))
        print("      packets carrying receipts by their sender's hops from the origin: "
              + receiptsByHops.keys.sorted().map { "\($0): \(receiptsByHops[$0]!)" }.joined(separator: ", ")
              + " (0: the origin's confirmations)")
        print(String(format: "      packets carrying receipts by when: %d within %.0f s of the alert (every level's turn and the origin's confirmation), %d later (parts sent again, parts of late copies)",
                     receiptsEarly, Self.firstWave, receiptsLate))
        print("      alert packets to everyone in range: \(alertFirst) first sends (the origin's and each relay's), \(alertAgain) sent again by a node that had sent it")
        print("    the origin heard receipts from \(heardBy) of the \(delivered) nodes that got the alert within the hour")
        print(String(format: "    not counted on either side: announces, %.1f per run (%.1f per run in the same runs without the alert), %d of them carrying the sender's summary",
                     Double(announces) / runs, Double(controlAnnounces) / runs, announcesWithSummary))
        print(String(format: "  bytes on air per delivered copy: naive %.0f, ours %.0f, with receipts %.0f",
                     per(naiveBytes, naiveGot), per(oursBytes, delivered), per(oursBytes + receiptBytes, delivered)))
        print(String(format: "  wall time: %.1f s for %d simulated hours (and as many without the alert)", Date().timeIntervalSince(wall), self.seeds))

        guard !self.noDay else { return }
        // 50 nodes, a simulated day of village traffic.
        var o = MeshSimulator.Options()
        o.loss = self.loss
        o.seed = 99
        let (lists, relays) = (self.neighbourLists, !self.noRelays)
        o.configure = { c in
            c.floodIdentity = true
            c.neighbourLists = lists
            c.floodRelays = relays
        }
        let n = 50
        let edges = MeshSimulator.randomMesh(count: n, degree: self.degree, seed: 99)
        let sim = try MeshSimulator(count: n, edges: edges, options: o)
        let t0 = Date()
        var ids: [(BundleID, Int?)] = []
        for hour in 0..<24 {
            sim.run(until: Double(hour) * 3_600 + 60)
            let from = (hour * 7) % n
            if hour % 6 == 0 {
                ids.append((try sim.submit(from: from, kind: .alert, to: .everyone, text: "Hourly check \(hour): road to the clinic open."), nil))
            }
            let to = (from + 13) % n
            ids.append((try sim.submit(from: from, kind: .text, to: .node(sim.identities[to].nodeID.short), text: "Message \(hour) from node \(from) to node \(to)."), to))
        }
        sim.run(until: 24 * 3_600 + 3_600)
        var direct = (ok: 0, total: 0), alerts = (ok: 0, total: 0)
        var misses: [String] = []
        for (id, to) in ids {
            if let to {
                direct.total += 1
                if sim.has(to, id) { direct.ok += 1 } else { misses += MeshDay.miss(sim, edges: edges, id: id, to: to) }
            } else {
                // An alert: every node but its origin.
                for j in 0..<n where sim.identities[j].nodeID.short != id.origin {
                    alerts.total += 1
                    if sim.has(j, id) { alerts.ok += 1 } else { misses += MeshDay.miss(sim, edges: edges, id: id, to: j) }
                }
            }
        }
        print(String(format: "  50 nodes, one simulated day (4 alerts, 24 direct messages): %d of %d deliveries (%d of %d direct messages, %d of %d alert copies), %d packets, %.1f s of wall time",
                     direct.ok + alerts.ok, direct.total + alerts.total, direct.ok, direct.total, alerts.ok, alerts.total,
                     sim.packetsSent.reduce(0, +), Date().timeIntervalSince(t0)))
        for l in misses { print(l) }
        // The target is delivery within each message's lifetime (14 days for a text), longer than the hour the day
        // runs on: the run goes on, with no new traffic, until every direct message has arrived or its lifetime
        // has ended, an hour at a time.
        var directIDs: [(id: BundleID, to: Int)] = []
        for (id, to) in ids { if let to { directIDs.append((id, to)) } }
        func submitted(_ id: BundleID) -> Double { (sim.submittedAt[id] ?? MeshSimulator.epoch) - MeshSimulator.epoch }
        let lifetime = Double(Kind.text.defaultLifetime) * 60
        let end = directIDs.map { submitted($0.id) + lifetime }.max() ?? 0
        var t = 24.0 * 3_600 + 3_600
        var later: [String] = []
        while t < end {
            let waiting = directIDs.filter { !sim.has($0.to, $0.id) }
            if waiting.isEmpty { break }
            t = min(t + 3_600, end)
            sim.run(until: t)
            for w in waiting where sim.has(w.to, w.id) {
                later.append(String(format: "    %@ for n%d arrived after the day, within %.0f s of its submission (by the hour)", "\(w.id)", w.to, t - submitted(w.id)))
            }
        }
        let arrived = directIDs.filter { sim.has($0.to, $0.id) }.count
        print(String(format: "  within their lifetime (%d days for a text; after the day the run goes on with no new traffic, up to %.0f s): %d of %d direct messages",
                     Int(Kind.text.defaultLifetime) / 1_440, t, arrived, directIDs.count))
        for l in later { print(l) }
    }

    /// Each node's distance in hops from `origin` over the mesh's edges (`Int.max` when unreachable).
    static func hops(from origin: Int, count: Int, edges: [(Int, Int)]) -> [Int] {
        var adj = Array(repeating: [Int](), count: count)
        for (a, b) in edges {
            adj[a].append(b)
            adj[b].append(a)
        }
        var d = Array(repeating: Int.max, count: count)
        d[origin] = 0
        var queue = [origin]
        while !queue.isEmpty {
            let i = queue.removeFirst()
            for j in adj[i] where d[j] == .max {
                d[j] = d[i] + 1
                queue.append(j)
            }
        }
        return d
    }
}
