import CourierStore
import CourierTooling
import CourierWire
import Testing

/// Properties of the scheduling query and the quota, over random workloads.
@Suite struct SchedulerTests {
    @Test(arguments: [1, 2, 3, 4, 5])
    func scheduleIsByClassThenFairThenAge(seed: Int) throws {
        var g = SplitMix64(seed: UInt64(seed))
        let store = try S.store()
        let kinds: [Kind] = [.alert, .aidRequest, .grievance, .minutes, .text, .aidOffer]
        var seq: UInt32 = 0
        for t in 0..<200 {
            seq += 1
            let origin = Int(g.next() % 4)
            try store.insert(try S.bundle(kinds[Int(g.next() % 6)], origin: origin, seq: seq), now: S.now + Int64(t), local: false, custody: true)
        }
        let order = try store.schedule(for: nil, now: S.now, limit: 1_000)
        #expect(order.count == 200)
        // 1. Classes never interleave: all of class 0, then 1, ...
        #expect(order.map(\.priority) == order.map(\.priority).sorted())
        // 2. Within a class, origins take turns: in any prefix, no origin is more than one ahead of another
        //    origin that still has bundles waiting.
        for p in PriorityClass.allCases {
            let cls = order.filter { $0.priority == p }
            let totals = Dictionary(grouping: cls, by: \.id.origin).mapValues(\.count)
            var served: [ShortID: Int] = [:]
            for q in cls {
                served[q.id.origin, default: 0] += 1
                for (o, n) in totals where served[o, default: 0] < n {
                    #expect(served[q.id.origin]! - served[o, default: 0] <= 1, "class \(p)")
                }
            }
            // 3. Each origin's own bundles go oldest first.
            for (_, mine) in Dictionary(grouping: cls, by: \.id.origin) {
                #expect(mine.map(\.received) == mine.map(\.received).sorted())
            }
        }
    }

    @Test func aLateOriginIsNotStarvedByAChattyOne() throws {
        let store = try S.store()
        for i in 0..<500 { try store.insert(try S.bundle(.minutes, origin: 1, seq: UInt32(i)), now: S.now, local: false, custody: true) }
        try store.insert(try S.bundle(.minutes, origin: 2, seq: 1), now: S.now + 60, local: false, custody: true)
        let first = try store.schedule(for: nil, now: S.now, limit: 3)
        #expect(first.contains { $0.id.origin == S.origins[2].nodeID.short })
        // An alert submitted last still goes first.
        try store.insert(try S.bundle(.alert, origin: 1, seq: 9_999), now: S.now + 120, local: true, custody: true)
        #expect(try store.schedule(for: nil, now: S.now, limit: 1)[0].kind == .alert)
    }

    @Test func neighbourStateFiltersTheSchedule() throws {
        let store = try S.store()
        let n = NodeIdentity().nodeID
        let a = try S.bundle(.text, seq: 1)
        let b = try S.bundle(.text, seq: 2)
        try store.insert([a, b], now: S.now, local: true, custody: true)
        try store.recordSent(a.id, to: n, transfer: 1, fragments: 1, indices: [0], nextRetry: S.now + 30, now: S.now)
        #expect(try store.schedule(for: n, now: S.now + 10, limit: 10).map(\.id) == [b.id])
        // When the retry time comes, it is offered again; once acknowledged, never.
        #expect(try store.schedule(for: n, now: S.now + 31, limit: 10).map(\.id) == [a.id, b.id])
        try store.recordAck(a.id, from: n, ack: AckEntry(transfer: 1, received: 1), now: S.now + 40)
        #expect(try store.schedule(for: n, now: S.now + 100, limit: 10).map(\.id) == [b.id])
        // Another neighbour still gets both.
        #expect(try store.schedule(for: NodeIdentity().nodeID, now: S.now, limit: 10).count == 2)
    }

    @Test(arguments: [11, 12, 13, 14])
    func quotaEvictsLowestClassOldestFirstAndNeverAHigherClass(seed: Int) throws {
        var g = SplitMix64(seed: UInt64(seed))
        let quota = 20_000
        let store = try S.store(quota: quota)
        let kinds: [Kind] = [.alert, .aidRequest, .grievance, .minutes]
        var held: [BundleID: (p: PriorityClass, at: Int64, size: Int)] = [:]
        var evictions = 0
        for i in 0..<400 {
            let kind = kinds[Int(g.next() % 4)]
            let b = try S.bundle(kind, origin: Int(g.next() % 3), seq: UInt32(i), size: 100 + Int(g.next() % 400))
            let size = b.encode().count
            let t = S.now + Int64(i)
            // Held to pass on (floods): bundles in custody are evicted only by a more urgent class, as the last
            // resort (`custodyIsEvictedLastAndOnlyForAMoreUrgentClass`).
            switch try store.insert(b, now: t, local: false, custody: false) {
            case .stored(_, let evicted):
                for e in evicted {
                    let victim = held[e]!
                    held[e] = nil
                    evictions += 1
                    // Never a higher class than the newcomer's.
                    #expect(victim.p >= b.priority)
                    // Nothing of a lower class than the victim remains, and nothing older of its own class.
                    #expect(!held.values.contains { $0.p > victim.p }, "evicted class \(victim.p) while a lower class remained")
                    #expect(!held.values.contains { $0.p == victim.p && $0.at < victim.at })
                }
                held[b.id] = (b.priority, t, size)
            case .refused:
                // Refused only when free space plus everything it may evict cannot make room.
                let used = held.values.map(\.size).reduce(0, +)
                let evictable = held.values.filter { $0.p >= b.priority }.map(\.size).reduce(0, +)
                #expect(quota - used + evictable < size)
            default: Issue.record("unexpected")
            }
            let snap = try store.snapshot()
            #expect(snap.total.bytes <= quota)
            #expect(snap.total.count == held.count)
        }
        #expect(evictions > 50)
        // Every eviction is in the change feed.
        #expect(try store.events(after: 0, limit: 100_000).filter { $0.type == .evicted }.count == evictions)
    }

    @Test func aFullQueueRefusesALocalSubmissionAndDropsNothing() throws {
        let store = try S.store(quota: 2_000)
        var stored: [BundleID] = []
        for i in 0..<30 {
            if case .stored = try store.insert(try S.bundle(.alert, seq: UInt32(i), size: 100), now: S.now, local: false, custody: true) {
                stored.append(try S.bundle(.alert, seq: UInt32(i), size: 100).id)
            }
        }
        let before = try store.snapshot()
        // A bulk bundle may evict nothing of higher class: refused with a clear error.
        #expect(throws: StoreError.self) {
            try store.insert(try S.bundle(.minutes, seq: 500, size: 300), now: S.now, local: true, custody: true)
        }
        let err = #expect(throws: StoreError.self) {
            try store.insert(try S.bundle(.minutes, seq: 501, size: 300), now: S.now, local: true, custody: true)
        }
        #expect(err?.description.contains("queue full") == true)
        #expect(try store.snapshot() == before)
        // A relayed one is refused and logged in the feed.
        #expect(try store.insert(try S.bundle(.minutes, seq: 502, size: 300), now: S.now, local: false, custody: true) == .refused)
        #expect(try store.events(after: 0).last?.type == .refused)
    }
}
