import CourierWire
import Testing

/// The compact bundle record (SPEC 5.3, flag 0x04; capability bit 3, 5.6; older nodes 11.7).
@Suite struct CompactBundleTests {
    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func e2eText(_ text: String, lifetime: UInt32? = nil, seq: UInt32 = 3) throws -> CourierBundle {
        var o = BundleOptions(kind: .text, lifetime: lifetime)
        o.encryptTo = Fixture.b.publicKeys
        return try CourierBundle.make(
            kind: .text, destination: .node(Fixture.b.nodeID.short), content: Array(text.utf8), origin: Fixture.a,
            created: 1_500_000, sequence: seq, options: o, compressor: Fixture.compressor)
    }

    @Test func roundTripThroughASealedPacketGivesBackTheSameBundle() throws {
        let bundle = try Self.e2eText("The pump at the upper well is broken again; the committee meets at six.")
        let whole = bundle.encode()
        let rec = BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: 7, bundle: whole, compactFrom: Fixture.a.nodeID.short)
        let ordinary = BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: 7, bundle: whole)
        // Origin (4), destination (4) and the 14-day default lifetime (3 bytes written as 1) are left out.
        #expect(Record.bundle(ordinary).encodedSize(last: true) - Record.bundle(rec).encodedSize(last: true) == 10)
        #expect(Record.encode([.bundle(rec)])[0] == 0x17)  // type 1, last, compact | transfer | next hop
        let packet = PacketSealer(networkKey: Fixture.network, sender: Fixture.a.nodeID).seal([.bundle(rec)], counter: 1)
        let opened = try PacketOpener(networkKey: Fixture.network).open(packet, candidates: Fixture.directory([Fixture.a]))
        #expect(opened.records == [.bundle(rec)])
        guard case .bundle(let got) = opened.records[0] else { Issue.record("not a bundle record"); return }
        #expect(got.bundle == whole)
        // The recipient reads it: the end-to-end tag covers the header put back.
        let back = try CourierBundle(decoding: got.bundle)
        #expect(back.endToEndVerifies(recipient: Fixture.b, originKeys: Fixture.a.publicKeys))
        #expect(try back.content(compressor: Fixture.compressor, recipient: Fixture.b, originKeys: Fixture.a.publicKeys)
                == Array("The pump at the upper well is broken again; the committee meets at six.".utf8))
    }

    @Test func aLifetimeOtherThanTheDefaultIsKept() throws {
        let whole = try Self.e2eText("Meeting moved to Thursday.", lifetime: 90).encode()
        let compact = try #require(CompactBundle.compact(whole, origin: Fixture.a.nodeID.short, destination: Fixture.b.nodeID.short))
        #expect(whole.count - compact.count == 8)
        #expect(try CompactBundle.expand(compact[...], origin: Fixture.a.nodeID.short, destination: Fixture.b.nodeID.short) == whole)
    }

    @Test func bundlesThatDoNotAllowItGoInTheOrdinaryForm() throws {
        let whole = try Self.e2eText("hello").encode()
        // Relayed (origin is not the packet's sender), or not for the next hop, or flooded: the ordinary form.
        for rec in [
            BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: 1, bundle: whole, compactFrom: Fixture.c.nodeID.short),
            BundleRecord(nextHop: Fixture.c.nodeID.short, transfer: 1, bundle: whole, compactFrom: Fixture.a.nodeID.short),
            BundleRecord(nextHop: nil, transfer: nil, bundle: whole, compactFrom: Fixture.a.nodeID.short),
            BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: 1,
                         bundle: try Fixture.bundle(to: .everyone, text: "to all").encode(), compactFrom: Fixture.a.nodeID.short),
        ] {
            #expect(rec.compactBundle() == nil)
            #expect(Record.encode([.bundle(rec)]) == Record.encode([.bundle(BundleRecord(nextHop: rec.nextHop, transfer: rec.transfer, bundle: rec.bundle))]))
        }
    }

    @Test func decodingIsTotal() throws {
        let whole = try Self.e2eText("Bread at the mosque after the evening prayer.").encode()
        let rec = Record.bundle(BundleRecord(nextHop: Fixture.b.nodeID.short, transfer: 300, bundle: whole, compactFrom: Fixture.a.nodeID.short))
        let payload = Record.encode([rec])
        // Every truncation and every one-byte change: a record or a typed error, never a crash.
        for n in 0...payload.count {
            do { _ = try Record.decodeAll(payload.prefix(n), sender: Fixture.a.nodeID.short) } catch let e { _ = e as WireError }
        }
        var g = SplitMix64(seed: 5)
        for i in 0..<payload.count {
            var p = payload
            p[i] ^= UInt8(truncatingIfNeeded: g.next() | 1)
            do { _ = try Record.decodeAll(p[...], sender: Fixture.a.nodeID.short) } catch let e { _ = e as WireError }
        }
        // No sender to take the origin from (an announce-form packet): an error of the record.
        #expect(throws: WireError.self) { try Record.decodeAll(payload[...]) }
        // Compact without a next hop, and compact for a bundle to a group or everyone: errors.
        #expect(throws: WireError.self) { try Record.decodeAll([0x14, 0x50, 0x00][...], sender: Fixture.a.nodeID.short) }
        let flooded = try Fixture.bundle(to: .everyone, text: "to all").encode()
        #expect(throws: WireError.self) {
            try Record.decodeAll(([0x15] + Self.be(Fixture.b.nodeID.short.rawValue) + flooded)[...], sender: Fixture.a.nodeID.short)
        }
    }
}
