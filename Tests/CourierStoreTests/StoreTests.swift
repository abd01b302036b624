import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Testing

@Suite struct StoreTests {
    @Test func storesDedupesAndExpires() throws {
        let store = try S.store()
        let b = try S.bundle(.alert, seq: 1)
        guard case .stored = try store.insert(b, now: S.now, local: false, custody: true, from: "aabbccdd") else {
            Issue.record("not stored"); return
        }
        #expect(try store.insert(b, now: S.now, local: false, custody: true) == .duplicate)
        #expect(try store.hasSeen(b.id))
        let old = try S.bundle(.text, seq: 2, lifetime: 5, createdAgo: 10)
        #expect(try store.insert(old, now: S.now, local: false, custody: false) == .expired)
        let short = try S.bundle(.text, seq: 3, lifetime: 5, createdAgo: 1)
        try store.insert(short, now: S.now, local: false, custody: false)
        #expect(try store.count() == 2)
        let expired = try store.expire(now: S.now + 10 * 60)
        #expect(expired == [short.id])
        #expect(try store.count() == 1)
        #expect(try store.snapshot().expiredTotal == 1)
        // The id is forgotten once the bundle would have expired anyway, so dedupe stays bounded.
        _ = try store.expire(now: S.now + 3 * 24 * 3600)
        #expect(!(try store.hasSeen(short.id)))
    }

    @Test func changeFeedIsOrderedAndResumable() throws {
        let store = try S.store()
        let n = NodeIdentity().nodeID
        let b = try S.bundle(.grievance, seq: 1, to: .node(n.short))
        try store.insert(b, now: S.now, local: true, custody: true)
        try store.recordSent(b.id, to: n, transfer: 3, fragments: 2, indices: [0, 1], nextRetry: S.now + 30, now: S.now)
        #expect(try store.recordAck(b.id, from: n, ack: AckEntry(transfer: 3, received: 1), now: S.now + 1) == false)
        #expect(try store.recordAck(b.id, from: n, ack: AckEntry(transfer: 3, received: 2), now: S.now + 2) == true)
        try store.releaseCustody(b.id, to: n, now: S.now + 2)
        let all = try store.events(after: 0)
        #expect(all.map(\.type) == [.enqueued, .custodyTaken, .fragmentSent, .acknowledged, .acknowledged, .custodyReleased])
        #expect(all.map(\.seq) == all.map(\.seq).sorted())
        #expect(Set(all.map(\.seq)).count == all.count)
        let tail = try store.events(after: all[2].seq)
        #expect(tail.map(\.type) == [.acknowledged, .acknowledged, .custodyReleased])
        #expect(try store.count() == 0)
    }

    /// A directed bundle handed back after custody moved on (SPEC 8.5, directed rule 2): stored again with `again`,
    /// a duplicate while still held; and one given up with its hop limit spent is in the feed and counted.
    @Test func aBundleHandedBackIsStoredAgainOnlyWhenNoLongerHeld() throws {
        let store = try S.store()
        let n = NodeIdentity().nodeID
        let b = try S.bundle(.text, seq: 4, to: .node(n.short))
        func stored(_ r: (results: [Acceptance], evicted: [ExpiredBundle])) -> Bool { if case .stored = r.results[0] { true } else { false } }
        #expect(stored(try store.insertReporting([b], now: S.now, local: false, custody: true, again: true)))
        #expect(try store.insertReporting([b], now: S.now, local: false, custody: true, again: true).results == [.duplicate], "still held")
        try store.releaseCustody(b.id, to: n, now: S.now + 1)
        #expect(try store.bundle(b.id) == nil)
        #expect(try store.insertReporting([b], now: S.now + 2, local: false, custody: true).results == [.duplicate], "seen: a duplicate")
        #expect(stored(try store.insertReporting([b], now: S.now + 2, local: false, custody: true, again: true)), "taken again")
        #expect(try store.bundle(b.id)?.custody == true)
        #expect(try store.hasSeen(b.id))
        let c = try S.bundle(.text, seq: 5, to: .node(n.short))
        try store.gaveUpHopLimit(c, reason: "out of hops", from: "aabbccdd", now: S.now + 3)
        #expect(try store.events(after: 0).contains { $0.type == .gaveUp && $0.bundle == c.id.description && $0.detail == "out of hops" })
        #expect(try store.snapshot().hopLimitTotal == 1)
        #expect(try store.hasSeen(c.id))
    }

    @Test func inboxDeliveryIsIdempotent() throws {
        let store = try S.store()
        let b = try S.bundle(.aidRequest, seq: 9)
        #expect(try store.deliver(b, content: Array("need 20 L water".utf8), now: S.now))
        #expect(!(try store.deliver(b, content: Array("need 20 L water".utf8), now: S.now)))
        let inbox = try store.inbox()
        #expect(inbox.count == 1 && inbox[0].text == "need 20 L water" && !inbox[0].read)
        try store.markRead(b.id)
        #expect(try store.inbox(unreadOnly: true).isEmpty)
    }

    @Test func reassemblySurvivesReopening() throws {
        let path = S.tempDir() + "/r.db"
        let sender = NodeIdentity().nodeID
        var g = SplitMix64(seed: 4)
        let whole = (0..<40_000).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let frags = try Fragmenter.records(bundle: whole, mtu: 255, transfer: 12).compactMap {
            if case .fragment(let f) = $0 { return f } else { return nil }
        }
        do {
            let store = try S.store(path: path)
            for f in frags.prefix(frags.count / 2) { try store.saveFragment(f, from: sender, now: S.now) }
        }
        // A restart: replay what was kept, then receive the rest.
        let store = try S.store(path: path)
        var re = Reassembler()
        for (s, f, t) in try store.savedFragments() { _ = re.add(f, from: s, now: t) }
        #expect(re.partials.first?.value.pieces.count == frags.count / 2)
        var result: [UInt8]? = nil
        for f in frags.dropFirst(frags.count / 2) {
            if case .complete(let bytes, _) = re.add(f, from: sender, now: S.now + 5) { result = bytes }
        }
        #expect(result == whole)
        try store.dropTransfer(from: sender, transfer: 12)
        #expect(try store.savedFragments().isEmpty)
    }

    @Test func countersAreNeverHandedOutTwice() throws {
        let path = S.tempDir() + "/c.db"
        var seqs: [UInt32] = []
        var ranges: [Range<UInt32>] = []
        for _ in 0..<3 {
            let store = try S.store(path: path)
            seqs.append(try store.nextSequence())
            ranges.append(try store.reservePacketCounters(100))
        }
        #expect(seqs == [0, 1, 2])
        #expect(ranges == [0..<100, 100..<200, 200..<300])
    }

    @Test func quietModePersists() throws {
        let path = S.tempDir() + "/q.db"
        try S.store(path: path).setQuiet(true)
        #expect(try S.store(path: path).isQuiet())
    }

    @Test func snapshotByClassAndDestination() throws {
        let store = try S.store()
        try store.insert(try S.bundle(.alert, seq: 1), now: S.now, local: true, custody: true)
        try store.insert(try S.bundle(.minutes, seq: 2, to: .group(GroupID(name: "water"))), now: S.now + 5, local: true, custody: true)
        try store.insert(try S.bundle(.minutes, seq: 3, to: .group(GroupID(name: "water"))), now: S.now + 9, local: true, custody: true)
        let s = try store.snapshot()
        #expect(s.total.count == 3)
        #expect(s.byClass[.urgent]?.count == 1 && s.byClass[.bulk]?.count == 2)
        #expect(s.byDestination["group:\(GroupID(name: "water"))"]?.count == 2)
        #expect(s.oldest?.received == S.now)
    }
}
