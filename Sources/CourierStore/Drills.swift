import CourierWire
import Foundation
import GRDB

/// A live drill this relay started (SPEC 6.17): its alert's id, when, for whom, and who was expected to answer.
public struct StoredDrill: Sendable, Hashable {
    public init(id: BundleID, started: Int64, scope: String, expected: [ShortID]) {
        self.id = id
        self.started = started
        self.scope = scope
        self.expected = expected
    }
    public let id: BundleID
    /// Unix seconds.
    public let started: Int64
    /// "everyone", or the name of the pact it is for.
    public let scope: String
    /// The relays expected to answer (known members when it started).
    public let expected: [ShortID]
}

/// One answer to a drill: who, when it arrived here (unix seconds), and the hops its relay was from here (nil: not said:
/// a signed receipt, or a relay that does not send hop counts).
public struct DrillAnswer: Sendable, Hashable {
    public init(node: ShortID, at: Int64, hops: UInt8?) {
        self.node = node
        self.at = at
        self.hops = hops
    }
    public let node: ShortID
    public let at: Int64
    public let hops: UInt8?
}

extension Store {
    /// Records a drill this relay started (and a feed entry).
    public func startDrill(_ d: StoredDrill) throws(StoreError) {
        try self.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO drill (bundle, started, scope, expected) VALUES (?, ?, ?, ?)",
                           arguments: [d.id.description, d.started, d.scope, d.expected.map(\.description).joined(separator: " ")])
            try Self.event(db, .drill, at: d.started, bundle: d.id, kind: .alert,
                           detail: "drill started for \(d.scope), \(d.expected.count) relays expected to answer")
        }
    }

    /// The drill with this id, if this relay started it.
    public func drill(_ id: BundleID) throws(StoreError) -> StoredDrill? {
        try self.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM drill WHERE bundle = ?", arguments: [id.description]).map(self.drill)
        }
    }

    /// Every drill this relay started, newest first.
    public func drills() throws(StoreError) -> [StoredDrill] {
        try self.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM drill ORDER BY started DESC").map(self.drill)
        }
    }

    func drill(_ r: Row) throws -> StoredDrill {
        // Written by `startDrill` from a valid id and hex short ids: a row that does not read back is damage.
        let text: String = r["expected"]
        let bundle: String = r["bundle"]
        guard let id = BundleID(bundle) else {
            throw StoreError.corrupt(path: self.path, detail: "drill row with a bad bundle id '\(bundle)'")
        }
        let expected = try text.split(separator: " ").map { s in
            guard let n = ShortID(hex: String(s)) else { throw StoreError.corrupt(path: self.path, detail: "drill \(bundle): bad node id '\(s)'") }
            return n
        }
        return StoredDrill(id: id, started: r["started"], scope: r["scope"], expected: expected)
    }

    /// The answers kept for a drill, in the order they came.
    public func drillAnswers(_ id: BundleID) throws(StoreError) -> [DrillAnswer] {
        try self.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM drill_answer WHERE drill = ? ORDER BY at, node", arguments: [id.description]).map {
                DrillAnswer(node: ShortID(UInt32($0["node"] as Int64)), at: $0["at"], hops: ($0["hops"] as Int64?).map { UInt8(clamping: $0) })
            }
        }
    }

    /// An answer to one of this relay's drills: kept (the first from each relay) and in the feed.
    @discardableResult
    public func drillAnswered(_ drill: BundleID, by node: ShortID, hops: UInt8?, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO drill_answer (drill, node, at, hops) VALUES (?, ?, ?, ?)",
                           arguments: [drill.description, node.rawValue, now, hops.map { Int($0) }])
            guard db.changesCount > 0 else { return false }
            try Self.event(db, .drill, at: now, bundle: drill, kind: .alert, neighbour: node.description,
                           detail: "drill answered by \(node)" + (hops.map { ", \($0) hop\($0 == 1 ? "" : "s") away" } ?? ", hops not said"))
            return true
        }
    }

    /// An answer to one of this relay's drills that was refused (a forged part): in the feed.
    public func drillAnswerRefused(_ drill: BundleID, claiming node: ShortID, reason: String, now: Int64) throws(StoreError) {
        try self.write { db in
            try Self.event(db, .drill, at: now, bundle: drill, kind: .alert, neighbour: node.description, detail: "drill answer refused: \(reason)")
        }
    }
}
