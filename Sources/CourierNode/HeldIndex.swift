import CourierWire
import typealias CourierStore.HeldBundle
import struct CourierStore.QueuedBundle
import typealias CourierStore.ExpiredBundle

/// The held-bundle index (issue 11 point 5): what the hot paths need to know of every bundle this node holds (id,
/// digest, destination, custody, its place in the queue's order, expiry), in memory. Built from the store at engine
/// start with one query (`NodeStorage.held`), kept in step by the engine's own writes (a bundle stored, made or
/// adopted is added; one expired, evicted, released, delivered, removed or cancelled is taken out), and built again
/// from the store after a grouped write whose commit failed (what the group wrote was undone). Summaries, routing,
/// the contact check and pruning read it instead of scanning the bundle table: a tick with nothing due reads
/// nothing from storage, however much is held.
///
/// A bundle another process took out of the store (`relay queue cancel` while the relay runs is told through
/// `Node.cancelled`) and that the index still lists is dropped when the engine next reads it and finds it gone.
struct HeldIndex {
    /// The queue's order: class, fair slot, arrival, row (the order of `NodeStorage.held` and of the scheduler).
    struct Key: Comparable, Hashable {
        let priority: Int64
        let slot: Int64
        let received: Int64
        let rowid: Int64

        init(_ h: HeldBundle) {
            self.priority = h.priority
            self.slot = h.slot
            self.received = h.received
            self.rowid = h.rowid
        }

        static func < (a: Key, b: Key) -> Bool {
            (a.priority, a.slot, a.received, a.rowid) < (b.priority, b.slot, b.received, b.rowid)
        }
    }

    /// Ids in the queue's order (binary search on insert and removal: no re-sort), with each one's digest and
    /// whether it is undirected (a summary walks these arrays without a look-up per bundle).
    struct Ordered {
        private(set) var keys: [Key] = []
        private(set) var ids: [BundleID] = []
        private(set) var digests: [UInt32] = []
        private(set) var undirected: [Bool] = []

        init() {}
        init(sorted held: [HeldBundle]) {
            self.keys = held.map(Key.init)
            self.ids = held.map(\.id)
            self.digests = held.map(\.digest)
            self.undirected = held.map { !HeldIndex.isDirected($0) }
        }

        func position(_ k: Key) -> Int {
            var lo = 0, hi = self.keys.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if self.keys[mid] < k { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        mutating func insert(_ h: HeldBundle) {
            let k = Key(h)
            let i = self.position(k)
            self.keys.insert(k, at: i)
            self.ids.insert(h.id, at: i)
            self.digests.insert(h.digest, at: i)
            self.undirected.insert(!HeldIndex.isDirected(h), at: i)
        }

        mutating func remove(_ k: Key) {
            let i = self.position(k)
            guard i < self.keys.count, self.keys[i] == k else { return }
            self.keys.remove(at: i)
            self.ids.remove(at: i)
            self.digests.remove(at: i)
            self.undirected.remove(at: i)
        }
    }

    private(set) var byID: [BundleID: HeldBundle] = [:]
    /// Every held bundle, in the queue's order.
    private(set) var all = Ordered()
    /// Directed bundles in our custody (those routing looks at), in the queue's order.
    private(set) var custodyDirected = Ordered()
    /// Held bundles that are not directed (floods and group bundles: those a contact may lack).
    private(set) var undirected = 0
    /// Held bundles by digest (a summary's digests name bundles by it).
    private(set) var byDigest: [UInt32: [BundleID]] = [:]
    /// When each held bundle joined the index (1, 2, 3, …), and how many joined so far: a neighbour told up to a
    /// number was told of every bundle that joined by then (`Node.wasTold`).
    private(set) var joined: [BundleID: Int] = [:]
    private(set) var joins = 0
    /// Bumped at every insert (a bundle new, or stored again with other facts: custody taken) and every rebuild:
    /// routing walks the held bundles again only when this or another of its inputs changed (`RoutingInputs`).
    private(set) var version = 0

    init() {}

    /// The index of `held` (as `NodeStorage.held` returns it).
    /// The index of `held`, each bundle keeping the place it had in `previous` (after a failed commit).
    init(_ held: [HeldBundle], keepingJoinsOf previous: HeldIndex) {
        self.init(held)
        self.joins = previous.joins
        self.version = previous.version + 1
        for id in self.byID.keys {
            if let j = previous.joined[id] {
                self.joined[id] = j
            } else {
                self.joins += 1
                self.joined[id] = self.joins
            }
        }
    }

    init(_ held: [HeldBundle]) {
        var unique: [HeldBundle] = []
        unique.reserveCapacity(held.count)
        self.byID.reserveCapacity(held.count)
        for h in held where self.byID[h.id] == nil {
            self.byID[h.id] = h
            self.byDigest[h.digest, default: []].append(h.id)
            self.joins += 1
            self.joined[h.id] = self.joins
            unique.append(h)
        }
        // The store gives them in the queue's order already; sorted only if not.
        var sorted = true
        for i in unique.indices.dropFirst() where Key(unique[i]) < Key(unique[i - 1]) { sorted = false; break }
        if !sorted { unique.sort { Key($0) < Key($1) } }
        self.all = Ordered(sorted: unique)
        self.custodyDirected = Ordered(sorted: unique.filter(Self.isCustodyDirected))
        self.undirected = unique.reduce(0) { $0 + (Self.isDirected($1) ? 0 : 1) }
    }

    static func isDirected(_ h: HeldBundle) -> Bool {
        if case .node = h.destination { return true }
        return false
    }

    static func isCustodyDirected(_ h: HeldBundle) -> Bool { h.custody && Self.isDirected(h) }

    var count: Int { self.byID.count }
    func contains(_ id: BundleID) -> Bool { self.byID[id] != nil }
    subscript(_ id: BundleID) -> HeldBundle? { self.byID[id] }

    /// Every held bundle in the queue's order.
    var ordered: [HeldBundle] { self.all.ids.map { self.byID[$0]! } }
    /// Held bundles with this digest.
    func held(digest: UInt32) -> [HeldBundle] { (self.byDigest[digest] ?? []).compactMap { self.byID[$0] } }

    mutating func insert(_ h: HeldBundle) {
        // Stored again (read back after a write): it keeps its place in `joined`.
        let place = self.joined[h.id]
        self.remove(h.id)
        self.version += 1
        if let place { self.joined[h.id] = place } else {
            self.joins += 1
            self.joined[h.id] = self.joins
        }
        self.byID[h.id] = h
        self.byDigest[h.digest, default: []].append(h.id)
        self.all.insert(h)
        if Self.isCustodyDirected(h) { self.custodyDirected.insert(h) }
        if !Self.isDirected(h) { self.undirected += 1 }
    }

    mutating func remove(_ id: BundleID) {
        guard let h = self.byID.removeValue(forKey: id) else { return }
        self.joined[id] = nil
        self.byDigest[h.digest]?.removeAll { $0 == id }
        if self.byDigest[h.digest]?.isEmpty == true { self.byDigest[h.digest] = nil }
        self.all.remove(Key(h))
        if Self.isCustodyDirected(h) { self.custodyDirected.remove(Key(h)) }
        if !Self.isDirected(h) { self.undirected -= 1 }
    }
}

extension Node {
    /// What the engine's index says it holds, in the queue's order (a test compares it with `NodeStorage.held`).
    public var heldIndexed: [HeldBundle] { self.heldIndex.ordered }

    /// Held bundles routing walks looked at so far, counted (`courier-bench engine`: housekeeping with nothing changed
    /// looks at none).
    public var heldBundlesLookedAt: Int { self.routeWalk.visited }

    /// Builds the index of held bundles from the store (one query): at start, and after a grouped write whose commit
    /// failed. Unreadable: the index is kept as it was and built again at the next housekeeping.
    func rebuildHeldIndex() {
        guard let held = self.storing("read the bundles held to index them", { try self.store.held(limit: Tuning.heldLimit) }) else {
            self.heldIndexStale = true
            return
        }
        let old = self.heldIndex
        // The budgets too: a failed commit undid those it wrote (read again at the next rebuild if unreadable).
        if let budgets = self.storing("read the copy budgets", { try self.store.copyBudgets() }) { self.copyBudgets = budgets }
        self.heldIndexStale = false
        self.heldIndex = HeldIndex(held, keepingJoinsOf: old)
    }

    /// A bundle just written to the store (stored from a link, made here, adopted): read back (by id, on the
    /// store's key) for its place in the queue, and indexed. Unreadable: the whole index is built again at the next
    /// housekeeping.
    func indexHeld(_ b: CourierBundle) {
        guard let found = self.storing("read a bundle just stored to index it", { try self.store.bundle(b.id) }) else {
            self.heldIndexStale = true
            return
        }
        if let q = found { self.heldIndex.insert(HeldBundle(q, expires: Int64(b.expires))) } else { self.heldIndex.remove(b.id) }
    }

    /// Bundles that left the store (expired, evicted).
    func unindexHeld(_ gone: [ExpiredBundle]) {
        for e in gone { self.unhold(e.id) }
    }

    /// A bundle that left the store: out of the index (and so no longer told to anyone).
    func unhold(_ id: BundleID) {
        self.heldIndex.remove(id)
        self.copyBudgets[id] = nil
        self.cameFrom[id] = nil
        self.copyTakenBack.remove(id)
    }

    /// A summary listing what we hold went to neighbour `n`: it was told of every bundle held now. (One number per
    /// neighbour, the last place in the index it was told up to; not a set of neighbours per held bundle, which cost a
    /// second per summary with 100,000 held.)
    func tellAll(_ n: NodeID) { self.toldUpTo[n] = self.heldIndex.joins }

    /// Whether neighbour `n` was told of held bundle `id`: a summary went to it since we hold it.
    func wasTold(_ id: BundleID, _ n: NodeID) -> Bool {
        guard let upTo = self.toldUpTo[n], let joined = self.heldIndex.joined[id] else { return false }
        return joined <= upTo
    }

    /// Routes the directed bundles in our custody that routing can do something for (`mayRoute`), in the queue's
    /// order, from the index: only with a neighbour to route to (with none, `mayRoute` is false for all), at most
    /// `Tuning.routedPerTick` of them in one tick, and only while some link has room for more (`roomToRoute`: a
    /// link holding more transfers than it can send in `Tuning.routeBacklog` seconds gets none; a neighbour that
    /// answered nothing had about 19,000 started for it in ten minutes, each packet then moving every one's
    /// timer); the rest later, from where this walk stopped (`RouteWalk`). A walk from the start is skipped when
    /// nothing routing depends on changed since the last one that left nothing routable behind (`RoutingInputs`):
    /// then no held bundle can have become routable, and housekeeping looks at none of them.
    func routeHeld(now: Double, fromStart: Bool) {
        if fromStart { self.routeWalk.cursor = nil }
        // Nothing in custody to route and room to route it: the walk ends here whoever is fresh (as the three guards
        // below would end it), so the fresh neighbours are not looked up. Most relays hold nothing in custody most of
        // the time, and this runs at every housekeeping: the look-up (every neighbour's links, sorted) was 4% of a
        // 1,000-relay drill's CPU. Without room it goes on below (the walk then waits: `pending`).
        if self.heldIndex.custodyDirected.ids.isEmpty && self.roomToRoute() {
            self.routeWalk.cursor = nil
            self.routeWalk.pending = false
            return
        }
        let fresh = self.freshNeighbours(now: now)
        guard !fresh.isEmpty else {
            self.routeWalk.cursor = nil
            self.routeWalk.pending = false
            return
        }
        // No room: the walk waits where it is (each tick looks again; `nextWakeup` does not call for one).
        guard self.roomToRoute() else {
            self.routeWalk.pending = true
            return
        }
        // Nothing in custody to route: the walk would look at nothing and end here, so the routing inputs (a next hop
        // asked for every destination known) are not taken. (`settled` stays as it was: it names the held bundles'
        // version, so it cannot match once there is something to route.)
        guard !self.heldIndex.custodyDirected.ids.isEmpty else {
            self.routeWalk.cursor = nil
            self.routeWalk.pending = false
            return
        }
        if self.routeWalk.cursor == nil {
            let inputs = self.routingInputs(fresh: fresh, now: now)
            if inputs == self.routeWalk.settled {
                self.routeWalk.pending = false
                return
            }
            self.routeWalk.begun = inputs
            self.routeWalk.leftBehind = false
            self.routeWalk.focusWaiting = []
        }
        let order = self.heldIndex.custodyDirected
        var i = self.routeWalk.cursor.map { order.position($0) } ?? 0
        self.routeWalk.cursor = nil
        var routed = 0
        while i < order.ids.count {
            let id = order.ids[i]
            i += 1
            self.routeWalk.visited += 1
            guard let h = self.heldIndex[id], !self.transfers.hasCustody(id), self.mayRoute(h, fresh: fresh, now: now) else { continue }
            if routed == Tuning.routedPerTick || !self.roomToRoute() {
                self.routeWalk.cursor = HeldIndex.Key(h)
                self.routeWalk.pending = true
                return
            }
            self.routeDirected(id, now: now)
            // Still routable (a read or a transfer that failed, a copy under way to the next hop): this walk does not
            // settle routing, the next one looks again.
            if !self.transfers.hasCustody(id), let again = self.heldIndex[id], self.mayRoute(again, fresh: fresh, now: now) {
                self.routeWalk.leftBehind = true
            }
            routed += 1
        }
        self.routeWalk.pending = false
        if !self.routeWalk.leftBehind { self.routeWalk.settled = self.routeWalk.begun }
    }

    /// Whether some up link has room for another transfer: fewer under way on it than it can send in
    /// `Tuning.routeBacklog` seconds, one packet each at least (a link without airtime, TCP, always has room).
    func roomToRoute() -> Bool {
        self.linkOrder.contains { name in
            guard let l = self.links[name], l.up else { return false }
            let a = l.info.properties.airtime(bytes: l.info.properties.mtu)
            guard a > 0 else { return true }
            return self.transfers.count(on: name) < max(Tuning.routedPerTick, Int(Tuning.routeBacklog / a))
        }
    }

    /// What `mayRoute` depends on besides each bundle's own facts, now.
    /// The next hops are those of every destination known (`nextHops`), found among the only ones that can have one:
    /// a route's destination, or a neighbour's short id (`nextHop` goes only to a neighbour). A federation's relay
    /// knows a thousand nodes' keys; asking each of them, at every walk, took a third of a 1,000-relay drill's time.
    func routingInputs(fresh: [(id: NodeID, link: String)], now: Double) -> RoutingInputs {
        // Only the routes young enough to be used (older ones, kept as hints, give no next hop).
        var reachable = Set(self.routes.compactMap { self.usableRoute($0.key, now: now) == nil ? nil : $0.key })
        for id in self.neighbours.keys where self.directory[id.short] != nil { reachable.insert(id.short) }
        // (The links' timeouts taken once for all of them: `linkFreshness`.)
        let links = self.linkFreshness()
        let hops = reachable.sorted { $0.rawValue < $1.rawValue }.compactMap { d -> RoutingInputs.Hop? in
            guard let (via, link) = self.nextHop(for: d, now: now, links) else { return nil }
            return RoutingInputs.Hop(to: d, via: via, link: link)
        }
        return RoutingInputs(fresh: fresh.map { RoutingInputs.Hop(to: $0.id.short, via: $0.id, link: $0.link) }, hops: hops,
                             held: self.heldIndex.version, custodyEnded: self.transfers.custodyEnded)
    }

    /// The held bundles' digests a summary lists, in the queue's order: every undirected one, and the directed ones
    /// `include` takes; then the seen digests (`seen`) none of those already lists and `directedSeen` leaves in.
    func summaryDigests(seen: [UInt32], include: (HeldBundle) -> Bool) -> [UInt32] {
        let a = self.heldIndex.all
        var digests: [UInt32] = []
        digests.reserveCapacity(a.ids.count)
        for i in a.ids.indices {
            if a.undirected[i] {
                digests.append(a.digests[i])
            } else if let h = self.heldIndex[a.ids[i]], include(h) {
                digests.append(a.digests[i])
            }
        }
        for d in seen where !self.directedSeen.contains(d) {
            let listed = self.heldIndex.held(digest: d).contains { !HeldIndex.isDirected($0) || include($0) }
            if !listed { digests.append(d) }
        }
        return digests
    }
}

/// What routing the held bundles depends on besides each bundle's own facts (`Node.mayRoute`): the neighbours in
/// range and their links, the next hop of every destination known, the held bundles (a version bumped at each
/// change), and the custody transfers ended. A bundle not routable when these were taken becomes routable only
/// when one of them changes (its replicas and transfers change only by routing it).
struct RoutingInputs: Equatable {
    struct Hop: Equatable {
        let to: ShortID
        let via: NodeID
        let link: String
    }

    let fresh: [Hop]
    let hops: [Hop]
    let held: Int
    let custodyEnded: Int
}

/// Where routing the held bundles stands (`Node.routeHeld`).
struct RouteWalk {
    /// Where the walk under way stopped (its per-tick bound, or no room on the links); nil: at the start.
    var cursor: HeldIndex.Key? = nil
    /// A walk under way, or waiting for room: each tick goes on with it.
    var pending = false
    /// The inputs when the walk under way began.
    var begun: RoutingInputs? = nil
    /// The inputs when the last complete walk began, if it left nothing routable behind: a walk from the start
    /// with the same inputs would route nothing.
    var settled: RoutingInputs? = nil
    /// The walk under way left a bundle still routable (a read or a transfer that failed).
    var leftBehind = false
    /// Held bundles looked at by walks, counted (tests: housekeeping with nothing changed looks at none).
    var visited = 0
    /// The destinations of last copies the walk under way or the last one left waiting with several ways on and no
    /// neighbour heard talking with the destination (`Node.focusHop`): once one is heard doing so, held bundles are
    /// routed again (`Node.noteTalksWith`), though no routing input changed. At most one per held bundle.
    var focusWaiting: Set<ShortID> = []
}

extension Tuning {
    /// Seconds of sending a link may have queued before routing starts more transfers on it: what it cannot send
    /// within a minute is better left in the queue, where a route found meanwhile can still take it.
    static let routeBacklog: Double = 60

    /// Directed bundles routing starts transfers for in one tick (the rest at the next ticks): a LoRa link carries a
    /// few packets a second, so 16 a tick (four ticks a second) keeps any link busy without a tick of seconds.
    static let routedPerTick = 16
}
