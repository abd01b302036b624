import CourierWire
import Testing

/// Cut bundles (SPEC 5.12, run flags C and R; capability bit 5): the head of a bundle fills what is left of a packet,
/// its rest begins the next packet's run; joined, the bundle is byte for byte the one its origin made.
@Suite struct CutBundleTests {
    static func records(_ bundles: [[UInt8]], from transfer: UInt32) -> [BundleRecord] {
        bundles.enumerated().map {
            BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: transfer + UInt32($0), bundle: $1, compactFrom: Fixture.a.nodeID.short, inRun: true)
        }
    }

    static func bundles() throws -> [[UInt8]] {
        try BundleRunTests.texts.enumerated().map { try BundleRunTests.text($1, seq: UInt32(200 + $0)) }
    }

    @Test func aHeadEndsARunAndItsRestBeginsTheNextAndTheyJoinWhole() throws {
        let all = Self.records(try Self.bundles(), from: 300)
        let (head, rest) = try #require(RunPiece.cut(all[1], keep: 30))
        // Packet 1: the first bundle whole, the second's head. Packet 2: the rest, then the third bundle.
        let first: [Record] = [.bundle(all[0]), .piece(head)]
        let second: [Record] = [.piece(rest), .bundle(all[2])]
        #expect(Record.units(first).map(\.flags) == [BundleRun.cutFlag])
        // The head after a bundle of its run is written as a later bundle (here "like" the one before it: no header),
        // so the cut costs its length's byte, not a first bundle's header.
        let headerless = Record.encode(first).count
        #expect(headerless < Record.encode([.bundle(all[0])]).count + 2 + 2 + head.data.count - 6, "\(headerless) B")
        #expect(Record.units(second).map(\.flags) == [BundleRun.restFlag])
        let sender = Fixture.a.nodeID.short
        let read1 = try Record.decodeAll(Record.encode(first)[...], sender: sender)
        let read2 = try Record.decodeAll(Record.encode(second)[...], sender: sender)
        #expect(read1 == first)
        #expect(read2 == second)
        // The third bundle reads without the head (written as a first one): a lost first packet costs only the cut one.
        guard case .bundle(let third) = read2[1] else { Issue.record("not a bundle"); return }
        #expect(third.bundle == all[2].bundle && third.transfer == 302)
        let joined = try RunPiece.join(head: head, rest: rest, origin: sender)
        #expect(joined == all[1].bundle)
        // Both packets seal and open.
        let sealer = PacketSealer(networkKey: Fixture.network, sender: Fixture.a.nodeID)
        let opened = try PacketOpener(networkKey: Fixture.network).open(sealer.seal(second, counter: 2), candidates: Fixture.directory([Fixture.a]))
        #expect(opened.records == second)
    }

    @Test func aHeadOrARestAloneIsARecordOfItsOwn() throws {
        let all = Self.records(try Self.bundles(), from: 7)
        let (head, rest) = try #require(RunPiece.cut(all[0], keep: 12))
        for r in [Record.piece(head), .piece(rest)] {
            #expect(try Record.decodeAll(Record.encode([r])[...], sender: Fixture.a.nodeID.short) == [r])
        }
        // A rest, then at once the head of the next bundle (as a first one), in one run of flags R and C.
        let (head2, _) = try #require(RunPiece.cut(all[1], keep: 40))
        let both: [Record] = [.piece(rest), .piece(head2)]
        #expect(Record.units(both).map(\.flags) == [BundleRun.cutFlag | BundleRun.restFlag])
        #expect(try Record.decodeAll(Record.encode(both)[...], sender: Fixture.a.nodeID.short) == both)
        // A head holds at least its header and a byte more; a rest at least a byte.
        #expect(RunPiece.cut(all[0], keep: 1) == nil)
        #expect(RunPiece.cut(all[0], keep: BundleRun.firstForm(all[0])!.count) == nil)
    }

    @Test func mismatchedPiecesAndDamagedRunsAreTypedErrors() throws {
        let all = Self.records(try Self.bundles(), from: 50)
        let a = try #require(RunPiece.cut(all[0], keep: 20))
        let b = try #require(RunPiece.cut(all[0], keep: 25))
        // A head of one cut and the rest of another do not make the bundle.
        #expect(throws: WireError.self) { try RunPiece.join(head: a.head, rest: b.rest, origin: Fixture.a.nodeID.short) }
        let sender = Fixture.a.nodeID.short
        // Flag C without a head (every bundle whole), flag R with an empty rest.
        var whole = Record.encode([.bundle(all[0])])
        whole[0] |= BundleRun.cutFlag
        #expect(throws: WireError.self) { try Record.decodeAll(whole[...], sender: sender) }
        #expect(throws: WireError.self) { try Record.decodeAll(([0x82] + [0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x00])[...], sender: sender) }
        // Flag 04 stays reserved: a newer sender's run is skipped as unknown.
        var reserved = Record.encode([.piece(a.head)])
        reserved[0] |= 0x04
        let read = try Record.decodeAll(reserved[...], sender: sender)
        if case .unknown(let t, _, _) = read.first { #expect(t == 8) } else { Issue.record("a run with flag 04 was read: \(read)") }
    }

    @Test func capabilityBitFiveIsCuts() {
        #expect(AnnounceRecord.cuts == 0x20)
    }
}
