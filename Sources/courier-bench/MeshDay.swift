import CourierNode
import CourierSim
import CourierWire
import Foundation

/// The 50-node simulated day's misses, one line each: which bundle, for which node, where it stopped (who still holds
/// it, custody moves, give-ups and stalls the engines said) and the node's neighbours in the mesh.
enum MeshDay {
    static func miss(_ sim: MeshSimulator, edges: [(Int, Int)], id: BundleID, to j: Int) -> [String] {
        let index = Dictionary(uniqueKeysWithValues: sim.identities.enumerated().map { ($0.element.nodeID.short, $0.offset) })
        func name(_ s: ShortID) -> String { index[s].map { "n\($0)" } ?? s.description }
        let submitted = sim.submittedAt[id].map { String(format: "%.0f s", $0 - MeshSimulator.epoch) } ?? "?"
        var lines = ["    missed: \(id) (origin n\(index[id.origin] ?? -1), submitted at \(submitted)) for n\(j)"]
        var story: [String] = []
        for (node, e) in sim.events {
            switch e {
            case .bundleStored(let b, let from) where b == id: story.append("n\(node) stored it from \(from.map(name) ?? "?")")
            case .custodyReleased(let b, let to) where b == id: story.append("n\(node) handed custody to \(name(to))")
            case .gaveUp(let b, let why) where b == id: story.append("n\(node) gave up: \(why)")
            case .stalled(let b, let to) where b == id: story.append("n\(node) stalled towards \(name(to))")
            case .expired(let b) where b == id: story.append("n\(node) expired")
            default: break
            }
        }
        lines.append("      " + (story.isEmpty ? "no node but its origin took it" : story.joined(separator: "; ")))
        var holders: [String] = []
        for (k, store) in sim.stores.enumerated() {
            do { if try store.bundle(id) != nil { holders.append("n\(k)") } } catch { holders.append("n\(k) (store unreadable: \(error))") }
        }
        let neighbours = edges.compactMap { $0.0 == j ? $0.1 : $0.1 == j ? $0.0 : nil }.sorted()
        let heard = neighbours.map { k in "n\(k)\(sim.packetsSent[k] > 0 ? "" : " (never sent)")" }
        // COURIER_MESH_DAY_LOG: every packet the missed node and its neighbours sent from the bundle's submission on.
        if ProcessInfo.processInfo.environment["COURIER_MESH_DAY_LOG"] != nil, let at = sim.submittedAt[id].map({ $0 - MeshSimulator.epoch }) {
            let around = Set([j] + edges.compactMap { $0.0 == j ? $0.1 : $0.1 == j ? $0.0 : nil })
            for t in sim.transmissions where t.time >= at && around.contains(t.node) {
                let what = [t.bundles.contains(id) ? (t.directed ? "it (directed)" : "it") : nil,
                            t.bundles.isEmpty || t.bundles == [id] ? nil : "\(t.bundles.count) bundles",
                            t.hasAnnounce ? (t.periodicAnnounce ? "periodic announce" : "announce") : nil,
                            t.hasSummary ? "summary" : nil, t.hasAck ? "ack" : nil,
                            t.receiptsFor.contains(id) ? "receipt parts for it" : nil].compactMap { $0 }
                lines.append(String(format: "      t=%.1f n%d %@", t.time - at, t.node, what.joined(separator: ", ")))
            }
        }
        lines.append("      held at the end by \(holders.isEmpty ? "nobody" : holders.joined(separator: ", ")); n\(j)'s neighbours in the mesh: \(heard.joined(separator: ", "))")
        return lines
    }
}
