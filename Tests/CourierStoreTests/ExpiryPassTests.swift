import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Testing

/// The minute expiry pass (`Store.expireBundles`) first asks in one read whether anything is due, and writes only then.
/// Each of its removals must still happen when it is the only one due.
@Suite struct ExpiryPassTests {
    /// Nothing due: nothing removed, nothing counted, no feed entry.
    @Test func aPassWithNothingDueChangesNothing() throws {
        let store = try S.store()
        let b = try S.bundle(.text, seq: 1)
        try store.insert(b, now: S.now, local: false, custody: false)
        let feed = try store.events(after: 0).count
        #expect(try store.expireBundles(now: S.now + 60).isEmpty)
        #expect(try store.count() == 1)
        #expect(try store.hasSeen(b.id))
        #expect(try store.events(after: 0).count == feed)
        #expect(try store.snapshot().expiredTotal == 0)
    }

    /// A bundle past its lifetime, alone due: removed and reported.
    @Test func anExpiredBundleAloneIsRemoved() throws {
        let store = try S.store()
        let short = try S.bundle(.text, seq: 1, lifetime: 5, createdAgo: 1)
        try store.insert(short, now: S.now, local: false, custody: false)
        #expect(try store.expireBundles(now: S.now + 10 * 60).map(\.id) == [short.id])
        #expect(try store.count() == 0)
    }

    /// Only the seen list is due (an id remembered after its bundle left, now past its lifetime): it is forgotten.
    @Test func aSeenIdPastItsLifetimeAloneIsForgotten() throws {
        let store = try S.store()
        let b = try S.bundle(.text, seq: 1, lifetime: 5, createdAgo: 1)
        try store.markSeen(b)
        #expect(try store.hasSeen(b.id))
        #expect(try store.expireBundles(now: S.now + 10 * 60).isEmpty)
        #expect(!(try store.hasSeen(b.id)))
    }

    /// A seen list over its limit, nothing expired: trimmed to the limit, the soonest to expire first.
    @Test func aSeenListOverItsLimitAloneIsTrimmed() throws {
        var c = Store.Configuration()
        c.seenLimit = 2
        let store = try Store(path: S.tempDir() + "/courier.db", configuration: c)
        let bundles = try (1...4).map { i in try S.bundle(.text, seq: UInt32(i), lifetime: UInt32(60 * i)) }
        for b in bundles { try store.markSeen(b) }
        #expect(try store.expireBundles(now: S.now + 60).isEmpty)
        #expect(try bundles.map { try store.hasSeen($0.id) } == [false, false, true, true])
    }

    /// The pass counts `seen` only when it may have passed its limit (`seenMayPassLimit`): ids marked after a count
    /// that found it under the limit are still trimmed once they pass it, and so are ids another connection marked
    /// (a `relay send` beside the relay), which this store's own tally never saw.
    @Test func aSeenListThatPassesItsLimitAfterACountIsTrimmed() throws {
        var c = Store.Configuration()
        c.seenLimit = 3
        let path = S.tempDir() + "/courier.db"
        let store = try Store(path: path, configuration: c)
        let bundles = try (1...6).map { i in try S.bundle(.text, seq: UInt32(i), lifetime: UInt32(60 * i)) }
        for b in bundles[0..<2] { try store.markSeen(b) }
        #expect(try store.expireBundles(now: S.now + 60).isEmpty)
        #expect(try bundles[0..<2].allSatisfy { try store.hasSeen($0.id) })
        for b in bundles[2..<4] { try store.markSeen(b) }
        _ = try store.expireBundles(now: S.now + 120)
        #expect(try bundles[0..<4].map { try store.hasSeen($0.id) } == [false, true, true, true])
        // Another connection marks two more: the count is taken again.
        let other = try Store(path: path, configuration: c)
        for b in bundles[4..<6] { try other.markSeen(b) }
        _ = try store.expireBundles(now: S.now + 180)
        #expect(try bundles.map { try store.hasSeen($0.id) } == [false, false, false, true, true, true])
    }

    /// The origins whose keys the housekeeping pass asks again: one per bundle kept unread at or before the moment
    /// given, the longest kept first.
    @Test func theOriginsOfBundlesKeptUnreadLongEnoughAreListedOldestFirst() throws {
        let store = try S.store()
        let early = try S.bundle(.text, origin: 3, seq: 1)
        let later = try S.bundle(.text, origin: 1, seq: 2)
        let recent = try S.bundle(.text, origin: 2, seq: 3)
        try store.keepUnread(later, reason: "no keys", from: nil, now: S.now + 20)
        try store.keepUnread(early, reason: "no keys", from: nil, now: S.now + 10)
        try store.keepUnread(recent, reason: "no keys", from: nil, now: S.now + 100)
        #expect(try store.waitingOrigins(keptBy: S.now + 20) == [early.id.origin, later.id.origin])
        #expect(try store.waitingOrigins(keptBy: S.now + 19) == [early.id.origin])
        #expect(try store.waitingOrigins(keptBy: S.now + 100).count == 3)
    }

    /// Only a half-received transfer older than the reassembly timeout: its pieces are dropped; a younger one stays.
    @Test func anOldHalfReceivedTransferAloneIsDropped() throws {
        var c = Store.Configuration()
        c.reassemblyTimeout = 600
        let store = try Store(path: S.tempDir() + "/courier.db", configuration: c)
        let sender = NodeIdentity().nodeID
        var g = SplitMix64(seed: 4)
        let whole = (0..<2_000).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        func pieces(_ transfer: UInt32) throws -> [FragmentRecord] {
            try Fragmenter.records(bundle: whole, mtu: 255, transfer: transfer).compactMap {
                if case .fragment(let f) = $0 { return f } else { return nil }
            }
        }
        try store.saveFragment(try pieces(1)[0], from: sender, now: S.now)
        try store.saveFragment(try pieces(2)[0], from: sender, now: S.now + 500)
        #expect(try store.expireBundles(now: S.now + 700).isEmpty)
        #expect(try store.savedFragments().map(\.fragment.transfer) == [2])
    }
}
