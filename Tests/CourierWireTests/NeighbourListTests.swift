import CourierWire
import Testing

/// The neighbour-list record (type 9, SPEC 5.13): encoded in ascending order, decoded totally, skipped by a node
/// that does not know it when a reserved flag is set.
@Suite struct NeighbourListTests {
    @Test func encodesSortedWithoutRepeatsAndDecodesBack() throws {
        let r = NeighbourListRecord([ShortID(0x0b00_0001), ShortID(0x0a00_0002), ShortID(0x0b00_0001)])
        #expect(r.ids == [ShortID(0x0a00_0002), ShortID(0x0b00_0001)])
        #expect(r.encodeBody() == [0x0a, 0, 0, 2, 0x0b, 0, 0, 1])
        let payload = Record.encode([.neighbours(r)])
        #expect(payload.first == 0x90)
        #expect(try Record.decodeAll(payload[...]) == [.neighbours(r)])
    }

    @Test func isCutToItsLimit() {
        let r = NeighbourListRecord((1...100).map { ShortID(UInt32($0)) })
        #expect(r.ids.count == NeighbourListRecord.maxIDs)
        #expect(r.ids.first == ShortID(1) && r.ids.last == ShortID(UInt32(NeighbourListRecord.maxIDs)))
    }

    @Test func refusesBodiesThatAreNotAList() throws {
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([0, 0, 0, 1, 0][...]) }
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([0, 0, 0, 2, 0, 0, 0, 1][...]) }
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([0, 0, 0, 1, 0, 0, 0, 1][...]) }
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([UInt8](repeating: 1, count: 64 * 4)[...]) }
        #expect(try NeighbourListRecord.decode([][...]).ids.isEmpty)
    }

    @Test func aReservedFlagMakesItUnknown() throws {
        let records = try Record.decodeAll([0x92, 0, 0, 0, 1][...])
        #expect(records == [.unknown(type: 9, flags: 2, body: [0, 0, 0, 1])])
    }
}

/// Flag R (SPEC 5.13): the relays named first, after their count.
@Suite struct NeighbourListRelaysTests {
    @Test func relaysGoFirstAfterTheirCount() throws {
        let r = NeighbourListRecord([ShortID(3), ShortID(1), ShortID(2)], relays: [ShortID(3), ShortID(2)])
        #expect(r.ids == [ShortID(1), ShortID(2), ShortID(3)])
        #expect(r.relays == [ShortID(2), ShortID(3)])
        #expect(r.encodeBody() == [2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1])
        let payload = Record.encode([.neighbours(r)])
        #expect(payload.first == 0x91)
        #expect(try Record.decodeAll(payload[...]) == [.neighbours(r)])
    }

    @Test func refusesRelayCountsThatDoNotMatch() {
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([2, 0, 0, 0, 1][...], withRelays: true) }
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([1, 0, 0, 0, 1, 0, 0, 0, 1][...], withRelays: true) }
        #expect(throws: WireError.self) { try NeighbourListRecord.decode([][...], withRelays: true) }
    }
}
