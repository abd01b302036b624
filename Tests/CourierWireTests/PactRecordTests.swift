import CourierWire
import Foundation
import Testing

/// protocol/vectors/pacts.json (SPEC 6.15): every pact record decodes and re-encodes to its bytes, malformed ones
/// fail, and a pledge carried on a signed offer is found and verifies.
@Suite struct PactRecordTests {
    func file() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol/vectors/pacts.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    @Test func recordsRoundTrip() throws {
        let records = try #require(try self.file()["records"] as? [[String: Any]])
        #expect(records.count == 9)
        var types = Set<String>()
        for v in records {
            let hex = try #require(v["recordHex"] as? String)
            let r = try PactRecord(decoding: [UInt8](hex: hex)!)
            #expect(r.encode().hex == hex, "\(v["name"] ?? "")")
            #expect(r.typeName == v["type"] as? String)
            #expect(r.pact?.description == v["pact"] as? String)
            types.insert(r.typeName)
            if case .create(let name, let within, let members, let pledge) = r.body {
                #expect(name == v["pactName"] as? String && Int(within) == v["respondWithin"] as? Int && pledge == v["pledge"] as? String)
                #expect(members.map(\.description) == v["members"] as? [String])
            }
        }
        #expect(types.count == 8, "one record of each type: \(types)")
    }

    @Test func malformedRecordsFail() throws {
        let invalid = try #require(try self.file()["invalid"] as? [[String: Any]])
        #expect(!invalid.isEmpty)
        for v in invalid {
            let bytes = [UInt8](hex: try #require(v["hex"] as? String))!
            #expect(throws: WireError.self, "\(v["name"] ?? "")") { try PactRecord(decoding: bytes) }
        }
    }

    @Test func aPledgeAsItTravels() throws {
        let bundles = try #require(try self.file()["bundles"] as? [[String: Any]])
        let b = try CourierBundle(decoding: [UInt8](hex: try #require(bundles.first?["bundleHex"] as? String))!)
        let r = try #require(try PactRecord.carried(by: b))
        guard case .pledge(let request, _) = r.body else { Issue.record("not a pledge: \(r)"); return }
        #expect(b.kind == .aidOffer && b.destination == .everyone && b.reference == request)
        #expect(b.verifySignature(originKeys: Fixture.b.publicKeys))
        #expect(!b.verifySignature(originKeys: Fixture.a.publicKeys))
        // Two pact records in one bundle are refused.
        var twice = b
        twice.extensions += b.extensions
        #expect(throws: WireError.self) { try PactRecord.carried(by: twice) }
    }
}
