import CourierWire
import Foundation
import GRDB
import GRDBSQLite

/// A node whose public keys this relay knows: heard in an announce, or added to the trust list by hand.
public struct PeerRecord: Sendable, Equatable {
    public var keys: NodePublicKeys
    public var name: String?
    /// Unix seconds; nil when never heard on a link.
    public var firstHeard: Int64?
    public var lastHeard: Int64?
    /// On the trust list (`relay peers add`).
    public var trusted: Bool
    public var added: Int64?
    public var nodeID: NodeID { self.keys.nodeID }

    public init(keys: NodePublicKeys, name: String?, firstHeard: Int64?, lastHeard: Int64?, trusted: Bool, added: Int64?) {
        self.keys = keys
        self.name = name
        self.firstHeard = firstHeard
        self.lastHeard = lastHeard
        self.trusted = trusted
        self.added = added
    }
}

extension Store {
    /// Remembers keys heard in an announce (so a restart knows them before the next announce), with the name it gave.
    public func rememberPeer(_ keys: NodePublicKeys, name: String?, now: Int64) throws(StoreError) {
        // One statement (no savepoint of its own in a group), held prepared: written at each announce heard.
        let node = keys.nodeID.bytes, signing = keys.signing, agreement = keys.agreement
        try self.writeAlone(expiry: false) { db in
            try node.withUnsafeBytes { node in
                try signing.withUnsafeBytes { signing in
                    try agreement.withUnsafeBytes { agreement in
                        try self.runHeld(db, .peerHeard, """
                            INSERT INTO peer (node, signing, agreement, name, first_heard, last_heard) VALUES (?, ?, ?, ?, ?, ?)
                            ON CONFLICT(node) DO UPDATE SET name = coalesce(excluded.name, name),
                              first_heard = coalesce(first_heard, excluded.first_heard), last_heard = excluded.last_heard
                            """) { raw in
                            bindBlob(raw, 1, node)
                            bindBlob(raw, 2, signing)
                            bindBlob(raw, 3, agreement)
                            bindText(raw, 4, name)
                            sqlite3_bind_int64(raw, 5, now)
                            sqlite3_bind_int64(raw, 6, now)
                        }
                    }
                }
            }
        }
    }

    /// Remembers keys learnt from the federation (an identity bundle), not heard on a link: kept with their name, so
    /// `relay send` can encrypt to the node and a restart still reads it. Returns true when the keys were new here.
    @discardableResult
    public func rememberKeys(_ keys: NodePublicKeys, name: String?) throws(StoreError) -> Bool {
        try self.writeAlone { db in
            try db.cachedStatement(sql: """
                INSERT INTO peer (node, signing, agreement, name) VALUES (?, ?, ?, ?)
                ON CONFLICT(node) DO UPDATE SET name = coalesce(excluded.name, name)
                """).execute(arguments: [Data(keys.nodeID.bytes), Data(keys.signing), Data(keys.agreement), name])
            return db.changesCount > 0
        }
    }

    /// Puts a node on the trust list (or takes it off), keeping what was heard of it.
    public func setTrusted(_ keys: NodePublicKeys, name: String?, trusted: Bool, now: Int64) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: """
                INSERT INTO peer (node, signing, agreement, name, trusted, added) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(node) DO UPDATE SET name = coalesce(excluded.name, name), trusted = excluded.trusted,
                  added = CASE WHEN excluded.trusted = 1 THEN coalesce(added, excluded.added) ELSE NULL END
                """).execute(arguments: [Data(keys.nodeID.bytes), Data(keys.signing), Data(keys.agreement), name,
                                         trusted ? 1 : 0, trusted ? now : nil])
            try Self.setMeta(db, "trust.version", try Self.meta(db, "trust.version") + 1)
        }
    }

    /// Goes up with every change to the trust list, so a running relay notices an edit made by another process.
    public func trustVersion() throws(StoreError) -> Int64 {
        try self.read { db in try Self.meta(db, "trust.version") }
    }

    /// Every known node, trusted first, then most recently heard.
    public func peers() throws(StoreError) -> [PeerRecord] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM peer ORDER BY trusted DESC, coalesce(last_heard, 0) DESC, node")).compactMap { r in
                let s: Data = r["signing"]
                let a: Data = r["agreement"]
                // A row whose keys do not parse (hand-edited or damaged database) is skipped rather than trusted, and
                // said: a trust-list member missing in silence would look like a relay that never announced.
                let keys: NodePublicKeys
                do { keys = try NodePublicKeys(signing: [UInt8](s), agreement: [UInt8](a)) } catch {
                    let node: Data = r["node"]
                    self.logger.warning("a known node's keys are damaged in the database and not used: the node is left out of the known nodes and the trust list",
                                        metadata: ["node": "\(node.map { String(format: "%02x", $0) }.joined())", "error": "\(error)"])
                    return nil
                }
                return PeerRecord(keys: keys, name: r["name"], firstHeard: r["first_heard"], lastHeard: r["last_heard"],
                                  trusted: (r["trusted"] as Int64) == 1, added: r["added"])
            }
        }
    }
}
