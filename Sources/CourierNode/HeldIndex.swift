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

    /// Ids in the queue's order (binary search on insert and removal: no re-sort).
    struct Ordered {
        private(set) var keys: [Key] = []
        private(set) var ids: [BundleID] = []

        init() {}
        init(sorted pairs: [(Key, BundleID)]) {
            self.keys = pairs.map(\.0)
            self.ids = pairs.map(\.1)
        }

        func position(_ k: Key) -> Int {
            var lo = 0, hi = self.keys.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if self.keys[mid] < k { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        mutating func insert(_ k: Key, _ id: BundleID) {
            let i = self.position(k)
            self.keys.insert(k, at: i)
            self.ids.insert(id, at: i)
        }

        mutating func remove(_ k: Key) {
            let i = self.position(k)
            guard i < self.keys.count, self.keys[i] == k else { return }
            self.keys.remove(at: i)
            self.ids.remove(at: i)
        }
    }

    private(set) var byID: [BundleID: HeldBundle] = [:]
    /// Every held bundle, in the queue's order.
    private(set) var all = Ordered()
    /// Directed bundles in our custody (those routing looks at), in the queue's order.
    private(set) var custodyDirected = Ordered()
    /// Held bundles that are not directed (floods and group bundles: those a contact may lack).
    private(set) var undirected = 0

    init() {}

    /// The index of `held` (as `NodeStorage.held` returns it).
    init(_ held: [HeldBundle]) {
        var pairs: [(Key, BundleID)] = []
        pairs.reserveCapacity(held.count)
        self.byID.reserveCapacity(held.count)
        for h in held where self.byID[h.id] == nil {
            self.byID[h.id] = h
            pairs.append((Key(h), h.id))
        }
        pairs.sort { $0.0 < $1.0 }
        self.all = Ordered(sorted: pairs)
        self.custodyDirected = Ordered(sorted: pairs.filter { Self.isCustodyDirected(self.byID[$0.1]!) })
        self.undirected = self.byID.values.reduce(0) { $0 + (Self.isDirected($1) ? 0 : 1) }
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
    /// Directed bundles in our custody, in the queue's order.
    var orderedCustodyDirected: [HeldBundle] { self.custodyDirected.ids.map { self.byID[$0]! } }
    /// The held bundles that are not directed, in the queue's order.
    var orderedUndirected: [HeldBundle] {
        guard self.undirected > 0 else { return [] }
        return self.ordered.filter { !Self.isDirected($0) }
    }

    mutating func insert(_ h: HeldBundle) {
        self.remove(h.id)
        self.byID[h.id] = h
        self.all.insert(Key(h), h.id)
        if Self.isCustodyDirected(h) { self.custodyDirected.insert(Key(h), h.id) }
        if !Self.isDirected(h) { self.undirected += 1 }
    }

    mutating func remove(_ id: BundleID) {
        guard let h = self.byID.removeValue(forKey: id) else { return }
        self.all.remove(Key(h))
        if Self.isCustodyDirected(h) { self.custodyDirected.remove(Key(h)) }
        if !Self.isDirected(h) { self.undirected -= 1 }
    }
}

extension Node {
    /// What the engine's index says it holds, in the queue's order (a test compares it with `NodeStorage.held`).
    public var heldIndexed: [HeldBundle] { self.heldIndex.ordered }

    /// Builds the index of held bundles from the store (one query): at start, and after a grouped write whose commit
    /// failed. Unreadable: the index is kept as it was and built again at the next housekeeping.
    func rebuildHeldIndex() {
        guard let held = self.storing("read the bundles held to index them", { try self.store.held(limit: Tuning.heldLimit) }) else {
            self.heldIndexStale = true
            return
        }
        self.heldIndex = HeldIndex(held)
        self.heldIndexStale = false
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
        for e in gone { self.heldIndex.remove(e.id) }
    }
}
