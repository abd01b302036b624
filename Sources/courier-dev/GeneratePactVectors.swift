import CourierTooling
import CourierWire
import Foundation

/// pacts.json (SPEC 6.15): mutual-aid pact records, one of each type, records that must not decode, and a pledge
/// carried on a signed aid offer to everyone.
struct PactVector: Codable {
    var name: String
    var type: String
    var pact: String?
    var pactName: String?
    var respondWithin: UInt32?
    var members: [String]?
    var pledge: String?
    var deadline: UInt64?
    var request: String?
    var at: UInt64?
    var unmet: [String]?
    var member: String?
    var recordHex: String
}

struct PactInvalid: Codable {
    var name: String
    var hex: String
    var error: String
}

struct PactFile: Codable {
    var description: String
    var records: [PactVector]
    var invalid: [PactInvalid]
    var bundles: [Vectors.BundleVector]
}

extension GenerateVectors {
    func pactVectors(a: NodeIdentity, b: NodeIdentity, compressor: BodyCompressor) throws {
        let pact = try BundleID(origin: a.nodeID.short, created: 1_523_041, sequence: 2)
        let request = try BundleID(origin: a.nodeID.short, created: 1_523_100, sequence: 3)
        let members = [b.nodeID.short, ShortID(0x0BAD_C0DE)]
        func v(_ name: String, _ r: PactRecord) -> PactVector {
            var x = PactVector(name: name, type: r.typeName, pact: r.pact?.description, recordHex: r.encode().hex)
            switch r.body {
            case .create(let n, let w, let m, let p):
                x.pactName = n
                x.respondWithin = w
                x.members = m.map(\.description)
                x.pledge = p
            case .join(let p): x.pledge = p
            case .amend(let w, let p):
                x.respondWithin = w
                x.pledge = p
            case .withdraw: break
            case .request(let d): x.deadline = d
            case .pledge(let q, let at):
                x.request = q.description
                x.at = at
            case .escalation(let q, let u):
                x.request = q.description
                x.unmet = u.map(\.description)
            case .delivered(let q, let m, let at):
                x.request = q.description
                x.member = m.description
                x.at = at
            }
            return x
        }
        let pledgeRecord = try PactRecord(pact: pact, body: .pledge(request: request, at: 1_795_445_430))
        let records = [
            v("create: A with B and 0badc0de, 6 hours, A pledges water",
              try PactRecord(pact: nil, body: .create(name: "river-towns", respondWithin: 21_600, members: members, pledge: "WATER: 500 l a day"))),
            v("join: B accepts and pledges (UTF-8)", try PactRecord(pact: pact, body: .join(pledge: "طحين: 20 كيس"))),
            v("amend: a new response time and pledge", try PactRecord(pact: pact, body: .amend(respondWithin: 3_600, pledge: "WATER: 800 l"))),
            v("amend: only the pledge", try PactRecord(pact: pact, body: .amend(respondWithin: nil, pledge: ""))),
            v("withdraw", try PactRecord(pact: pact, body: .withdraw)),
            v("request: deadline in unix seconds", try PactRecord(pact: pact, body: .request(deadline: 1_795_467_000))),
            v("pledge to the request", pledgeRecord),
            v("escalation naming one unmet member", try PactRecord(pact: pact, body: .escalation(request: request, unmet: [ShortID(0x0BAD_C0DE)]))),
            v("delivered: the requester confirms B's aid arrived", try PactRecord(pact: pact, body: .delivered(request: request, member: b.nodeID.short, at: 1_795_460_000))),
        ]
        let create = [UInt8](hex: records[0].recordHex)!
        let join = [UInt8](hex: records[1].recordHex)!
        // The wire forms of the pact and request ids, from the withdraw and escalation records.
        let pactWire = Array([UInt8](hex: records[4].recordHex)!.dropFirst(2))
        let escalation = [UInt8](hex: records[7].recordHex)!
        let requestWire = Array(escalation[(2 + pactWire.count)..<(escalation.count - 5)])
        let invalid = [
            PactInvalid(name: "version 2", hex: ([2] + create.dropFirst()).hex, error: "unsupported version"),
            PactInvalid(name: "record type 9", hex: ([1, 9] + join.dropFirst(2)).hex, error: "unknown record type"),
            PactInvalid(name: "create with an empty name", hex: "0101003c010badc0de00", error: "a name of 0 bytes"),
            PactInvalid(name: "create with a respond-within of 0", hex: "0101016100010badc0de00", error: "respond-within 0"),
            PactInvalid(name: "create with no member", hex: "010101613c0000", error: "no member"),
            PactInvalid(name: "join with a byte left over", hex: (join + [0]).hex, error: "trailing bytes"),
            PactInvalid(name: "join cut short", hex: join.dropLast().hex, error: "truncated"),
            PactInvalid(name: "join whose pledge is not UTF-8", hex: ([1, 2] + pactWire + [1, 0xFF]).hex, error: "not UTF-8"),
            PactInvalid(name: "amend with a reserved flag bit", hex: ([1, 3] + pactWire + [4]).hex, error: "reserved flag"),
            PactInvalid(name: "pledge whose time is not in shortest form", hex: ([1, 6] + pactWire + requestWire + [0x80, 0x00]).hex, error: "varint not in shortest form"),
            PactInvalid(name: "escalation naming 33 members", hex: ([1, 7] + pactWire + requestWire + [33] + [UInt8](repeating: 1, count: 132)).hex, error: "more than 32 members"),
        ]
        var carrier = Vectors.BundleVector(
            name: "a pledge: an aid offer to everyone answering the request (reference), signed, with the pact record as extension 4",
            origin: Fixtures.b, recipient: nil, kind: Kind.aidOffer.code, destination: "everyone", created: 1_523_101, sequence: 0,
            lifetime: Kind.aidOffer.defaultLifetime, hopLimit: 8, priority: nil, respondBy: nil, reference: request.description,
            sign: true, compression: "", contentUtf8: "Two tanks of 100 l by 20:00.", bundleHex: "")
        carrier.extensions = [Vectors.ExtensionJSON(type: PactRecord.extensionType, value: pledgeRecord.encode().hex)]
        let made = try Vectors.make(carrier, compressor: compressor)
        carrier.compression = Vectors.describe(made.compression)
        carrier.bundleHex = made.encode().hex
        try self.write(PactFile(
            description: "Mutual-aid pact records (SPEC 6.15): the value of bundle extension type 4. records: each decodes to its fields and re-encodes to recordHex; invalid: decoding must fail; bundles: a pledge as it travels.",
            records: records, invalid: invalid, bundles: [carrier]), "pacts.json")
    }
}
