import CourierWire
import Foundation
import GRDB

/// One bundle waiting in the queue, as an operator sees it (`relay queue list`).
public struct QueueEntry: Sendable, Hashable {
    public let id: BundleID
    public let kind: Kind
    public let priority: PriorityClass
    public let destination: Destination
    /// Unix seconds, when this node took it.
    public let received: Int64
    /// Courier minutes.
    public let expires: Int64
    public let size: Int
    public let custody: Bool
    public let isLocal: Bool
    /// Transmissions to neighbours so far (every attempt, every neighbour).
    public let attempts: Int
    /// Neighbours (short ids) that have it all, by their acknowledgement.
    public let acknowledgedBy: [ShortID]
    /// Neighbours (short ids) it was sent to at least once.
    public let sentTo: [ShortID]
    /// The earliest retry time of an unfinished transmission (unix seconds).
    public let nextRetry: Int64?
    /// Times it went out whole as a broadcast (floods: to everyone in range, no acknowledgement).
    public let broadcasts: Int
}

extension Store {
    /// The reason `cancel` writes in the change feed (a running relay stops sending the bundle when it reads it).
    public static let cancelledReason = "cancelled by the operator"

    /// Every bundle held, highest class first, then oldest first, with its transmission state.
    public func queueEntries(limit: Int = 100_000) throws(StoreError) -> [QueueEntry] {
        try self.read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT rowid, origin, created, sequence, kind, priority, dest_type, dest, expires, received, size, custody, local
                FROM bundle ORDER BY priority, received, rowid LIMIT ?
                """), arguments: [limit])
            var broadcasts: [String: Int] = [:]
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT bundle, count(*) FROM event WHERE type = ? AND neighbour IS NULL GROUP BY bundle"),
                                      arguments: [StoreEvent.Kind.fragmentSent.rawValue]) {
                if let b = r[0] as String? { broadcasts[b] = r[1] }
            }
            return try rows.map { r in
                let tx = try Row.fetchAll(db.cachedStatement(sql: "SELECT neighbour, attempts, next_retry, done FROM transmission WHERE bundle = ?"),
                                          arguments: [r["rowid"] as Int64])
                func short(_ t: Row) -> ShortID? { NodeID(bytes: [UInt8](t["neighbour"] as Data))?.short }
                let open = tx.filter { ($0["done"] as Int64) == 0 }
                let id = try BundleID(origin: ShortID(UInt32(r["origin"] as Int64)), created: UInt32(r["created"] as Int64), sequence: UInt32(r["sequence"] as Int64))
                return QueueEntry(
                    id: id,
                    kind: Kind(code: UInt8(r["kind"] as Int64)), priority: PriorityClass(rawValue: UInt8(r["priority"] as Int64)) ?? .bulk,
                    destination: Destination(storeType: r["dest_type"], value: r["dest"]), received: r["received"], expires: r["expires"],
                    size: r["size"], custody: (r["custody"] as Int64) != 0, isLocal: (r["local"] as Int64) != 0,
                    attempts: tx.map { $0["attempts"] as Int }.reduce(0, +),
                    acknowledgedBy: tx.filter { ($0["done"] as Int64) != 0 }.compactMap(short),
                    sentTo: tx.compactMap(short),
                    nextRetry: open.map { $0["next_retry"] as Int64 }.min(), broadcasts: broadcasts[id.description] ?? 0)
            }
        }
    }

    /// A bundle went out whole as a broadcast on a link (no acknowledgement follows): a `fragment-sent` entry
    /// without a neighbour, naming the link and the neighbours in range then.
    public func recordBroadcast(_ id: BundleID, link: String, inRange: [String], now: Int64) throws(StoreError) {
        try self.write { db in
            guard let b = try self.rowid(db, id) else { return }
            try Self.event(db, .fragmentSent, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                           priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)),
                           detail: "broadcast on \(link)\(inRange.isEmpty ? "" : " to " + inRange.joined(separator: " "))")
        }
    }

    /// The operator takes a bundle out of the queue (`relay queue cancel`): it is not sent any further from here,
    /// and the change feed records it as `removed` with the reason "cancelled by the operator". Returns false when
    /// no bundle of that id is queued.
    public func cancel(_ id: BundleID, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            guard let b = try self.rowid(db, id) else { return false }
            try Self.remove(db, rowid: b["rowid"], size: b["size"], priority: b["priority"], slot: b["slot"])
            try Self.event(db, .removed, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                           priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)), detail: Self.cancelledReason)
            return true
        }
    }

    /// The change feed's entries about bundles made by `origin` (this relay's outbox), oldest first. The feed keeps
    /// the last `eventRetention` entries, so the outbox reaches back as far as that.
    public func events(ofOrigin origin: ShortID) throws(StoreError) -> [StoreEvent] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM event WHERE bundle LIKE ? ORDER BY seq"),
                             arguments: ["\(origin).%"]).map(Self.feedEntry)
        }
    }

    /// Receipts delivered to this node (they confirm delivery of what it sent; they are not shown as messages).
    public func receipts() throws(StoreError) -> [InboxMessage] {
        try self.inboxRows("WHERE kind = ? ORDER BY rowid", [Kind.receipt.code])
    }

    /// Messages delivered to this node, receipts excepted (those update the outbox).
    public func messages(unreadOnly: Bool = false, limit: Int = 100_000) throws(StoreError) -> [InboxMessage] {
        try self.inboxRows("WHERE kind != ?\(unreadOnly ? " AND read = 0" : "") ORDER BY rowid LIMIT ?", [Kind.receipt.code, limit])
    }

    /// Origins of messages delivered here: nodes this relay has heard of even if it never heard their announce.
    public func inboxOrigins() throws(StoreError) -> [ShortID] {
        try self.read { db in
            try Int64.fetchAll(db.cachedStatement(sql: "SELECT DISTINCT origin FROM inbox")).map { ShortID(UInt32($0)) }
        }
    }
}
