import CourierWire
import Foundation
import GRDB

/// A pact record as delivered here (SPEC 6.15): the bundle's id, kind, reference, text and proof, and the record.
public struct StoredPactRecord: Sendable, Hashable {
    public let id: BundleID
    public let kind: Kind
    public let record: PactRecord
    public let text: String
    public let reference: BundleID?
    public let proven: Bool
    /// Unix seconds, when this relay took it (local: never part of the shared ledger).
    public let received: Int64
    /// The whole signed bundle.
    public let data: [UInt8]
}

extension Store {
    /// Called inside `deliver`'s transaction: a delivered bundle carrying a pact record keeps it for the ledger. A
    /// record that does not decode is not kept; the change feed says why (the bundle itself is delivered as text).
    static func capturePactRecord(_ db: Database, _ bundle: CourierBundle, content: [UInt8], now: Int64, proven: Bool) throws {
        let record: PactRecord?
        do { record = try PactRecord.carried(by: bundle) } catch {
            try Self.event(db, .pact, at: now, bundle: bundle.id, kind: bundle.kind,
                           detail: "pact record not read: \(error); delivered as a plain \(bundle.kind)")
            return
        }
        guard let record else { return }
        let id = bundle.id
        try db.execute(sql: """
            INSERT OR IGNORE INTO pact_record (origin, created, sequence, kind, record, content, proven, received, data)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id.origin.rawValue, id.created, id.sequence, bundle.kind.code, Data(record.encode()), Data(content),
                             proven, now, Data(bundle.encode())])
        try Self.event(db, .pact, at: now, bundle: id, kind: bundle.kind,
                       detail: "pact \(record.typeName) recorded\(record.pact.map { " for pact \($0)" } ?? "")\(proven ? "" : " (origin NOT proven: the ledger leaves it out)")")
    }

    /// Every pact record delivered here, in bundle-id order (the same order on every relay). A stored record that no
    /// longer decodes (a damaged database) is reported, not skipped in silence.
    public func pactRecords() throws(StoreError) -> (records: [StoredPactRecord], damaged: [String]) {
        try self.read { db in
            var out: [StoredPactRecord] = []
            var damaged: [String] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM pact_record") {
                let id = try BundleID(origin: ShortID(UInt32(row["origin"] as Int64)), created: UInt32(row["created"] as Int64),
                                      sequence: UInt32(row["sequence"] as Int64))
                let data = [UInt8]((row["data"] as Data?) ?? Data())
                do {
                    let record = try PactRecord(decoding: [UInt8]((row["record"] as Data?) ?? Data()))
                    let bundle = try CourierBundle(decoding: data)
                    out.append(StoredPactRecord(
                        id: id, kind: Kind(code: UInt8(row["kind"] as Int64)), record: record,
                        text: String(decoding: (row["content"] as Data?) ?? Data(), as: UTF8.self), reference: bundle.reference,
                        proven: row["proven"], received: row["received"], data: data))
                } catch {
                    damaged.append("\(id): \(error)")
                }
            }
            out.sort { $0.id < $1.id }
            return (out, damaged)
        }
    }

    /// Records that this relay acted on `what` for `subject` (an obligation shown, a reminder given, an escalation
    /// sent). Returns false when it already had: each happens once, across restarts.
    public func notePact(_ subject: String, _ what: String, detail: String, bundle: BundleID?, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO pact_notice (subject, what, at) VALUES (?, ?, ?)", arguments: [subject, what, now])
            guard db.changesCount > 0 else { return false }
            try Self.event(db, .pact, at: now, bundle: bundle, detail: detail)
            return true
        }
    }

    /// Whether `notePact(subject, what, …)` happened.
    public func pactNoted(_ subject: String, _ what: String) throws(StoreError) -> Bool {
        try self.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM pact_notice WHERE subject = ? AND what = ?", arguments: [subject, what]) ?? false
        }
    }
}
