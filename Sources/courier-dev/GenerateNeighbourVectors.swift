import CourierWire
import Foundation

/// neighbours.json (SPEC 5.13): neighbour-list records with their ids, as a record body and as a payload after an
/// announce; bodies that must not decode.
struct NeighbourListVector: Codable {
    var name: String
    /// The short ids, in ascending order (as encoded).
    var ids: [String]
    /// With flag R (0x01): the relays named (a subset of `ids`, ascending); absent without it.
    var relays: [String]?
    var recordHex: String
    /// An announce (keys of node A, keys.json) and the list in one payload, as a relay sends them.
    var payloadHex: String
}

struct NeighbourListFile: Codable {
    var description: String
    var records: [NeighbourListVector]
    var invalid: [NeighbourListInvalid]
}

struct NeighbourListInvalid: Codable {
    var name: String
    var hex: String
    /// Decoded with flag R (absent: without).
    var relaysFlag: Bool?
    var error: String
}

extension GenerateVectors {
    func neighbourVectors(a: NodeIdentity, b: NodeIdentity) throws {
        let k = a.publicKeys
        let announce = Record.announce(AnnounceRecord(capabilities: 1 | AnnounceRecord.compact | AnnounceRecord.runs,
                                                      signingKey: k.signing, agreementKey: k.agreement, name: "ridge repeater"))
        func vector(_ name: String, _ ids: [ShortID], relays: [ShortID]? = nil) -> NeighbourListVector {
            let r = NeighbourListRecord(ids, relays: relays)
            return NeighbourListVector(name: name, ids: r.ids.map(\.description), relays: r.relays?.map(\.description), recordHex: r.encodeBody().hex,
                                       payloadHex: Record.encode([announce, .neighbours(r)]).hex)
        }
        let records = [
            vector("node A hears B and two others (listed in ascending order)",
                   [b.nodeID.short, ShortID(0x0000_00ff), ShortID(0xfe00_0001)]),
            vector("node A hears nobody yet: an empty list", []),
            vector("with a flood (flag R): A names B and 000000ff its relays, fe000001 not",
                   [b.nodeID.short, ShortID(0x0000_00ff), ShortID(0xfe00_0001)], relays: [ShortID(0x0000_00ff), b.nodeID.short]),
        ]
        let invalid = [
            NeighbourListInvalid(name: "a length not a multiple of 4", hex: "000000ff00", error: "invalidValue"),
            NeighbourListInvalid(name: "ids not in ascending order", hex: "00000002" + "00000001", error: "invalidValue"),
            NeighbourListInvalid(name: "an id repeated", hex: "00000001" + "00000001", error: "invalidValue"),
            NeighbourListInvalid(name: "64 ids (at most 63)", hex: (1...64).map { String(format: "%08x", $0) }.joined(), error: "tooLarge"),
            NeighbourListInvalid(name: "flag R: 2 relays but 1 id", hex: "02" + "00000001", relaysFlag: true, error: "invalidValue"),
            NeighbourListInvalid(name: "flag R: a relay listed again among the others", hex: "01" + "00000001" + "00000001", relaysFlag: true, error: "invalidValue"),
            NeighbourListInvalid(name: "flag R: relays not in ascending order", hex: "02" + "00000002" + "00000001", relaysFlag: true, error: "invalidValue"),
            NeighbourListInvalid(name: "flag R: no relay count", hex: "", relaysFlag: true, error: "truncated"),
        ]
        try self.write(NeighbourListFile(
            description: "Neighbour-list records (SPEC 5.13, record type 9): the short ids a relay hears, sent after its announce record. A node that does not know type 9 skips it (5.1).",
            records: records, invalid: invalid), "neighbours.json")
    }
}
