import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Synchronization
import Testing

/// The engine's storage boundary (NodeStorage): what must be durable goes through it, its failures are outputs, and
/// the writes of one packet are one transaction.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct StorageBoundaryTests {
    static func noise(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    // Grouped writes

    @Test func oneReceivedPacketIsOneTransaction() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let commits = h.store.countCommits()
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "The well on the east side is dry.", at: h.now)
        // A packet with a bundle for this node (delivered, seen, receipt queued) and a fragment of another transfer.
        let other = FragmentRecord(nextHop: h.me.nodeID.short, transfer: 9, index: 0, count: 3, data: Self.noise(60, seed: 2))
        let out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 7, bundle: b.encode())), .fragment(other)])
        #expect(out.delivered.map(\.id) == [b.id])
        #expect(commits.commits == 1, "\(commits.commits) transactions for one received packet")
        #expect(try h.store.inbox(limit: 10).map(\.id) == [b.id])
    }

    @Test func anAckThatCompletesATransferIsOneTransaction() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (_, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Self.noise(400, seed: 3), now: h.now)
        let sent = h.read(out).fragments.filter { $0.nextHop == p.short }
        try #require(!sent.isEmpty)
        let commits = h.store.countCommits()
        let ack = AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: sent[0].transfer, received: sent[0].count)])
        let got = h.receive(from: p, [.ack(ack)])
        #expect(got.events.contains { if case .custodyReleased = $0 { true } else { false } }, "custody not released")
        // The replay window, the ack recorded and custody released: one commit.
        #expect(commits.commits == 1, "\(commits.commits) transactions for one received ack")
    }

    // A commit that fails

    @Test func aPacketWhoseCommitFailsIsNeitherDeliveredNorAcknowledged() throws {
        let h = try FlakyHarness()
        let p = h.addPeer()
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "Bring the blue tarp to the school.", at: h.now)
        let record = Record.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 11, bundle: b.encode()))
        h.storage.failCommits.withLock { $0 = true }
        var failed = h.receive(from: p, [record])
        failed.merge(h.run(for: 3))
        #expect(failed.delivered.isEmpty, "delivered though nothing was kept")
        #expect(!failed.acks.contains { $0.entries.contains { $0.transfer == 11 } }, "acknowledged though nothing was kept")
        #expect(failed.events.contains { if case .storageFailed(let op, _, _) = $0 { op == "keep what a received packet brought" } else { false } })
        #expect(failed.events.contains { if case .rejected(let why) = $0 { why.hasPrefix("cannot deliver \(b.id), not acknowledged") } else { false } },
                "the bundle not kept is not said")
        #expect(try h.store.inbox(limit: 10).isEmpty)
        #expect(try !h.store.hasSeen(b.id))
        // Storage works again: the sender's retransmission is delivered once and acknowledged.
        h.storage.failCommits.withLock { $0 = false }
        var again = h.receive(from: p, [record])
        again.merge(h.run(for: 3))
        #expect(again.delivered.map(\.id) == [b.id])
        #expect(again.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 11 } }, "not acknowledged once kept")
        #expect(try h.store.inbox(limit: 10).map(\.id) == [b.id])
    }

    @Test func aFailedCounterReservationSendsNothingAndReports() throws {
        let h = try FlakyHarness(failReservations: true)
        let p = h.addPeer()
        let (id, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Road closed at the bridge.".utf8), now: h.now)
        var first = h.read(out)
        first.merge(h.run(for: 5))
        #expect(first.packets.isEmpty, "sent \(first.packets.count) packets without a durable counter")
        #expect(first.events.contains { if case .storageFailed(let op, _, _) = $0 { op == "reserve packet counters" } else { false } })
        h.storage.failReservations.withLock { $0 = false }
        let later = h.run(for: 60)
        #expect(later.bundles.contains { (try? CourierBundle(decoding: $0.bundle))?.id == id }, "not sent once counters could be reserved")
    }

    @Test func aPacketWhoseCommitFailsIsNotSent() throws {
        let h = try FlakyHarness()
        let p = h.addPeer()
        _ = h.run(for: 5)
        h.storage.failCommits.withLock { $0 = true }
        let (id, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Clinic open until 20:00.".utf8), now: h.now)
        var first = h.read(out)
        first.merge(h.run(for: 2))
        #expect(first.packets.isEmpty, "a packet went out whose transmission record was not kept")
        #expect(first.events.contains { if case .storageFailed(let op, _, _) = $0 { op == "record a packet before sending it" } else { false } })
        h.storage.failCommits.withLock { $0 = false }
        let later = h.run(for: 120)
        #expect(later.bundles.contains { (try? CourierBundle(decoding: $0.bundle))?.id == id }, "not sent once storage worked again")
    }

    // Diagnostics

    @Test func theUndeliveredAccountSaysWhyAHopLimitIsUnread() throws {
        // `relay drill simulate --undelivered` shows each holder's hop limit; a store that cannot give the bundle
        // back is named in the line instead of a bare "?".
        let h = try FlakyHarness()
        let far = EngineHarness.Peer(key: h.key)
        let (id, _) = try h.node.submit(kind: .text, destination: .node(far.short), content: Array("Pump parts at the depot.".utf8), now: h.now)
        let read = try #require(h.node.directedHolding(id, now: h.now))
        #expect(read.hopLimit != nil && read.hopLimitUnread == nil, "a readable bundle: \(String(describing: read.hopLimit)), \(read.hopLimitUnread ?? "")")
        h.storage.failBundleReads.withLock { $0 = true }
        let unread = try #require(h.node.directedHolding(id, now: h.now))
        #expect(unread.hopLimit == nil)
        #expect(unread.hopLimitUnread?.contains("malformed") == true, "why: \(unread.hopLimitUnread ?? "nothing said")")
    }

    // Housekeeping

    @Test func housekeepingWithNoNeighbourReadsNoBundle() throws {
        // Held when the relay starts (the engine indexes what the store holds then, and keeps it in step with its
        // own writes; a bundle another process stores is adopted: `Node.adopt`).
        let key = NetworkKey.random()
        let stranger = EngineHarness.Peer(key: key)
        let origin = EngineHarness.Peer(key: key)
        let h = try FlakyHarness(key: key) { store in
            for i in 0..<200 {
                let b = try origin.bundle(.text, to: .node(stranger.short), "Message \(i) for a node not heard yet.", at: 1_790_000_000)
                try store.insert(b, now: 1_790_000_000, local: false, custody: true, from: "test")
            }
        }
        h.storage.bundleReads.withLock { $0 = 0 }
        // Two housekeepings: with no neighbour, routing can do nothing for any of the 200.
        _ = h.run(for: 2 * 60 + 5)
        #expect(h.storage.bundleReads.withLock { $0 } == 0, "read \(h.storage.bundleReads.withLock { $0 }) bundles with nobody to give them to")
        // A neighbour appears: each gets a copy (no route to the destination yet).
        let p = h.addPeer()
        let out = h.run(for: 2 * 60 + 5)
        let copies = Set(out.bundles.filter { $0.nextHop == p.short }.compactMap { try? CourierBundle(decoding: $0.bundle).id })
        #expect(copies.count == 200, "\(copies.count) of 200 handed to the new neighbour")
    }

    @Test func aWriteFromAnotherThreadDuringAGroupIsItsOwnTransaction() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("courier-group-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(path: dir + "/courier.db")
        let commits = store.countCommits()
        let calling = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<String?>(nil)
        try store.grouped {
            try store.saveReplayWindow(ReplayWindow(), for: NodeIdentity().nodeID)
            Thread.detachNewThread {
                calling.signal()
                do { try store.setQuiet(true) } catch { result.withLock { $0 = "\(error)" } }
                done.signal()
            }
            calling.wait()
            // The other thread's write is waiting for the database; the group goes on meanwhile.
            Thread.sleep(forTimeInterval: 0.2)
        }
        done.wait()
        #expect(result.withLock { $0 } == nil)
        #expect(commits.commits == 2, "\(commits.commits) commits: the other thread's write was not its own transaction")
        // Another connection sees it: it was committed, not left in an open transaction.
        let reader = try Store(path: dir + "/courier.db")
        #expect(try reader.isQuiet())
    }

    @Test func aCounterReservedInARolledBackGroupIsNotHandedOutAgain() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        struct Abandon: Error {}
        var first: Range<UInt32> = 0..<0
        var transfers: Range<Int64> = 0..<0
        #expect(throws: StoreError.self) {
            try store.grouped {
                first = try store.reservePacketCounters(16)
                transfers = try store.reserveTransferNumbers(8)
                throw Abandon()
            }
        }
        let next = try store.reservePacketCounters(16)
        #expect(next.lowerBound >= first.upperBound, "counters \(next) handed out again after \(first)")
        let nextTransfers = try store.reserveTransferNumbers(8)
        #expect(nextTransfers.lowerBound >= transfers.upperBound)
    }
}

/// Thrown inside a group to roll it back, as a failed commit leaves it.
struct CommitFails: Error {}

/// A storage that forwards to a real in-memory store and fails on demand: each group's commit (its writes are
/// really rolled back), or counter reservations.
final class FlakyStorage: NodeStorage {
    let inner: Store
    let failCommits = Mutex(false)
    let failReservations = Mutex(false)
    /// Whole bundles read (`bundle(_:)`).
    let bundleReads = Mutex(0)
    /// Reading a whole bundle fails (as a damaged page or a vanished file makes it).
    let failBundleReads = Mutex(false)
    /// Runs once, at the next `held(limit:)`, before it reads: another process's write landing just then. Set before
    /// the engine is made, from the test's one thread.
    nonisolated(unsafe) var beforeHeld: (() -> Void)?
    init(_ inner: Store) { self.inner = inner }

    var path: String { self.inner.path }
    var full: StoreError { .diskFull(path: self.inner.path) }

    func grouped<T>(_ body: () throws -> T) throws(StoreError) -> T {
        guard self.failCommits.withLock({ $0 }) else { return try self.inner.grouped(body) }
        do { _ = try self.inner.grouped { _ = try body(); throw CommitFails() } } catch {}
        throw self.full
    }
    func nextSequence() throws(StoreError) -> UInt32 { try self.inner.nextSequence() }
    func drillAnswered(_ d: BundleID, by n: ShortID, hops: UInt8?, now: Int64) throws(StoreError) -> Bool { try self.inner.drillAnswered(d, by: n, hops: hops, now: now) }
    func drillAnswerRefused(_ d: BundleID, claiming n: ShortID, reason: String, now: Int64) throws(StoreError) { try self.inner.drillAnswerRefused(d, claiming: n, reason: reason, now: now) }
    func reservePacketCounters(_ count: UInt32) throws(StoreError) -> Range<UInt32> {
        if self.failReservations.withLock({ $0 }) { throw self.full }
        return try self.inner.reservePacketCounters(count)
    }
    func reserveTransferNumbers(_ count: Int64) throws(StoreError) -> Range<Int64> { try self.inner.reserveTransferNumbers(count) }
    func replayWindows() throws(StoreError) -> [NodeID: ReplayWindow] { try self.inner.replayWindows() }
    func saveReplayWindow(_ w: ReplayWindow, for sender: NodeID) throws(StoreError) { try self.inner.saveReplayWindow(w, for: sender) }
    func insert(_ bundle: CourierBundle, now: Int64, local: Bool, custody: Bool, from: String?) throws(StoreError) -> Acceptance {
        try self.inner.insert(bundle, now: now, local: local, custody: custody, from: from)
    }
    func insertReporting(_ bundles: [CourierBundle], now: Int64, local: Bool, custody: Bool, from: String?,
                         classes: [PriorityClass]?, again: Bool) throws(StoreError) -> (results: [Acceptance], evicted: [ExpiredBundle]) {
        try self.inner.insertReporting(bundles, now: now, local: local, custody: custody, from: from, classes: classes, again: again)
    }
    func bundle(_ id: BundleID) throws(StoreError) -> QueuedBundle? {
        self.bundleReads.withLock { $0 += 1 }
        if self.failBundleReads.withLock({ $0 }) { throw .sqlite(path: self.inner.path, code: 11, detail: "database disk image is malformed") }
        return try self.inner.bundle(id)
    }
    func bundles(digests: [UInt32]) throws(StoreError) -> [QueuedBundle] { try self.inner.bundles(digests: digests) }
    func held(limit: Int) throws(StoreError) -> [HeldBundle] {
        if let f = self.beforeHeld {
            self.beforeHeld = nil
            f()
        }
        return try self.inner.held(limit: limit)
    }
    func copyBudgets() throws(StoreError) -> [BundleID: Int] { try self.inner.copyBudgets() }
    func setCopyBudget(_ id: BundleID, copies: Int) throws(StoreError) { try self.inner.setCopyBudget(id, copies: copies) }
    func raiseHopLimit(_ id: BundleID, first: UInt8) throws(StoreError) -> Bool { try self.inner.raiseHopLimit(id, first: first) }
    func held(kind: Kind, origin: ShortID) throws(StoreError) -> [(id: BundleID, destination: Destination, expires: Int64)] {
        try self.inner.held(kind: kind, origin: origin)
    }
    func remove(_ id: BundleID, reason: String, now: Int64) throws(StoreError) { try self.inner.remove(id, reason: reason, now: now) }
    func expireBundles(now: Int64) throws(StoreError) -> [ExpiredBundle] { try self.inner.expireBundles(now: now) }
    func hasSeen(_ id: BundleID) throws(StoreError) -> Bool { try self.inner.hasSeen(id) }
    func seenDigests(limit: Int) throws(StoreError) -> [UInt32] { try self.inner.seenDigests(limit: limit) }
    func markSeen(_ bundle: CourierBundle) throws(StoreError) { try self.inner.markSeen(bundle) }
    func lastEventSeq() throws(StoreError) -> Int64 { try self.inner.lastEventSeq() }
    func gaveUp(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) {
        try self.inner.gaveUp(bundle, reason: reason, from: from, now: now)
    }
    func gaveUpHopLimit(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) {
        try self.inner.gaveUpHopLimit(bundle, reason: reason, from: from, now: now)
    }
    func refused(_ bundle: CourierBundle, reason: String, from: String?, now: Int64, unsigned: Bool) throws(StoreError) {
        try self.inner.refused(bundle, reason: reason, from: from, now: now, unsigned: unsigned)
    }
    func failed(_ id: BundleID, reason: String, by: ShortID, now: Int64) throws(StoreError) { try self.inner.failed(id, reason: reason, by: by, now: now) }
    func stalled(_ id: BundleID, to: ShortID, detail: String, now: Int64) throws(StoreError) { try self.inner.stalled(id, to: to, detail: detail, now: now) }
    func recordSent(_ id: BundleID, to neighbour: NodeID, transfer: UInt32, fragments: Int, indices: [Int],
                    nextRetry: Int64, now: Int64) throws(StoreError) {
        try self.inner.recordSent(id, to: neighbour, transfer: transfer, fragments: fragments, indices: indices, nextRetry: nextRetry, now: now)
    }
    func recordBroadcast(_ id: BundleID, link: String, inRange: [String], now: Int64) throws(StoreError) {
        try self.inner.recordBroadcast(id, link: link, inRange: inRange, now: now)
    }
    func recordAck(_ id: BundleID, from neighbour: NodeID, ack: AckEntry, now: Int64) throws(StoreError) -> Bool {
        try self.inner.recordAck(id, from: neighbour, ack: ack, now: now)
    }
    func releaseCustody(_ id: BundleID, to neighbour: NodeID, now: Int64) throws(StoreError) { try self.inner.releaseCustody(id, to: neighbour, now: now) }
    func saveFragment(_ f: FragmentRecord, from sender: NodeID, now: Int64) throws(StoreError) { try self.inner.saveFragment(f, from: sender, now: now) }
    func dropTransfer(from sender: NodeID, transfer: UInt32) throws(StoreError) { try self.inner.dropTransfer(from: sender, transfer: transfer) }
    func savedFragments() throws(StoreError) -> [(sender: NodeID, fragment: FragmentRecord, received: Int64)] { try self.inner.savedFragments() }
    func deliver(_ bundle: CourierBundle, content: [UInt8], now: Int64, proven: Bool) throws(StoreError) -> Bool {
        try self.inner.deliver(bundle, content: content, now: now, proven: proven)
    }
    func inboxMessage(_ id: BundleID) throws(StoreError) -> InboxMessage? { try self.inner.inboxMessage(id) }
    func keepUnread(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) -> Bool {
        try self.inner.keepUnread(bundle, reason: reason, from: from, now: now)
    }
    func waiting(origin: ShortID?) throws(StoreError) -> [WaitingBundle] { try self.inner.waiting(origin: origin) }
    func expiredOnArrival(_ bundle: CourierBundle, detail: String, from: String?, now: Int64) throws(StoreError) -> Bool { try self.inner.expiredOnArrival(bundle, detail: detail, from: from, now: now) }
    func waitingOrigins(keptBy: Int64) throws(StoreError) -> [ShortID] { try self.inner.waitingOrigins(keptBy: keptBy) }
    func releaseUnread(_ id: BundleID) throws(StoreError) { try self.inner.releaseUnread(id) }
    func dropUnread(_ id: BundleID, gaveUp: String?, now: Int64) throws(StoreError) { try self.inner.dropUnread(id, gaveUp: gaveUp, now: now) }
    func peers() throws(StoreError) -> [PeerRecord] { try self.inner.peers() }
    func rememberKeys(_ keys: NodePublicKeys, name: String?) throws(StoreError) -> Bool { try self.inner.rememberKeys(keys, name: name) }
    func rememberPeer(_ keys: NodePublicKeys, name: String?, now: Int64) throws(StoreError) { try self.inner.rememberPeer(keys, name: name, now: now) }
    func isQuiet() throws(StoreError) -> Bool { try self.inner.isQuiet() }
    func setQuiet(_ on: Bool) throws(StoreError) { try self.inner.setQuiet(on) }
    func dictionaries() throws(StoreError) -> [StoredDictionary] { try self.inner.dictionaries() }
    func saveDictionary(_ d: StoredDictionary, now: Int64) throws(StoreError) -> [StoredDictionary] { try self.inner.saveDictionary(d, now: now) }
    func dictionaryEvent(_ detail: String, bundle: BundleID?, now: Int64) throws(StoreError) { try self.inner.dictionaryEvent(detail, bundle: bundle, now: now) }
    func setDictionaryHolder(_ node: ShortID, holds: [DictionariesRecord.Entry], now: Int64) throws(StoreError) {
        try self.inner.setDictionaryHolder(node, holds: holds, now: now)
    }
    func dictionaryHolders() throws(StoreError) -> [ShortID: Set<DictionariesRecord.Entry>] { try self.inner.dictionaryHolders() }
}

/// `EngineHarness`'s shape over a `FlakyStorage`: one engine on one link, neighbours played by hand.
final class FlakyHarness {
    let key: NetworkKey
    let me = NodeIdentity()
    let store: Store
    let storage: FlakyStorage
    let node: Node
    let link = "radio"
    var now = 1_790_000_000.0

    /// `failReservations`: counter reservations fail from the start (before the engine's first packet). `preload`
    /// writes to the store before the engine starts (what a relay holds when it starts).
    init(key: NetworkKey = .random(), failReservations: Bool = false, preload: (Store) throws -> Void = { _ in }) throws {
        self.key = key
        var sc = Store.Configuration()
        sc.inMemory = true
        self.store = try Store(path: ":memory:", configuration: sc)
        try preload(self.store)
        self.storage = FlakyStorage(self.store)
        self.storage.failReservations.withLock { $0 = failReservations }
        self.node = try Node(config: NodeConfig(identity: self.me, networkKey: self.key, name: "hill"), store: self.storage,
                             links: [LinkInfo(name: self.link, properties: LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full,
                                                                                          mediumChecksFrames: true, airtime: .none))],
                             now: self.now, seed: 5)
        _ = self.node.linkUp(self.link, now: self.now)
    }

    func read(_ outputs: [NodeOutput]) -> EngineHarness.Out {
        let opener = PacketOpener(networkKey: self.key)
        var o = EngineHarness.Out()
        for x in outputs {
            switch x {
            case .send(_, let bytes, _):
                // Every packet counts (one the neighbours could not open would still have gone on the air).
                o.packets.append((try? opener.open(bytes, candidates: { $0 == self.me.nodeID.short ? [self.me.nodeID] : [] }))?.records ?? [])
            case .delivered(let m): o.delivered.append(m)
            case .event(let e): o.events.append(e)
            }
        }
        return o
    }

    func addPeer() -> EngineHarness.Peer {
        let p = EngineHarness.Peer(key: self.key)
        let k = p.identity.publicKeys
        _ = self.receive(from: p, [.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement))], announce: true)
        return p
    }

    @discardableResult
    func receive(from p: EngineHarness.Peer, _ records: [Record], announce: Bool = false) -> EngineHarness.Out {
        self.now += 0.01
        return self.read(self.node.receive(p.seal(records, announce: announce), on: self.link, now: self.now))
    }

    func run(for seconds: Double) -> EngineHarness.Out {
        let end = self.now + seconds
        var all = EngineHarness.Out()
        while true {
            let next = max(self.now + 0.001, self.node.nextWakeup(now: self.now))
            guard next <= end else { break }
            self.now = next
            all.merge(self.read(self.node.tick(now: self.now)))
        }
        self.now = end
        return all
    }
}

extension EngineHarness.Out {
    mutating func merge(_ o: EngineHarness.Out) {
        self.packets += o.packets
        self.delivered += o.delivered
        self.events += o.events
    }
}
