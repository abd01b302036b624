import ArgumentParser
import CourierSim
import CourierWire
import Foundation

struct MeshBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "The 20-node lossy-mesh alert scenario over many seeds: delivery, delivery time, transmissions vs naive flooding; and a 50-node simulated day.")

    @Option(help: "Nodes in the alert scenario.") var nodes = 20
    @Option(help: "Packet loss on every link (0-1).") var loss = 0.2
    @Option(help: "Seeds (runs).") var seeds = 20
    @Option(help: "Average links per node.") var degree = 4.0
    @Flag(help: "Skip the 50-node day.") var noDay = false

    func run() throws {
        print("Courier mesh benchmark: the real engine and store (in memory) on a virtual clock; LoRa SF9/125 kHz links, MTU 255")
        print("\(self.nodes) nodes, random mesh of average degree \(self.degree), \(Int(self.loss * 100))% loss on every packet, one alert, \(self.seeds) seeds")
        var ratios: [Double] = []
        var times: [Double] = []
        var ours = 0
        var repairsAndReceipts = 0
        var delivered = 0
        let wall = Date()
        for seed in 1...self.seeds {
            var o = MeshSimulator.Options()
            o.loss = self.loss
            o.seed = UInt64(seed)
            let sim = try MeshSimulator(count: self.nodes, edges: MeshSimulator.randomMesh(count: self.nodes, degree: self.degree, seed: UInt64(seed)), options: o)
            sim.run(until: 120)
            let start = sim.elapsed
            let id = try sim.submit(from: 0, kind: .alert, to: .everyone, text: "Flash flood: the river is rising fast. Move to high ground now.")
            sim.run(until: start + 3_600)
            let got = (1..<self.nodes).filter { sim.has($0, id) }
            delivered += got.count
            ratios.append(Double(got.count) / Double(self.nodes - 1))
            for i in got { times.append(sim.deliveryTimes[id]![i]! - MeshSimulator.epoch - start) }
            ours += sim.packetsCarrying[id] ?? 0
            let uc = sim.nodes.map(\.stats.unicastDataPackets)
            repairsAndReceipts += uc.reduce(0, +)
        }
        times.sort()
        func pct(_ p: Double) -> Double { times.isEmpty ? .nan : times[min(times.count - 1, Int(Double(times.count) * p))] }
        let naive = self.nodes * self.seeds
        print(String(format: "  delivery ratio: %.3f (%d of %d copies)", ratios.reduce(0, +) / Double(ratios.count), delivered, (self.nodes - 1) * self.seeds))
        print(String(format: "  delivery time: median %.1f s, 95th percentile %.1f s", pct(0.5), pct(0.95)))
        print(String(format: "  packets carrying the alert: %.2f per delivered copy (%d in all); naive flooding: %.2f per copy (%d, one per node, without repair)",
                     Double(ours) / Double(max(delivered, 1)), ours, Double(naive) / Double(max(delivered, 1)), naive))
        print(String(format: "  other unicast data packets (receipts back to the origin, their relays): %.1f per run", Double(repairsAndReceipts) / Double(self.seeds)))
        print(String(format: "  wall time: %.1f s for %d simulated hours", Date().timeIntervalSince(wall), self.seeds))

        guard !self.noDay else { return }
        // 50 nodes, a simulated day of village traffic.
        var o = MeshSimulator.Options()
        o.loss = self.loss
        o.seed = 99
        let n = 50
        let sim = try MeshSimulator(count: n, edges: MeshSimulator.randomMesh(count: n, degree: self.degree, seed: 99), options: o)
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
        var ok = 0
        var total = 0
        for (id, to) in ids {
            if let to {
                total += 1
                if sim.has(to, id) { ok += 1 }
            } else {
                // An alert: every node but its origin.
                total += n - 1
                ok += (0..<n).filter { sim.identities[$0].nodeID.short != id.origin && sim.has($0, id) }.count
            }
        }
        print(String(format: "  50 nodes, one simulated day (4 alerts, 24 direct messages): %d of %d deliveries, %d packets, %.1f s of wall time",
                     ok, total, sim.packetsSent.reduce(0, +), Date().timeIntervalSince(t0)))
    }
}
