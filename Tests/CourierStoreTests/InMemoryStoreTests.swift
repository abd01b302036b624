import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Testing

/// An in-memory store (the drill simulator's relays) starts as a copy of a database migrated once per process, and
/// keeps the answers of the minute passes between writes (`Store.expiryDueInMemory`, `waitingOrigins`): what it
/// removes and lists must be what an on-disk store removes and lists, whenever the rows or the time change.
@Suite struct InMemoryStoreTests {
    static func store() throws -> Store {
        var c = Store.Configuration()
        c.inMemory = true
        return try Store(path: "relay", configuration: c)
    }

    /// Two in-memory stores opened from the same migrated copy share nothing, and each is whole (every table there).
    @Test func inMemoryStoresAreApartAndWhole() throws {
        let a = try Self.store(), b = try Self.store()
        let bundle = try S.bundle(.text, seq: 1)
        try a.insert(bundle, now: S.now, local: false, custody: false)
        #expect(try a.count() == 1)
        #expect(try b.count() == 0)
        #expect(!(try b.hasSeen(bundle.id)))
        try b.keepUnread(try S.bundle(.text, origin: 2, seq: 2), reason: "no keys", from: nil, now: S.now)
        #expect(try b.waitingOrigins(keptBy: S.now).count == 1)
        #expect(try a.waitingOrigins(keptBy: S.now).isEmpty)
    }

    /// A pass that found nothing due keeps its answer: time alone then brings a bundle's expiry, and a bundle stored,
    /// an id seen or a piece received after it is expired in its turn, as the on-disk store does.
    @Test func theKeptAnswerFollowsTimeAndEveryWrite() throws {
        var c = Store.Configuration()
        c.inMemory = true
        c.reassemblyTimeout = 600
        let store = try Store(path: "relay", configuration: c)
        let long = try S.bundle(.text, seq: 1, lifetime: 60)
        try store.insert(long, now: S.now, local: false, custody: false)
        #expect(try store.expireBundles(now: S.now + 60).isEmpty)
        // Stored after the kept answer, expiring before the long one.
        let short = try S.bundle(.text, seq: 2, lifetime: 5, createdAgo: 1)
        try store.insert(short, now: S.now + 60, local: false, custody: false)
        #expect(try store.expireBundles(now: S.now + 120).isEmpty)
        // Nothing written since: time alone makes it due.
        #expect(try store.expireBundles(now: S.now + 10 * 60).map(\.id) == [short.id])
        #expect(try store.count() == 1)
        // An id seen after the last pass, already near its end: forgotten at its expiry.
        let seen = try S.bundle(.text, seq: 3, lifetime: 12, createdAgo: 1)
        try store.markSeen(seen)
        #expect(try store.expireBundles(now: S.now + 10 * 60 + 30).isEmpty)
        #expect(try store.hasSeen(seen.id))
        #expect(try store.expireBundles(now: S.now + 12 * 60).isEmpty)
        #expect(!(try store.hasSeen(seen.id)))
        // A piece of a transfer received after the last pass: dropped once older than the timeout.
        let sender = NodeIdentity().nodeID
        var g = SplitMix64(seed: 9)
        let whole = (0..<2_000).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let pieces = try Fragmenter.records(bundle: whole, mtu: 255, transfer: 7).compactMap {
            if case .fragment(let f) = $0 { return f } else { return nil }
        }
        try store.saveFragment(pieces[0], from: sender, now: S.now + 13 * 60)
        #expect(try store.expireBundles(now: S.now + 13 * 60 + 60).isEmpty)
        #expect(try store.savedFragments().count == 1)
        #expect(try store.expireBundles(now: S.now + 13 * 60 + 601).isEmpty)
        #expect(try store.savedFragments().isEmpty)
        #expect(try store.count() == 1)
        // Replay windows written meanwhile (they keep the answer) change nothing of this.
        try store.saveReplayWindow(ReplayWindow(), for: sender)
        #expect(try store.expireBundles(now: S.now + 30 * 60).isEmpty)
        #expect(try store.expireBundles(now: S.now + 62 * 60).map(\.id) == [long.id])
    }

    /// `waiting` read empty is known empty until something may add to it: a bundle kept unread, or a group undone
    /// that had released one (the row comes back with the undo).
    @Test func waitingKnownEmptyFollowsKeepingAndUndo() throws {
        let store = try Self.store()
        #expect(try store.waitingOrigins(keptBy: S.now).isEmpty)
        let b = try S.bundle(.text, origin: 3, seq: 1)
        try store.keepUnread(b, reason: "no keys", from: nil, now: S.now)
        #expect(try store.waitingOrigins(keptBy: S.now) == [b.id.origin])
        struct Undo: Error {}
        #expect(throws: StoreError.self) {
            try store.grouped {
                try store.releaseUnread(b.id)
                #expect(try store.waitingOrigins(keptBy: S.now).isEmpty)
                throw Undo()
            }
        }
        #expect(try store.waitingOrigins(keptBy: S.now) == [b.id.origin])
        try store.releaseUnread(b.id)
        #expect(try store.waitingOrigins(keptBy: S.now).isEmpty)
        #expect(try store.waitingOrigins(keptBy: S.now + 60).isEmpty)
    }
}
