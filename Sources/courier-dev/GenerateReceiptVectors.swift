import CourierTooling
import CourierWire
import Crypto
import Foundation

/// receipts.json (SPEC 6.16): receipt-parts records with their fields, each part's key and tag; bodies that must not
/// decode; a record whose part is forged.
struct ReceiptPartVector: Codable {
    var holder: String
    var tag: String
    /// Its holder's hop count (only in a record with hop counts: record flag 0x01).
    var hops: UInt8?
    /// The key the holder and the origin share (HKDF of their X25519 agreement).
    var key: String
}

struct ReceiptGroupVector: Codable {
    var created: UInt32
    var sequence: UInt32
    var parts: [ReceiptPartVector]
}

struct ReceiptRecordVector: Codable {
    var name: String
    var origin: String
    var hops: UInt8
    /// Record flag 0x01: every part carries its holder's hop count (absent: false).
    var hopCounts: Bool?
    var groups: [ReceiptGroupVector]
    var recordHex: String
    /// The whole record in a payload (type 7, last record: no length).
    var payloadHex: String
}

struct ReceiptNodeVector: Codable {
    var name: String
    var identity: Vectors.IdentitySeeds
    var shortId: String
}

struct ReceiptInvalid: Codable {
    var name: String
    var hex: String
    var error: String
}

struct ReceiptFile: Codable {
    var description: String
    var nodes: [ReceiptNodeVector]
    var records: [ReceiptRecordVector]
    var invalid: [ReceiptInvalid]
    var forged: [ReceiptRecordVector]
}

extension GenerateVectors {
    func receiptVectors(a: NodeIdentity, b: NodeIdentity) throws {
        let cSeeds = Vectors.IdentitySeeds(signingSeed: Fixtures.seeds(0xA0), agreementSeed: Fixtures.seeds(0xC0))
        let c = try cSeeds.identity()
        let o = a.nodeID.short
        let alerts = [try BundleID(origin: o, created: 1_523_041, sequence: 7), try BundleID(origin: o, created: 1_523_050, sequence: 300)]
        func key(_ holder: NodeIdentity) -> SymmetricKey {
            ReceiptPartsRecord.key(mine: holder, theirs: a.publicKeys, holder: holder.nodeID, origin: a.nodeID)!
        }
        func vector(_ name: String, hops: UInt8, _ parts: [(BundleID, NodeIdentity)], forge: Bool = false, partHops: [UInt8]? = nil) -> ReceiptRecordVector {
            var statements = parts.map { ($0.0, $0.1.nodeID.short, ReceiptPartsRecord.tag($0.0, holder: $0.1.nodeID.short, key: key($0.1))) }
            if forge { statements[0].2[0] ^= 0x01 }
            let r = ReceiptPartsRecord(origin: o, hops: hops, partsWithHops: statements.enumerated().map { (i, s) in
                (id: s.0, holder: s.1, tag: s.2, hops: partHops.map { $0[i] }) })
            let byHolder = Dictionary(uniqueKeysWithValues: [b, c].map { ($0.nodeID.short, $0) })
            return ReceiptRecordVector(
                name: name, origin: o.description, hops: hops, hopCounts: r.carriesHops ? true : nil,
                groups: r.groups.map { g in
                    ReceiptGroupVector(created: g.created, sequence: g.sequence, parts: g.parts.map { p in
                        ReceiptPartVector(holder: p.holder.description, tag: p.tag.hex, hops: p.hops,
                                          key: key(byHolder[p.holder]!).withUnsafeBytes { Array($0) }.hex)
                    })
                },
                recordHex: r.encodeBody().hex, payloadHex: Record.encode([.receiptParts(r)]).hex)
        }
        let records = [
            vector("node B's part for one alert of A, sent by B two hops from A", hops: 2, [(alerts[0], b)]),
            vector("B's and C's parts for two alerts of A, merged by a relay one hop from A", hops: 1,
                   [(alerts[0], b), (alerts[0], c), (alerts[1], b), (alerts[1], c)]),
            vector("A confirming C's part (hops 0: the origin)", hops: 0, [(alerts[1], c)]),
            vector("answers to a drill of A (6.17), with hop counts (flag 0x01): B got it 1 hop from A, C 3 hops; sent by a relay 2 hops from A",
                   hops: 2, [(alerts[0], b), (alerts[0], c)], partHops: [1, 3]),
        ]
        let body = [UInt8](hex: records[0].recordHex)!
        let invalid = [
            ReceiptInvalid(name: "origin and hops only: no group", hex: Array(body.prefix(5)).hex, error: "truncated"),
            ReceiptInvalid(name: "a group of no holders", hex: Array(body.prefix(9)).hex + "00", error: "invalidValue"),
            ReceiptInvalid(name: "a tag cut short", hex: Array(body.dropLast(1)).hex, error: "truncated"),
            ReceiptInvalid(name: "256 holders", hex: Array(body.prefix(9)).hex + "8002", error: "invalidValue"),
        ]
        let forged = [vector("B's part with one tag bit flipped (a relay claiming B has it)", hops: 1, [(alerts[0], b)], forge: true)]
        try self.write(ReceiptFile(
            description: "Receipt-parts records (SPEC 6.16): origin A (keys.json), holders B (keys.json) and C (below). Each part's tag is HMAC-SHA256(key, \"courier receipt\" || bundle id || holder)[0..8]; key = HKDF-SHA256(X25519(holder, origin), \"courier/v1\", \"receipt\" || holder node id || origin node id).",
            nodes: [ReceiptNodeVector(name: "C", identity: cSeeds, shortId: c.nodeID.short.description)],
            records: records, invalid: invalid, forged: forged), "receipts.json")
    }
}
