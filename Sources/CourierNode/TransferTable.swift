import CourierWire

extension Node {
    /// The transfers under way (Transfers.swift), with the indexes the hot paths need so their work is proportional
    /// to what is due, not to what is queued (issue 11 point 5): per link a due-time heap (transfers waiting for their
    /// due time: a delay, a retransmission time-out) and the transfers already due in the composer's order (class,
    /// then age); per bundle its transfers and whether one carries custody; per (link, neighbour, transfer number)
    /// the transfer an ack names; per link the directed transfers with fragments in flight. Reads and writes look
    /// like a dictionary's (`transfers[key] = t`, `for (k, t) in transfers`); every write keeps the indexes in step.
    /// A journal undoes what composing a packet changed when its commit fails (DurableGroups.swift), without a copy
    /// of the whole table per packet.
    struct TransferTable: Sequence {
        struct Rank: Comparable {
            let priority: PriorityClass
            let order: Int
            static func < (a: Rank, b: Rank) -> Bool { (a.priority, a.order) < (b.priority, b.order) }
        }

        struct NumberKey: Hashable {
            let link: String
            let target: NodeID?
            let number: UInt32
        }

        /// One link's transfers by due time.
        struct Lane {
            /// A min-heap of (due, key): transfers not yet seen due. Entries go stale when a transfer's due time
            /// changes or it ends (checked when they reach the top; rebuilt when stale ones outnumber the live).
            var heap: [(due: Double, key: TransferKey)] = []
            /// Transfers seen due, in the composer's order.
            var ready: [(rank: Rank, key: TransferKey)] = []
            var inReady: Set<TransferKey> = []
            /// Directed transfers with a retransmission time-out running (fragments in flight).
            var inFlight: Set<TransferKey> = []
            var count = 0
        }

        private(set) var byKey: [TransferKey: Transfer] = [:]
        private var byBundle: [BundleID: Set<TransferKey>] = [:]
        private var custody: [BundleID: Int] = [:]
        private var byNumber: [NumberKey: Set<TransferKey>] = [:]
        private var lanes: [String: Lane] = [:]
        private var journal: [(TransferKey, Transfer?)]? = nil
        /// Transfers carrying custody that ended (acked, given up, cancelled, undone), counted: the bundle may need
        /// routing again (`RoutingInputs`: a walk over the held bundles is due only when something like this changed).
        private(set) var custodyEnded = 0

        init() {}

        var count: Int { self.byKey.count }
        var isEmpty: Bool { self.byKey.isEmpty }
        var values: Dictionary<TransferKey, Transfer>.Values { self.byKey.values }
        var keys: Dictionary<TransferKey, Transfer>.Keys { self.byKey.keys }
        func makeIterator() -> Dictionary<TransferKey, Transfer>.Iterator { self.byKey.makeIterator() }

        subscript(_ key: TransferKey) -> Transfer? {
            get { self.byKey[key] }
            set { self.set(key, newValue) }
        }

        /// The transfers of a bundle (on every link).
        func keys(of bundle: BundleID) -> [TransferKey] { Array(self.byBundle[bundle] ?? []) }

        /// Whether a transfer carrying custody of `bundle` is under way.
        func hasCustody(_ bundle: BundleID) -> Bool { (self.custody[bundle] ?? 0) > 0 }

        /// The bundles a transfer carrying custody is under way for.
        var custodyBundles: Set<BundleID> { Set(self.custody.keys) }

        /// The transfer an ack from `target` on `link` names by its number (the oldest, should two share it).
        func named(link: String, target: NodeID, number: UInt32) -> Transfer? {
            guard let ks = self.byNumber[NumberKey(link: link, target: target, number: number)] else { return nil }
            return ks.compactMap { self.byKey[$0] }.min { $0.order < $1.order }
        }

        /// Directed transfers on `link` with fragments in flight (a retransmission time-out running).
        func inFlight(on link: String) -> [Transfer] {
            // (A loop, not a closure capturing the table: that took a copy of the whole table, every table retained
            // and released, at each packet composed and each tick.)
            guard let keys = self.lanes[link]?.inFlight else { return [] }
            var out: [Transfer] = []
            for k in keys { if let t = self.byKey[k] { out.append(t) } }
            return out
        }

        /// The transfers due on `link` at `now`, in the composer's order (class, then age), at most `limit`.
        mutating func due(on link: String, now: Double, limit: Int) -> [Transfer] {
            guard var lane = self.lanes.removeValue(forKey: link) else { return [] }
            defer { self.lanes[link] = lane }
            while let top = lane.heap.first, top.due <= now {
                Self.popHeap(&lane.heap)
                guard let t = self.byKey[top.key], t.due == top.due, !lane.inReady.contains(top.key) else { continue }
                Self.insertReady(&lane, Rank(priority: t.priority, order: t.order), top.key)
            }
            var out: [Transfer] = []
            for (_, k) in lane.ready {
                guard let t = self.byKey[k], t.due <= now else { continue }
                out.append(t)
                if out.count >= limit { break }
            }
            return out
        }

        /// The earliest due time on `link`: -infinity when a transfer is already due there, nil with none.
        mutating func earliestDue(on link: String) -> Double? {
            guard var lane = self.lanes.removeValue(forKey: link) else { return nil }
            defer { self.lanes[link] = lane }
            if !lane.ready.isEmpty { return -.infinity }
            while let top = lane.heap.first {
                if let t = self.byKey[top.key], t.due == top.due { return top.due }
                Self.popHeap(&lane.heap)
            }
            return nil
        }

        /// Transfers under way on `link` (whatever their state).
        func count(on link: String) -> Int { self.lanes[link]?.count ?? 0 }

        /// Links with transfers.
        var links: [String] {
            // (In the dictionary's order, as filtering its keys gave; without a closure capturing the table.)
            var out: [String] = []
            for (name, lane) in self.lanes where lane.count > 0 { out.append(name) }
            return out
        }

        // The journal: what composing one packet changed, undone if its commit fails.

        mutating func beginJournal() { self.journal = [] }
        mutating func endJournal() { self.journal = nil }
        mutating func rollBack() {
            guard let j = self.journal else { return }
            self.journal = nil
            for (k, old) in j.reversed() { self.set(k, old) }
        }

        // Keeping the indexes in step.

        private mutating func set(_ key: TransferKey, _ new: Transfer?) {
            let old = self.byKey[key]
            if self.journal != nil { self.journal!.append((key, old)) }
            self.byKey[key] = new
            var lane = self.lanes.removeValue(forKey: key.link) ?? Lane()
            defer { self.lanes[key.link] = lane.count == 0 ? nil : lane }
            if let old {
                if old.custody { self.custody[key.bundle]! -= 1; if self.custody[key.bundle] == 0 { self.custody[key.bundle] = nil } }
                if old.custody && new?.custody != true { self.custodyEnded += 1 }
                self.byNumber[NumberKey(link: key.link, target: key.target, number: old.number)]?.remove(key)
                if self.byNumber[NumberKey(link: key.link, target: key.target, number: old.number)]?.isEmpty == true {
                    self.byNumber[NumberKey(link: key.link, target: key.target, number: old.number)] = nil
                }
                lane.inFlight.remove(key)
                lane.count -= 1
                if new == nil || new!.due != old.due, lane.inReady.contains(key) { Self.removeReady(&lane, Rank(priority: old.priority, order: old.order), key) }
            }
            guard let new else {
                self.byBundle[key.bundle]?.remove(key)
                if self.byBundle[key.bundle]?.isEmpty == true { self.byBundle[key.bundle] = nil }
                self.compact(&lane)
                return
            }
            self.byBundle[key.bundle, default: []].insert(key)
            if new.custody { self.custody[key.bundle, default: 0] += 1 }
            self.byNumber[NumberKey(link: key.link, target: key.target, number: new.number), default: []].insert(key)
            if key.target != nil && new.rtoAt.isFinite { lane.inFlight.insert(key) }
            lane.count += 1
            // A new due time (or a new transfer) waits in the heap; an unchanged one stays where it is.
            if old == nil || old!.due != new.due { Self.pushHeap(&lane.heap, (new.due, key)) }
            self.compact(&lane)
        }

        /// Rebuilds a lane's heap when stale entries outnumber the live ones.
        private func compact(_ lane: inout Lane) {
            guard lane.heap.count > 4 * lane.count + 64 else { return }
            var live: [(due: Double, key: TransferKey)] = []
            var seen: Set<TransferKey> = []
            for e in lane.heap where !seen.contains(e.key) && !lane.inReady.contains(e.key) {
                guard let t = self.byKey[e.key], t.due == e.due else { continue }
                seen.insert(e.key)
                live.append(e)
            }
            lane.heap = []
            for e in live { Self.pushHeap(&lane.heap, e) }
        }

        private static func position(_ lane: Lane, _ r: Rank) -> Int {
            var lo = 0, hi = lane.ready.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if lane.ready[mid].rank < r { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        private static func insertReady(_ lane: inout Lane, _ r: Rank, _ k: TransferKey) {
            lane.ready.insert((r, k), at: Self.position(lane, r))
            lane.inReady.insert(k)
        }

        private static func removeReady(_ lane: inout Lane, _ r: Rank, _ k: TransferKey) {
            var i = Self.position(lane, r)
            while i < lane.ready.count, lane.ready[i].rank == r {
                if lane.ready[i].key == k {
                    lane.ready.remove(at: i)
                    break
                }
                i += 1
            }
            lane.inReady.remove(k)
        }

        private static func before(_ a: (due: Double, key: TransferKey), _ b: (due: Double, key: TransferKey)) -> Bool { a.due < b.due }

        private static func pushHeap(_ h: inout [(due: Double, key: TransferKey)], _ e: (due: Double, key: TransferKey)) {
            h.append(e)
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard Self.before(h[i], h[p]) else { break }
                h.swapAt(i, p)
                i = p
            }
        }

        private static func popHeap(_ h: inout [(due: Double, key: TransferKey)]) {
            guard !h.isEmpty else { return }
            h.swapAt(0, h.count - 1)
            h.removeLast()
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < h.count && Self.before(h[l], h[m]) { m = l }
                if r < h.count && Self.before(h[r], h[m]) { m = r }
                guard m != i else { break }
                h.swapAt(i, m)
                i = m
            }
        }
    }
}

extension Tuning {
    /// Due transfers one packet looks at, by class then age (the due-time index gives them without a look at the
    /// others): a packet of any MTU we know is full, or has met a transfer that stops it, long before.
    static let dueTransfersLooked = 256
}
