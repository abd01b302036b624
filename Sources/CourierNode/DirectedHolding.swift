import CourierWire

/// What a relay knows of a directed bundle it holds, for the drill's account of undelivered mail (`relay drill
/// simulate --undelivered`): read-only, from the routing part's memory (Routing.swift) and the transfers under way.
public struct DirectedHolding: Sendable {
    /// Held in custody (a directed bundle held without custody is a copy the relay does not route).
    public var custody: Bool
    /// Its copy budget here (SPEC 5.14).
    public var copies: Int
    /// The hop limit left in the held copy (nil: not read, and `hopLimitUnread` says why).
    public var hopLimit: Int?
    /// Why the hop limit could not be read: the store failed to give the bundle back, or does not hold it.
    public var hopLimitUnread: String?
    /// The route to the destination as learnt (used or not): the neighbour, the hops it said, its age in seconds.
    public var route: (via: ShortID, hops: Int, age: Double)?
    /// A route young enough to be used (`usableRoute`) through a neighbour fresh now.
    public var routeUsable: Bool
    /// The next hop routing would take now (`onwardHop`: split horizon applied).
    public var onward: ShortID?
    /// The destination itself is a fresh neighbour.
    public var destinationInRange: Bool
    /// Fresh neighbours, and of those the ones a copy could still go to (not the origin, not given one, not known to
    /// hold it).
    public var freshNeighbours: Int
    public var candidates: Int
    /// Neighbours given a copy of it.
    public var copiesGiven: Int
    /// Transfers of it under way: to whom, retransmission time-outs without progress, custody, records acknowledged
    /// of all, seconds since its records first went (nil: never sent) and until it is due.
    public var transfers: [(target: ShortID?, attempts: Int, custody: Bool, acked: Int, records: Int, sentAgo: Double?, dueIn: Double)]
    /// What is left of the link's duty-cycle allowance (seconds of airtime; infinite without one), and the urgent
    /// reserve below which only urgent data goes.
    public var airtimeLeft: Double
    public var urgentReserve: Double
}

extension Node {
    /// What this relay knows of a directed bundle it holds (nil: not held, or not directed).
    public func directedHolding(_ id: BundleID, now: Double) -> DirectedHolding? {
        guard let h = self.heldIndex.byID[id], case .node(let dest) = h.destination else { return nil }
        var hopLimit: Int? = nil
        var hopLimitUnread: String? = nil
        do {
            if let q = try self.store.bundle(id), let first = q.data.first {
                hopLimit = Int(first >> 4)
            } else {
                hopLimitUnread = "held in the index but not in the store"
            }
        } catch {
            hopLimitUnread = "\(error)"
        }
        let route = self.routes[dest].map { (via: $0.via.short, hops: $0.hops, age: now - $0.at) }
        let usable = self.usableRoute(dest, now: now).map { self.freshLink($0.via, now: now) != nil } ?? false
        let given = self.replicas[id] ?? []
        let fresh = self.neighbours.values.filter { $0.id != self.me && self.freshLink($0.id, now: now) != nil }
        let candidates = fresh.filter { $0.id.short != id.origin && !given.contains($0.id) && !self.isHolder(id, $0.id) }
        let destInRange = (self.directory[dest] ?? []).contains { $0 != self.me && self.freshLink($0, now: now) != nil }
        let transfers = self.transfers.keys(of: id).compactMap { k in self.transfers[k] }.map {
            (target: $0.key.target?.short, attempts: $0.attempts, custody: $0.custody, acked: $0.acked.count,
             records: $0.records.count, sentAgo: $0.firstSent.map { now - $0 }, dueIn: $0.due - now)
        }
        let link = self.transfers.keys(of: id).first.flatMap { self.links[$0.link] } ?? self.linkOrder.first.flatMap { self.links[$0] }
        return DirectedHolding(
            custody: h.custody, copies: self.copiesLeft(id), hopLimit: hopLimit, hopLimitUnread: hopLimitUnread, route: route, routeUsable: usable,
            onward: self.onwardHop(for: id, to: dest, now: now)?.0.short, destinationInRange: destInRange,
            freshNeighbours: fresh.count, candidates: candidates.count, copiesGiven: given.count, transfers: transfers,
            airtimeLeft: link.map { Self.tokens($0, at: now) } ?? .infinity, urgentReserve: link.map { Self.urgentReserve($0.info) } ?? 0)
    }
}

extension Node {
    /// What is left now of a link's duty-cycle allowance in its window (seconds; infinite without a duty cycle), and
    /// the urgent reserve below which only urgent data goes (SPEC 8.5): for the drill's account of the allowance.
    public func airtimeLeft(on link: String, now: Double) -> (left: Double, reserve: Double)? {
        guard let l = self.links[link] else { return nil }
        return (Self.tokens(l, at: now), Self.urgentReserve(l.info))
    }
}
