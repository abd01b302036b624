import CourierWire
import Testing

/// Bundle runs (SPEC 5.11, record type 8) and acks in the ranges form (5.5, flag W); capability bit 4 (5.6, 11.8).
@Suite struct BundleRunTests {
    static func text(_ s: String, seq: UInt32, created: UInt32 = 1_500_000) throws -> [UInt8] {
        var o = BundleOptions(kind: .text)
        o.encryptTo = Fixture.b.publicKeys
        return try CourierBundle.make(
            kind: .text, destination: .node(Fixture.b.nodeID.short), content: Array(s.utf8), origin: Fixture.a,
            created: created, sequence: seq, options: o, compressor: Fixture.compressor).encode()
    }

    static func record(_ bundle: [UInt8], _ transfer: UInt32, run: Bool = true, from: NodeIdentity = Fixture.a) -> Record {
        .bundle(BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: transfer, bundle: bundle, compactFrom: from.nodeID.short, inRun: run))
    }

    static let texts = [
        "The pump at the upper well is broken again; the committee meets at six.",
        "Bring the water receipts from March to the school.",
        "The road to the lower village is open again after the rain.",
    ]

    @Test func ownBundlesGoInOneRunAndComeBackWhole() throws {
        let bundles = try Self.texts.enumerated().map { try Self.text($1, seq: UInt32(200 + $0)) }
        let run = bundles.enumerated().map { Self.record($1, UInt32(300 + $0)) }
        let compact = bundles.enumerated().map { Self.record($1, UInt32(300 + $0), run: false) }
        let payload = Record.encode(run)
        // One record: type 8, the last of its payload (no length).
        #expect(Record.units(run).count == 1)
        #expect(payload[0] == 0x80)
        // The later two are "like" the one before them (same header, same minute, the next sequence): step 1 (no
        // transfer skipped, like), then only the rest.
        let forms = BundleRun.forms(run.map { if case .bundle(let b) = $0 { b } else { preconditionFailure() } })
        #expect(forms.map(\.step) == [nil, 1, 1])
        // Against three compact records: each later one saves its record header and length, next hop, transfer,
        // bytes 0-1, created, sequence, lifetime and the dictionary byte; every one the dictionary byte.
        let saved = Record.encode(compact).count - payload.count
        #expect(saved >= 20, "saved \(saved) B")
        let packet = PacketSealer(networkKey: Fixture.network, sender: Fixture.a.nodeID).seal(run, counter: 1)
        let opened = try PacketOpener(networkKey: Fixture.network).open(packet, candidates: Fixture.directory([Fixture.a]))
        #expect(opened.records == run)
        for (r, (whole, text)) in zip(opened.records, zip(bundles, Self.texts)) {
            guard case .bundle(let got) = r else { Issue.record("not a bundle record"); continue }
            #expect(got.bundle == whole)
            #expect(got.transfer != nil && got.nextHop == Fixture.b.nodeID.short)
            let back = try CourierBundle(decoding: got.bundle)
            #expect(back.endToEndVerifies(recipient: Fixture.b, originKeys: Fixture.a.publicKeys))
            #expect(try back.content(compressor: Fixture.compressor, recipient: Fixture.b, originKeys: Fixture.a.publicKeys) == Array(text.utf8))
        }
    }

    @Test func createdAndSequenceThatDoNotFollowAreWrittenAsDifferences() throws {
        // Earlier minute, a sequence far behind: zigzag differences, and still byte for byte.
        let bundles = [try Self.text(Self.texts[0], seq: 900, created: 1_500_010), try Self.text(Self.texts[1], seq: 17, created: 1_500_002),
                       try Self.text(Self.texts[2], seq: 70_000, created: 1_500_002)]
        let run = bundles.enumerated().map { Self.record($1, UInt32(16_000 + $0)) }
        #expect(Record.units(run).count == 1)
        let decoded = try Record.decodeAll(Record.encode(run)[...], sender: Fixture.a.nodeID.short)
        #expect(decoded == run)
    }

    @Test func aRunSkipsTransferNumbersAndBreaksWhereTheyGoBackOrAnotherRecordComes() throws {
        let bundles = try Self.texts.enumerated().map { try Self.text($1, seq: UInt32(5 + $0)) }
        // 10, then 12 (one skipped: sequence 6 is not 5 + 1 + 1, so not "like"), then 11 (back: a new run).
        let run = [Self.record(bundles[0], 10), Self.record(bundles[1], 12), Self.record(bundles[2], 11)]
        #expect(Record.units(run).map(\.type) == [8, 8])
        #expect(BundleRun.forms(run.prefix(2).map { if case .bundle(let b) = $0 { b } else { preconditionFailure() } }).map(\.step) == [nil, 2])
        #expect(try Record.decodeAll(Record.encode(run)[...], sender: Fixture.a.nodeID.short) == run)
        // Sequences that skip as the transfers do: "like" (step 1 << 1 | 1).
        let skipping = [Self.record(bundles[0], 10), Self.record(bundles[2], 12)]
        #expect(BundleRun.forms(skipping.map { if case .bundle(let b) = $0 { b } else { preconditionFailure() } }).map(\.step) == [nil, 3])
        #expect(try Record.decodeAll(Record.encode(skipping)[...], sender: Fixture.a.nodeID.short) == skipping)
        let records = [Self.record(bundles[0], 10), Self.record(bundles[1], 12),
                       .ack(AckRecord(target: Fixture.b.nodeID.short, entries: [AckEntry(transfer: 3, received: 1)])),
                       Self.record(bundles[2], 13)]
        #expect(Record.units(records).map(\.type) == [8, 3, 8])
        #expect(try Record.decodeAll(Record.encode(records)[...], sender: Fixture.a.nodeID.short) == records)
        // Relayed (origin elsewhere) or without a transfer: a bundle record as before.
        let relayed = Self.record(bundles[0], 20, from: Fixture.c)
        let unacked = Record.bundle(BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: nil, bundle: bundles[0],
                                                 compactFrom: Fixture.a.nodeID.short, inRun: true))
        #expect(Record.units([relayed, unacked]).map(\.type) == [1, 1])
    }

    @Test func acksOfWholeBundlesGoAsRanges() throws {
        let target = Fixture.a.nodeID.short
        let entries = [5, 6, 7, 9, 300, 301].map { AckEntry(transfer: UInt32($0), received: 1) }
        let ranges = Record.ack(AckRecord(target: target, entries: entries, ranges: true))
        let ordinary = Record.ack(AckRecord(target: target, entries: entries))
        let payload = Record.encode([ranges])
        // Ranges 5+2, 9+0, 300+1 after the target.
        var expected: [UInt8] = [0x31]
        expected += [24, 16, 8, 0].map { (shift: UInt32) -> UInt8 in UInt8((target.rawValue >> shift) & 0xFF) }
        expected += [0x05, 0x02, 0x09, 0x00, 0xAC, 0x02, 0x01]
        #expect(payload == expected)
        #expect(Record.encode([ordinary]).count - payload.count == 13)
        #expect(try Record.decodeAll(payload[...]) == [ranges])
        // An entry with fragments cannot go as a range: the ordinary form.
        let mixed = AckRecord(target: target, entries: entries + [AckEntry(transfer: 40, receivedIndices: [0, 2])], ranges: true)
        #expect(!mixed.isRangesForm)
        #expect(Record.encode([.ack(mixed)])[0] == 0x30)
        // Bounded: ranges standing for more than 4,096 transfers, or past 2^32 - 1, are refused.
        #expect(throws: WireError.self) { try Record.decodeAll([0x31, 1, 2, 3, 4, 0x00, 0x80, 0x40][...]) }
        #expect(throws: WireError.self) { try Record.decodeAll([0x31, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01][...]) }
    }

    @Test func anOlderDecoderSkipsBothAndDecodingIsTotal() throws {
        let bundles = try Self.texts.enumerated().map { try Self.text($1, seq: UInt32(40 + $0)) }
        let run = bundles.enumerated().map { Self.record($1, UInt32(70 + $0)) }
        let ack = Record.ack(AckRecord(target: Fixture.a.nodeID.short, entries: [AckEntry(transfer: 1, received: 1)], ranges: true))
        let payload = Record.encode([ack] + run)
        // A run in an announce-form packet (no sender to take the origin from) is an error of the record.
        #expect(throws: WireError.self) { try Record.decodeAll(payload[...], sender: nil) }
        // Reserved flags of a run: skipped as unknown (a newer sender), the other records read.
        var flagged = Record.encode([run[0], ack])
        flagged[0] |= 0x04  // (01 and 02 are the cut flags of 5.12)
        let read = try Record.decodeAll(flagged[...], sender: Fixture.a.nodeID.short)
        #expect(read.count == 2)
        if case .unknown(let t, _, _) = read[0] { #expect(t == 8) } else { Issue.record("a flagged run was read") }
        // Every prefix and every one-byte change decodes or throws a typed error (no trap).
        for n in 0..<payload.count { _ = try? Record.decodeAll(payload.prefix(n), sender: Fixture.a.nodeID.short) }
        for i in 0..<payload.count {
            for x: UInt8 in [0x00, 0x01, 0x80, 0xFF] {
                var m = payload
                m[i] ^= x
                _ = try? Record.decodeAll(m[...], sender: Fixture.a.nodeID.short)
            }
        }
    }
}
