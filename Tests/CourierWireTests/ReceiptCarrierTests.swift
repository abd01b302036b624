import CourierWire
import Testing

/// Receipt parts naming their carrier (record type 7, flag 0x02, SPEC 6.16 "Carrier named"): a u32 after `hops`;
/// flag 0x04 stays reserved (a newer sender's record is skipped as unknown).
@Suite struct ReceiptCarrierTests {
    static let origin = ShortID(0x0a0b_0c0d)

    static func record(carrier: ShortID?, hops: UInt8? = nil) throws -> ReceiptPartsRecord {
        let id = try BundleID(origin: Self.origin, created: 1_523_041, sequence: 7)
        return ReceiptPartsRecord(origin: Self.origin, hops: 2, carrier: carrier,
                                  partsWithHops: [(id, ShortID(0x0102_0304), [UInt8](repeating: 0xAB, count: 8), hops)])
    }

    @Test func theCarrierFollowsHopsUnderFlag02() throws {
        let r = try Self.record(carrier: ShortID(0x1122_3344))
        #expect(r.flags == ReceiptPartsRecord.carrierFlag)
        // origin, hops, then the carrier.
        #expect(Array(r.encodeBody().prefix(9)) == [0x0a, 0x0b, 0x0c, 0x0d, 2, 0x11, 0x22, 0x33, 0x44])
        let payload = Record.encode([.receiptParts(r)])
        #expect(payload.first == 0x72, "type 7, flag 02")
        #expect(try Record.decodeAll(payload[...]) == [.receiptParts(r)])
        // Without a carrier the record is as before: 4 bytes shorter, flags 0.
        let plain = try Self.record(carrier: nil)
        #expect(plain.flags == 0 && plain.encodeBody().count == r.encodeBody().count - 4)
        #expect(try Record.decodeAll(Record.encode([.receiptParts(plain)])[...]) == [.receiptParts(plain)])
    }

    @Test func withHopCountsTheFlagsAdd() throws {
        let r = try Self.record(carrier: ShortID(9), hops: 3)
        #expect(r.flags == 0x03)
        let payload = Record.encode([.receiptParts(r)])
        #expect(payload.first == 0x73)
        #expect(try Record.decodeAll(payload[...]) == [.receiptParts(r)])
    }

    @Test func aCarrierCutShortIsAnError() throws {
        #expect(throws: WireError.self) { try ReceiptPartsRecord.decode([0x0a, 0x0b, 0x0c, 0x0d, 2, 0x11, 0x22][...], withCarrier: true) }
    }

    @Test func flag04StaysReserved() throws {
        var payload = Record.encode([.receiptParts(try Self.record(carrier: ShortID(9)))])
        payload[0] |= 0x04
        let records = try Record.decodeAll(payload[...])
        guard case .unknown(let type, let flags, _) = records.first else {
            Issue.record("a reserved flag was read: \(records)")
            return
        }
        #expect(type == 7 && flags == 0x06)
    }
}
