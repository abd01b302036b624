import CourierMedium
import CourierWire
import typealias CourierStore.HeldBundle
import Foundation

/// Custody routing: the next hop of a directed bundle (`routes` learnt from where bundles came from), copies to a few
/// neighbours when there is no route (`replicas`), and a cancelled or stalled bundle.
extension Node {
    static let maxReplicas = 2

    /// The neighbour to hand a directed bundle to: the destination itself, or the neighbour a route goes through.
    func nextHop(for dest: ShortID, now: Double) -> (NodeID, String)? {
        for id in self.directory[dest] ?? [] where id != self.me {
            if let l = self.freshLink(id, now: now) { return (id, l) }
        }
        if let r = self.routes[dest], now - r.at < self.config.neighbourTimeout * Tuning.routeKeptForTimeouts, let l = self.freshLink(r.via, now: now) {
            return (r.via, l)
        }
        return nil
    }

    /// The operator cancelled a queued bundle (`relay queue cancel`): transfers of it under way stop (their
    /// records are in memory) and a pending rebroadcast is dropped, so nothing more of it leaves this relay.
    public func cancelled(_ id: BundleID) {
        for k in self.transfers.keys(of: id) { self.transfers[k] = nil }
        self.floods[id] = nil
        self.unhold(id)
    }

    /// Where a directed bundle to each node known here would go now (the node itself when it is a fresh neighbour,
    /// else the neighbour a fresh route goes through); `relay queue list` shows it as the next hop.
    public func nextHops(now: Double) -> [(to: ShortID, via: ShortID, link: String)] {
        Set(self.directory.keys).union(self.routes.keys).sorted { $0.rawValue < $1.rawValue }.compactMap { d in
            guard d != self.me.short, let (via, link) = self.nextHop(for: d, now: now) else { return nil }
            return (d, via.short, link)
        }
    }

    /// Whether `routeDirected` could do anything for a held bundle now, decided in memory before the bundle is read:
    /// a directed bundle in custody with a next hop for its destination, or a fresh neighbour (`fresh`) it may still
    /// hand a copy to. With 50,000 held and no neighbour, housekeeping read every one of them for nothing.
    func mayRoute(_ h: HeldBundle, fresh: [(id: NodeID, link: String)], now: Double) -> Bool {
        guard h.custody, case .node(let dest) = h.destination else { return false }
        if self.nextHop(for: dest, now: now) != nil { return true }
        let given = self.replicas[h.id] ?? []
        return given.count < Self.maxReplicas && fresh.contains { $0.id.short != h.id.origin && !given.contains($0.id) }
    }

    func routeDirected(_ id: BundleID, now: Double) {
        // Unreadable: routed at the next housekeeping.
        guard let found = self.storing("read a bundle to route it", { try self.store.bundle(id) }) else { return }
        guard let q = found else {
            // Gone from the store meanwhile (taken out by another process): gone from the index too.
            self.unhold(id)
            return
        }
        guard q.custody, case .node(let dest) = q.destination else { return }
        guard !self.transfers.hasCustody(id) else { return }
        guard let (hop, link) = self.nextHop(for: dest, now: now) else {
            // No route yet: hand copies to a few neighbours now (a relay further on may know the way, or a
            // courier may carry it); we keep custody until a receipt says it arrived. Not to a neighbour known to
            // hold it (the one it came from): a courier's relay gave one of its two copies back to the relay it had
            // just taken it from, and had none left for the next village.
            let given = self.replicas[id, default: []]
            guard given.count < Self.maxReplicas else { return }
            let candidates = self.neighbours.values
                .filter { $0.id != self.me && $0.id.short != id.origin && !given.contains($0.id) && !self.isHolder(id, $0.id) && self.freshLink($0.id, now: now) != nil }
                .sorted { ($0.lastHeard.values.max() ?? 0, $0.id.description) > ($1.lastHeard.values.max() ?? 0, $1.id.description) }
            for n in candidates.prefix(Self.maxReplicas - given.count) {
                guard let l = self.freshLink(n.id, now: now) else { continue }
                self.replicas[id, default: []].insert(n.id)
                self.startTransfer(q, link: l, target: n.id, custody: false, now: now)
            }
            return
        }
        self.startTransfer(q, link: link, target: hop, custody: true, now: now)
    }

    /// A next hop stopped acknowledging a bundle in our custody: said in the log and the feed (the bundle is kept and
    /// routed again at the next housekeeping).
    func reportStalled(_ id: BundleID, to: ShortID, attempts: Int, now: Double) {
        do { try self.store.stalled(id, to: to, detail: "no acknowledgement after \(attempts) attempts; kept, will try again", now: Int64(now)) } catch {
            self.rejectStorage("cannot record \(id) stalled: \(error)", error)
        }
        self.emit(.event(.stalled(id, to: to)))
    }
}
