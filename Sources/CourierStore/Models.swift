import CourierWire

/// A bundle in the queue, as the scheduler returns it.
public struct QueuedBundle: Sendable, Hashable {
    public let rowid: Int64
    public let id: BundleID
    public let kind: Kind
    public let priority: PriorityClass
    public let destination: Destination
    public let slot: Int64
    public let received: Int64
    public let size: Int
    public let custody: Bool
    public let isLocal: Bool
    /// The encoded bundle.
    public let data: [UInt8]
}

/// What happened to a bundle offered to the store.
public enum Acceptance: Sendable, Hashable {
    /// Stored; `evicted` lists what the quota pushed out to make room.
    case stored(rowid: Int64, evicted: [BundleID])
    /// Seen before (a flood coming back around): dropped.
    case duplicate
    /// Its lifetime has already passed: dropped.
    case expired
    /// No room, and only bundles of higher priority could be evicted: dropped (a relayed bundle; a local
    /// submission throws `StoreError.quotaFull` instead).
    case refused
}

/// One entry of the change feed.
public struct StoreEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case enqueued, fragmentSent = "fragment-sent", acknowledged, custodyTaken = "custody-taken"
        case custodyReleased = "custody-released", delivered, expired, evicted, refused, removed
        /// For this node but not readable yet (the origin's keys are unknown): kept until they arrive.
        case waiting
        /// Given up on for another reason than those above (unreadable after waiting, or with the keys known).
        case gaveUp = "gave-up"
        /// A failure notice came back: a relay gave up on one of this node's bundles (`detail` says why, `neighbour`
        /// who).
        case failed
        /// A next hop stopped answering: the transfer stopped; the bundle is kept and tried again another way.
        case stalled
        /// Storage failed (a full disk, an I/O error) or works again: `detail` says what failed and for how long.
        case storage
        /// A mutual-aid pact matter (SPEC 6.15): an obligation arrived, a deadline nears (reminder), a request was
        /// escalated, or a pact record could not be read (`detail` says which).
        case pact
        /// A federation dictionary (SPEC 7.6) trained, published, received, or dropped for a newer one (`detail`).
        case dictionary
        /// A live drill (SPEC 6.17): started here, an answer came back (`neighbour` who, `detail` after how many
        /// hops), or an answer was refused (`detail` why).
        case drill
    }
    public let seq: Int64
    /// Unix seconds.
    public let at: Int64
    public let type: Kind
    public let bundle: String?
    public let kind: String?
    public let priority: Int?
    public let neighbour: String?
    public let detail: String?
    /// An `enqueued` entry for a bundle this relay made (`relay send`, the engine's own receipts, identity and
    /// failure notices): a running relay adopts it and sends it. Recorded as such (migration v8-feed-local), not read
    /// from `detail`, which is for people.
    public let local: Bool
}

/// A message delivered to this node.
public struct InboxMessage: Sendable, Hashable {
    public let rowid: Int64
    public let id: BundleID
    public let kind: Kind
    public let destination: Destination
    public let respondBy: UInt32?
    public let reference: String?
    public let content: [UInt8]
    public let received: Int64
    public let read: Bool
    /// It came end-to-end encrypted (only this node could read it).
    public var encrypted = false
    /// Its origin signature verified with the origin's known keys (SPEC 6.12): the origin is proven, not claimed.
    public var proven = false
    public var text: String { String(decoding: self.content, as: UTF8.self) }
}

/// A bundle for this node that it cannot read yet.
public struct WaitingBundle: Sendable, Hashable {
    public let id: BundleID
    public let kind: Kind
    /// Unix seconds.
    public let since: Int64
    /// Courier minutes.
    public let expires: Int64
    public let reason: String
    /// The encoded bundle.
    public let data: [UInt8]
}

/// Per-neighbour transmission state of one bundle.
public struct Transmission: Sendable, Hashable {
    public let transfer: UInt32
    public let fragments: Int
    public let sent: [UInt8]
    public let acked: [UInt8]
    public let attempts: Int
    public let nextRetry: Int64
    public let done: Bool

    public func isAcked(_ i: Int) -> Bool { Bitmap.get(self.acked, i) }
    public var missing: [Int] { (0..<self.fragments).filter { !self.isAcked($0) } }
}

/// The queue at a glance.
public struct QueueSnapshot: Sendable, Hashable {
    public struct Line: Sendable, Hashable {
        public let count: Int
        public let bytes: Int
        public init(count: Int, bytes: Int) {
            self.count = count
            self.bytes = bytes
        }
    }
    public var byClass: [PriorityClass: Line] = [:]
    public var byDestination: [String: Line] = [:]
    public var total = Line(count: 0, bytes: 0)
    public var quota = 0
    public var oldest: (id: BundleID, received: Int64)? = nil
    public var inboxUnread = 0
    public var expiredTotal = 0
    public var evictedTotal = 0
    /// Bundles refused (queue full, untrusted origin, bad signature) and given up unread, since the database was made.
    public var refusedTotal = 0
    public var unreadableTotal = 0
    /// Directed bundles given up on with their hop limit spent (handed back to this relay with no hop left).
    public var hopLimitTotal = 0
    /// Failure notices received about this node's own bundles.
    public var failedTotal = 0
    /// Bytes of message content in the inbox, its bound (`inbox-mb`), messages refused for a full inbox and read
    /// ones removed to make room.
    public var inboxBytes = 0
    public var inboxLimit = 0
    public var inboxRefused = 0
    public var inboxRemoved = 0
    /// Bundles refused because their kind (or `trust = peers`) requires an origin signature and they had none.
    public var unsignedRefused = 0
    /// Identity bundles held (nodes' keys, passed on to members that lack them), included in `total`.
    public var identities = 0
    /// Bundles kept until their origin's keys arrive.
    public var waiting: [WaitingBundle] = []

    public static func == (a: Self, b: Self) -> Bool {
        a.byClass == b.byClass && a.byDestination == b.byDestination && a.total == b.total && a.quota == b.quota
            && a.oldest?.id == b.oldest?.id && a.inboxUnread == b.inboxUnread
    }
    public func hash(into h: inout Hasher) { h.combine(self.total.count) }
}

enum Bitmap {
    static func get(_ b: [UInt8], _ i: Int) -> Bool { i / 8 < b.count && b[i / 8] & (1 << UInt8(i % 8)) != 0 }
    static func set(_ b: inout [UInt8], _ i: Int) {
        if i / 8 >= b.count { b += [UInt8](repeating: 0, count: i / 8 + 1 - b.count) }
        b[i / 8] |= 1 << UInt8(i % 8)
    }
}

extension Destination {
    var storeColumns: (Int, Int64?) {
        switch self {
        case .node(let n): return (0, Int64(n.rawValue))
        case .group(let g): return (1, Int64(g.rawValue))
        case .everyone: return (2, nil)
        }
    }

    init(storeType: Int, value: Int64?) {
        switch storeType {
        case 0: self = .node(ShortID(UInt32(truncatingIfNeeded: value ?? 0)))
        case 1: self = .group(GroupID(UInt16(truncatingIfNeeded: value ?? 0)))
        default: self = .everyone
        }
    }

    /// `node:3f9a01c2`, `group:g1a2b` or `everyone`.
    public var label: String {
        switch self {
        case .node(let n): return "node:\(n)"
        case .group(let g): return "group:\(g)"
        case .everyone: return "everyone"
        }
    }
}
