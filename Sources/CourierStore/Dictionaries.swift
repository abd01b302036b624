import CourierWire
import Foundation
import GRDB

/// A federation dictionary (SPEC 7.6) this relay trained or received.
public struct StoredDictionary: Sendable, Hashable {
    public let id: UInt8
    public let fingerprint: UInt16
    public let origin: ShortID
    public let version: UInt32
    /// Unix seconds it was trained or received.
    public let made: Int64
    public let bytes: [UInt8]
    /// The signed dictionary bundle; nil when trained here and not published yet.
    public var bundle: [UInt8]?
    /// Trained here: how many texts, and the held-out ratios (compressed/original) with it and with dictionary 1.
    public var texts: Int?
    public var ratio: Double?
    public var ratioDefault: Double?

    public init(id: UInt8, fingerprint: UInt16, origin: ShortID, version: UInt32, made: Int64, bytes: [UInt8],
                bundle: [UInt8]? = nil, texts: Int? = nil, ratio: Double? = nil, ratioDefault: Double? = nil) {
        self.id = id
        self.fingerprint = fingerprint
        self.origin = origin
        self.version = version
        self.made = made
        self.bytes = bytes
        self.bundle = bundle
        self.texts = texts
        self.ratio = ratio
        self.ratioDefault = ratioDefault
    }

    public var entry: DictionariesRecord.Entry { DictionariesRecord.Entry(id: self.id, fingerprint: self.fingerprint) }
}

extension Store {
    /// How many federation dictionaries a relay keeps (trained here or received): the most recent ones. Each costs up
    /// to 64 KiB in the store and a zstd context in memory; a federation replaces its dictionary now and then, and a
    /// bundle compressed with one stays readable while the relays on its way keep it.
    public static let dictionariesKept = 4

    static func dictionary(_ r: Row) -> StoredDictionary {
        StoredDictionary(id: UInt8(r["id"] as Int64), fingerprint: UInt16(r["fingerprint"] as Int64),
                         origin: ShortID(UInt32(r["origin"] as Int64)), version: UInt32(r["version"] as Int64),
                         made: r["made"], bytes: [UInt8](r["bytes"] as Data), bundle: (r["bundle"] as Data?).map { [UInt8]($0) },
                         texts: (r["texts"] as Int64?).map(Int.init), ratio: r["ratio"], ratioDefault: r["ratio_default"])
    }

    /// The dictionaries held, newest first.
    public func dictionaries() throws(StoreError) -> [StoredDictionary] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM dictionary ORDER BY made DESC, id")).map(Self.dictionary)
        }
    }

    /// Keeps a dictionary (replacing one with its id) and drops the oldest beyond `dictionariesKept`. Returns the
    /// dropped ones (the feed records each).
    @discardableResult
    public func saveDictionary(_ d: StoredDictionary, now: Int64) throws(StoreError) -> [StoredDictionary] {
        try self.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO dictionary (id, fingerprint, origin, version, made, bytes, bundle, texts, ratio, ratio_default)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [d.id, d.fingerprint, d.origin.rawValue, d.version, d.made, Data(d.bytes), d.bundle.map { Data($0) },
                                 d.texts, d.ratio, d.ratioDefault])
            let all = try Row.fetchAll(db, sql: "SELECT * FROM dictionary ORDER BY made DESC, id").map(Self.dictionary)
            let dropped = Array(all.dropFirst(Self.dictionariesKept))
            for x in dropped {
                try db.execute(sql: "DELETE FROM dictionary WHERE id = ?", arguments: [x.id])
                try Self.event(db, .dictionary, at: now, bundle: nil, detail: "dictionary \(x.id) (version \(x.version) from \(x.origin)) dropped: \(Self.dictionariesKept) newer ones are kept")
            }
            return dropped
        }
    }

    /// Records a change-feed entry about a dictionary.
    public func dictionaryEvent(_ detail: String, bundle: BundleID? = nil, now: Int64) throws(StoreError) {
        try self.write { db in try Self.event(db, .dictionary, at: now, bundle: bundle, kind: bundle == nil ? nil : .dictionary, detail: detail) }
    }

    /// What a neighbour said it holds (record type 6): replaces what it said before.
    public func setDictionaryHolder(_ node: ShortID, holds: [DictionariesRecord.Entry], now: Int64) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "DELETE FROM dictionary_holder WHERE node = ?").execute(arguments: [node.rawValue])
            for e in holds {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO dictionary_holder (node, id, fingerprint, heard) VALUES (?, ?, ?, ?)")
                    .execute(arguments: [node.rawValue, e.id, e.fingerprint, now])
            }
        }
    }

    /// What each neighbour last said it holds.
    public func dictionaryHolders() throws(StoreError) -> [ShortID: Set<DictionariesRecord.Entry>] {
        try self.read { db in
            var out: [ShortID: Set<DictionariesRecord.Entry>] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT * FROM dictionary_holder") {
                out[ShortID(UInt32(r["node"] as Int64)), default: []].insert(
                    DictionariesRecord.Entry(id: UInt8(r["id"] as Int64), fingerprint: UInt16(r["fingerprint"] as Int64)))
            }
            return out
        }
    }

    /// Texts this relay can read, to train a dictionary on: the messages in its inbox (alerts, aid requests and
    /// offers, grievances, minutes, texts) and those it sent that it still holds unencrypted. Messages that came end-to-end
    /// encrypted (meant for this relay alone) only with `includePrivate`: a dictionary carries pieces of its texts to
    /// every member. `skipped` counts the sent ones it cannot read (end-to-end encrypted to their recipient, or not
    /// decodable); `privateLeftOut` the encrypted inbox messages left out.
    public func readableTexts(includePrivate: Bool = false) throws(StoreError) -> (texts: [[UInt8]], skipped: Int, privateLeftOut: Int) {
        let textKinds = [Kind.alert, .aidRequest, .aidOffer, .grievance, .minutes, .text].map { String($0.code) }.joined(separator: ",")
        let (inbox, privateLeftOut) = try self.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT content, encrypted FROM inbox WHERE kind IN (\(textKinds)) ORDER BY rowid")
            let kept = rows.filter { includePrivate || ($0["encrypted"] as Int64) == 0 }
            return (kept.map { [UInt8]($0["content"] as Data) }, rows.count - kept.count)
        }
        let sent = try self.read { db in
            try Row.fetchAll(db, sql: """
                SELECT data FROM bundle b WHERE local = 1 AND kind IN (\(textKinds)) AND NOT EXISTS
                  (SELECT 1 FROM inbox i WHERE i.origin = b.origin AND i.created = b.created AND i.sequence = b.sequence)
                ORDER BY rowid
                """).map { [UInt8]($0["data"] as Data) }
        }
        var out = inbox
        var skipped = 0
        let plain = BodyCompressor()
        for data in sent {
            do {
                let b = try CourierBundle(decoding: data)
                if b.isEncrypted { skipped += 1; continue }
                out.append(try b.content(compressor: plain))
            } catch {
                skipped += 1
            }
        }
        return (out, skipped, privateLeftOut)
    }
}
