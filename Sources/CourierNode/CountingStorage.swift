import CourierWire
import Synchronization
import struct CourierStore.QueuedBundle
import enum CourierStore.Acceptance
import struct CourierStore.InboxMessage
import struct CourierStore.WaitingBundle
import struct CourierStore.PeerRecord
import typealias CourierStore.HeldBundle
import typealias CourierStore.ExpiredBundle
import enum CourierStore.StoreError
import struct CourierStore.StoredDictionary

/// A `NodeStorage` that counts the calls the engine makes to another, by operation (`courier-bench engine` names what
/// the slowest tick read and wrote; tests check that a tick with nothing due calls storage not at all). Forwards each
/// call unchanged; a grouped write counts once, and the calls made inside it count as themselves.
public final class CountingStorage: NodeStorage {
    public let inner: any NodeStorage
    let counts = Mutex<[String: Int]>([:])

    public init(_ inner: any NodeStorage) { self.inner = inner }

    /// Calls so far, by operation.
    public var calls: [String: Int] { self.counts.withLock { $0 } }
    /// All calls so far.
    public var total: Int { self.counts.withLock { $0.values.reduce(0, +) } }
    public func reset() { self.counts.withLock { $0 = [:] } }

    func tally(_ name: String) { self.counts.withLock { $0[name, default: 0] += 1 } }

    public var path: String { self.inner.path }
    public func grouped<T>(_ body: () throws -> T) throws(StoreError) -> T { self.tally("grouped"); return try self.inner.grouped(body) }
    public func nextSequence() throws(StoreError) -> UInt32 { self.tally("nextSequence"); return try self.inner.nextSequence() }
    public func reservePacketCounters(_ count: UInt32) throws(StoreError) -> Range<UInt32> { self.tally("reservePacketCounters"); return try self.inner.reservePacketCounters(count) }
    public func reserveTransferNumbers(_ count: Int64) throws(StoreError) -> Range<Int64> { self.tally("reserveTransferNumbers"); return try self.inner.reserveTransferNumbers(count) }
    public func replayWindows() throws(StoreError) -> [NodeID: ReplayWindow] { self.tally("replayWindows"); return try self.inner.replayWindows() }
    public func saveReplayWindow(_ w: ReplayWindow, for sender: NodeID) throws(StoreError) { self.tally("saveReplayWindow"); return try self.inner.saveReplayWindow(w, for: sender) }
    @discardableResult
    public func insert(_ bundle: CourierBundle, now: Int64, local: Bool, custody: Bool, from: String?) throws(StoreError) -> Acceptance { self.tally("insert"); return try self.inner.insert(bundle, now: now, local: local, custody: custody, from: from) }
    public func insertReporting(_ bundles: [CourierBundle], now: Int64, local: Bool, custody: Bool, from: String?, classes: [PriorityClass]?, again: Bool) throws(StoreError) -> (results: [Acceptance], evicted: [ExpiredBundle]) { self.tally("insertReporting"); return try self.inner.insertReporting(bundles, now: now, local: local, custody: custody, from: from, classes: classes, again: again) }
    public func bundle(_ id: BundleID) throws(StoreError) -> QueuedBundle? { self.tally("bundle"); return try self.inner.bundle(id) }
    public func bundles(digests: [UInt32]) throws(StoreError) -> [QueuedBundle] { self.tally("bundles"); return try self.inner.bundles(digests: digests) }
    public func held(limit: Int) throws(StoreError) -> [HeldBundle] { self.tally("held(limit:)"); return try self.inner.held(limit: limit) }
    public func copyBudgets() throws(StoreError) -> [BundleID: Int] { self.tally("copyBudgets"); return try self.inner.copyBudgets() }
    public func setCopyBudget(_ id: BundleID, copies: Int) throws(StoreError) { self.tally("setCopyBudget"); try self.inner.setCopyBudget(id, copies: copies) }
    public func raiseHopLimit(_ id: BundleID, first: UInt8) throws(StoreError) -> Bool { self.tally("raiseHopLimit"); return try self.inner.raiseHopLimit(id, first: first) }
    public func held(kind: Kind, origin: ShortID) throws(StoreError) -> [(id: BundleID, destination: Destination, expires: Int64)] { self.tally("held(kind:origin:)"); return try self.inner.held(kind: kind, origin: origin) }
    public func remove(_ id: BundleID, reason: String, now: Int64) throws(StoreError) { self.tally("remove"); return try self.inner.remove(id, reason: reason, now: now) }
    public func expireBundles(now: Int64) throws(StoreError) -> [ExpiredBundle] { self.tally("expireBundles"); return try self.inner.expireBundles(now: now) }
    public func hasSeen(_ id: BundleID) throws(StoreError) -> Bool { self.tally("hasSeen"); return try self.inner.hasSeen(id) }
    public func seenDigests(limit: Int) throws(StoreError) -> [UInt32] { self.tally("seenDigests"); return try self.inner.seenDigests(limit: limit) }
    public func markSeen(_ bundle: CourierBundle) throws(StoreError) { self.tally("markSeen"); return try self.inner.markSeen(bundle) }
    public func lastEventSeq() throws(StoreError) -> Int64 { self.tally("lastEventSeq"); return try self.inner.lastEventSeq() }
    public func gaveUp(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) { self.tally("gaveUp"); return try self.inner.gaveUp(bundle, reason: reason, from: from, now: now) }
    public func gaveUpHopLimit(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) { self.tally("gaveUpHopLimit"); return try self.inner.gaveUpHopLimit(bundle, reason: reason, from: from, now: now) }
    public func refused(_ bundle: CourierBundle, reason: String, from: String?, now: Int64, unsigned: Bool) throws(StoreError) { self.tally("refused"); return try self.inner.refused(bundle, reason: reason, from: from, now: now, unsigned: unsigned) }
    public func failed(_ id: BundleID, reason: String, by: ShortID, now: Int64) throws(StoreError) { self.tally("failed"); return try self.inner.failed(id, reason: reason, by: by, now: now) }
    public func stalled(_ id: BundleID, to: ShortID, detail: String, now: Int64) throws(StoreError) { self.tally("stalled"); return try self.inner.stalled(id, to: to, detail: detail, now: now) }
    public func recordSent(_ id: BundleID, to neighbour: NodeID, transfer: UInt32, fragments: Int, indices: [Int], nextRetry: Int64, now: Int64) throws(StoreError) { self.tally("recordSent"); return try self.inner.recordSent(id, to: neighbour, transfer: transfer, fragments: fragments, indices: indices, nextRetry: nextRetry, now: now) }
    public func recordBroadcast(_ id: BundleID, link: String, inRange: [String], now: Int64) throws(StoreError) { self.tally("recordBroadcast"); return try self.inner.recordBroadcast(id, link: link, inRange: inRange, now: now) }
    @discardableResult
    public func recordAck(_ id: BundleID, from neighbour: NodeID, ack: AckEntry, now: Int64) throws(StoreError) -> Bool { self.tally("recordAck"); return try self.inner.recordAck(id, from: neighbour, ack: ack, now: now) }
    public func releaseCustody(_ id: BundleID, to neighbour: NodeID, now: Int64) throws(StoreError) { self.tally("releaseCustody"); return try self.inner.releaseCustody(id, to: neighbour, now: now) }
    public func saveFragment(_ f: FragmentRecord, from sender: NodeID, now: Int64) throws(StoreError) { self.tally("saveFragment"); return try self.inner.saveFragment(f, from: sender, now: now) }
    public func dropTransfer(from sender: NodeID, transfer: UInt32) throws(StoreError) { self.tally("dropTransfer"); return try self.inner.dropTransfer(from: sender, transfer: transfer) }
    public func savedFragments() throws(StoreError) -> [(sender: NodeID, fragment: FragmentRecord, received: Int64)] { self.tally("savedFragments"); return try self.inner.savedFragments() }
    public func deliver(_ bundle: CourierBundle, content: [UInt8], now: Int64, proven: Bool) throws(StoreError) -> Bool { self.tally("deliver"); return try self.inner.deliver(bundle, content: content, now: now, proven: proven) }
    public func inboxMessage(_ id: BundleID) throws(StoreError) -> InboxMessage? { self.tally("inboxMessage"); return try self.inner.inboxMessage(id) }
    @discardableResult
    public func keepUnread(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) -> Bool { self.tally("keepUnread"); return try self.inner.keepUnread(bundle, reason: reason, from: from, now: now) }
    public func waiting(origin: ShortID?) throws(StoreError) -> [WaitingBundle] { self.tally("waiting"); return try self.inner.waiting(origin: origin) }
    public func expiredOnArrival(_ bundle: CourierBundle, detail: String, from: String?, now: Int64) throws(StoreError) -> Bool { self.tally("expiredOnArrival"); return try self.inner.expiredOnArrival(bundle, detail: detail, from: from, now: now) }
    public func waitingOrigins(keptBy: Int64) throws(StoreError) -> [ShortID] { self.tally("waitingOrigins"); return try self.inner.waitingOrigins(keptBy: keptBy) }
    public func releaseUnread(_ id: BundleID) throws(StoreError) { self.tally("releaseUnread"); return try self.inner.releaseUnread(id) }
    public func dropUnread(_ id: BundleID, gaveUp: String?, now: Int64) throws(StoreError) { self.tally("dropUnread"); return try self.inner.dropUnread(id, gaveUp: gaveUp, now: now) }
    public func peers() throws(StoreError) -> [PeerRecord] { self.tally("peers"); return try self.inner.peers() }
    @discardableResult
    public func rememberKeys(_ keys: NodePublicKeys, name: String?) throws(StoreError) -> Bool { self.tally("rememberKeys"); return try self.inner.rememberKeys(keys, name: name) }
    public func rememberPeer(_ keys: NodePublicKeys, name: String?, now: Int64) throws(StoreError) { self.tally("rememberPeer"); return try self.inner.rememberPeer(keys, name: name, now: now) }
    public func isQuiet() throws(StoreError) -> Bool { self.tally("isQuiet"); return try self.inner.isQuiet() }
    public func setQuiet(_ on: Bool) throws(StoreError) { self.tally("setQuiet"); return try self.inner.setQuiet(on) }
    public func dictionaries() throws(StoreError) -> [StoredDictionary] { self.tally("dictionaries"); return try self.inner.dictionaries() }
    public func saveDictionary(_ d: StoredDictionary, now: Int64) throws(StoreError) -> [StoredDictionary] { self.tally("saveDictionary"); return try self.inner.saveDictionary(d, now: now) }
    public func dictionaryEvent(_ detail: String, bundle: BundleID?, now: Int64) throws(StoreError) { self.tally("dictionaryEvent"); return try self.inner.dictionaryEvent(detail, bundle: bundle, now: now) }
    public func setDictionaryHolder(_ node: ShortID, holds: [DictionariesRecord.Entry], now: Int64) throws(StoreError) { self.tally("setDictionaryHolder"); return try self.inner.setDictionaryHolder(node, holds: holds, now: now) }
    public func dictionaryHolders() throws(StoreError) -> [ShortID: Set<DictionariesRecord.Entry>] { self.tally("dictionaryHolders"); return try self.inner.dictionaryHolders() }
    @discardableResult
    public func drillAnswered(_ drill: BundleID, by node: ShortID, hops: UInt8?, now: Int64) throws(StoreError) -> Bool { self.tally("drillAnswered"); return try self.inner.drillAnswered(drill, by: node, hops: hops, now: now) }
    public func drillAnswerRefused(_ drill: BundleID, claiming node: ShortID, reason: String, now: Int64) throws(StoreError) { self.tally("drillAnswerRefused"); return try self.inner.drillAnswerRefused(drill, claiming: node, reason: reason, now: now) }
}
