import CourierWire
import struct CourierStore.QueuedBundle
import enum CourierStore.Acceptance
import struct CourierStore.InboxMessage
import struct CourierStore.WaitingBundle
import struct CourierStore.PeerRecord
import typealias CourierStore.HeldBundle
import typealias CourierStore.ExpiredBundle
import enum CourierStore.StoreError
import struct CourierStore.StoredDictionary

/// What the engine needs from durable storage, and nothing more: the engine's side of the storage boundary. The
/// engine holds an `any NodeStorage`, never the SQLite store's concrete type (it is bound to `Store` in
/// StorageBinding.swift, the one file of the engine that names it); a test or another runtime may hand it any storage
/// that keeps these promises.
///
/// Promises. A call that returns has made its change durable, or, inside `grouped`, will make it durable when the
/// group commits, before the engine lets anything the change vouches for leave (an ack, a packet under a reserved
/// counter). What must be durable before use goes through here: bundle sequence numbers (`nextSequence`), packet
/// counters (`reservePacketCounters`), transfer numbers (`reserveTransferNumbers`), replay windows
/// (`saveReplayWindow`). A call that throws changed nothing (a grouped write rolls back to where it began); the
/// engine turns the error into `.storageFailed` (StorageFailures.swift) and the behaviour its caller defines.
public protocol NodeStorage: AnyObject, Sendable {
    /// Where the storage is (for error messages).
    var path: String { get }

    /// Runs `body` as one durable write: every write inside it commits together, at the end (one transaction, one
    /// fsync). A write inside that throws is undone alone and `body` goes on; if the commit itself fails, every write
    /// of the group is undone and `grouped` throws (the engine then emits nothing those writes vouched for).
    func grouped<T>(_ body: () throws -> T) throws(StoreError) -> T

    // Numbers that must be durable before use.
    func nextSequence() throws(StoreError) -> UInt32
    func reservePacketCounters(_ count: UInt32) throws(StoreError) -> Range<UInt32>
    func reserveTransferNumbers(_ count: Int64) throws(StoreError) -> Range<Int64>
    func replayWindows() throws(StoreError) -> [NodeID: ReplayWindow]
    func saveReplayWindow(_ w: ReplayWindow, for sender: NodeID) throws(StoreError)

    // The queue.
    @discardableResult
    func insert(_ bundle: CourierBundle, now: Int64, local: Bool, custody: Bool, from: String?) throws(StoreError) -> Acceptance
    /// `again`: a bundle seen but no longer held is stored all the same (taking custody again); see `Store`.
    func insertReporting(_ bundles: [CourierBundle], now: Int64, local: Bool, custody: Bool, from: String?,
                         classes: [PriorityClass]?, again: Bool) throws(StoreError) -> (results: [Acceptance], evicted: [ExpiredBundle])
    func bundle(_ id: BundleID) throws(StoreError) -> QueuedBundle?
    func bundles(digests: [UInt32]) throws(StoreError) -> [QueuedBundle]
    func held(limit: Int) throws(StoreError) -> [HeldBundle]
    /// Copy budgets of held directed bundles (binary spray-and-wait, SPEC 5.14): those said, by bundle.
    func copyBudgets() throws(StoreError) -> [BundleID: Int]
    func setCopyBudget(_ id: BundleID, copies: Int) throws(StoreError)
    /// A held flood with no hop left given a later copy's hop limit (SPEC 6.10): `first` is that copy's byte 0.
    @discardableResult
    func raiseHopLimit(_ id: BundleID, first: UInt8) throws(StoreError) -> Bool
    func held(kind: Kind, origin: ShortID) throws(StoreError) -> [(id: BundleID, destination: Destination, expires: Int64)]
    func remove(_ id: BundleID, reason: String, now: Int64) throws(StoreError)
    func expireBundles(now: Int64) throws(StoreError) -> [ExpiredBundle]

    // What was seen (dedupe) and what became of a bundle (the change feed).
    func hasSeen(_ id: BundleID) throws(StoreError) -> Bool
    func seenDigests(limit: Int) throws(StoreError) -> [UInt32]
    func markSeen(_ bundle: CourierBundle) throws(StoreError)
    func gaveUp(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError)
    func gaveUpHopLimit(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError)
    func refused(_ bundle: CourierBundle, reason: String, from: String?, now: Int64, unsigned: Bool) throws(StoreError)
    func failed(_ id: BundleID, reason: String, by: ShortID, now: Int64) throws(StoreError)
    func stalled(_ id: BundleID, to: ShortID, detail: String, now: Int64) throws(StoreError)
    /// The change feed's newest entry (0 when empty). Read once, at the engine's start, before it indexes what is
    /// held: what other processes store after that is in the feed after it (`Node.feedPosition`).
    func lastEventSeq() throws(StoreError) -> Int64

    // Transmission state and custody.
    func recordSent(_ id: BundleID, to neighbour: NodeID, transfer: UInt32, fragments: Int, indices: [Int],
                    nextRetry: Int64, now: Int64) throws(StoreError)
    func recordBroadcast(_ id: BundleID, link: String, inRange: [String], now: Int64) throws(StoreError)
    @discardableResult
    func recordAck(_ id: BundleID, from neighbour: NodeID, ack: AckEntry, now: Int64) throws(StoreError) -> Bool
    func releaseCustody(_ id: BundleID, to neighbour: NodeID, now: Int64) throws(StoreError)

    // Reassembly.
    func saveFragment(_ f: FragmentRecord, from sender: NodeID, now: Int64) throws(StoreError)
    func dropTransfer(from sender: NodeID, transfer: UInt32) throws(StoreError)
    func savedFragments() throws(StoreError) -> [(sender: NodeID, fragment: FragmentRecord, received: Int64)]

    // The inbox.
    func deliver(_ bundle: CourierBundle, content: [UInt8], now: Int64, proven: Bool) throws(StoreError) -> Bool
    func inboxMessage(_ id: BundleID) throws(StoreError) -> InboxMessage?

    // Bundles kept unread until their origin's keys arrive.
    @discardableResult
    func keepUnread(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) -> Bool
    func waiting(origin: ShortID?) throws(StoreError) -> [WaitingBundle]
    func expiredOnArrival(_ bundle: CourierBundle, detail: String, from: String?, now: Int64) throws(StoreError) -> Bool
    func waitingOrigins(keptBy: Int64) throws(StoreError) -> [ShortID]
    func releaseUnread(_ id: BundleID) throws(StoreError)
    func dropUnread(_ id: BundleID, gaveUp: String?, now: Int64) throws(StoreError)

    // Peers' keys, and the operator's quiet switch.
    func peers() throws(StoreError) -> [PeerRecord]
    @discardableResult
    func rememberKeys(_ keys: NodePublicKeys, name: String?) throws(StoreError) -> Bool
    func rememberPeer(_ keys: NodePublicKeys, name: String?, now: Int64) throws(StoreError)
    func isQuiet() throws(StoreError) -> Bool
    func setQuiet(_ on: Bool) throws(StoreError)

    // Federation dictionaries (SPEC 7.4-7.6): those kept here, and which each neighbour said it holds.
    func dictionaries() throws(StoreError) -> [StoredDictionary]
    /// Keeps `d`; returns the ones dropped to keep only the newest few.
    func saveDictionary(_ d: StoredDictionary, now: Int64) throws(StoreError) -> [StoredDictionary]
    func dictionaryEvent(_ detail: String, bundle: BundleID?, now: Int64) throws(StoreError)
    func setDictionaryHolder(_ node: ShortID, holds: [DictionariesRecord.Entry], now: Int64) throws(StoreError)
    func dictionaryHolders() throws(StoreError) -> [ShortID: Set<DictionariesRecord.Entry>]

    // Live drills (SPEC 6.17): answers to this node's drills, kept and in the feed; refused ones in the feed.
    /// Returns false when `node`'s answer to `drill` was already kept.
    @discardableResult
    func drillAnswered(_ drill: BundleID, by node: ShortID, hops: UInt8?, now: Int64) throws(StoreError) -> Bool
    func drillAnswerRefused(_ drill: BundleID, claiming node: ShortID, reason: String, now: Int64) throws(StoreError)
}

extension Tuning {
    /// Held bundles read at most in one call (a summary, a reroute, housekeeping): the store's quota holds fewer
    /// bundles of any useful size, so this bounds a read, not what is held.
    static let heldLimit = 100_000
    /// Ids of bundles seen read at most for a summary's comparison: the newest, as many as a summary can carry.
    static let seenDigestsLimit = 4_096
    /// Transfer numbers reserved in the store at once (SPEC 8.2): one durable write per 256 transfers.
    static let transferNumberBlock: Int64 = 256
}
