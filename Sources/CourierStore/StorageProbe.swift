import Foundation
import GRDB

extension Store {
    /// Bytes the storage probe writes: more than a packet's worth, so a write that works says the store takes
    /// fragments and small bundles again (a tiny write can fit in space the write-ahead log already holds).
    public static let probeBytes = 16_384

    /// A write that says whether storage works (after a failure): `probeBytes` bytes kept under one meta key,
    /// replaced each time, in one transaction with its fsync.
    public func probeWrite() throws(StoreError) {
        try self.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('storage.probe', zeroblob(?))", arguments: [Self.probeBytes])
        }
    }

    /// Records in the change feed that storage failed, or works again (`detail` says which and why).
    public func recordStorage(_ detail: String, now: Int64) throws(StoreError) {
        try self.write { db in try Self.event(db, .storage, at: now, bundle: nil, detail: detail) }
    }
}
