import CourierTooling
import CourierWire
import Testing

/// Decoders are total: random and mutated inputs give a value or a `WireError`, never a trap.
/// (The libFuzzer target explores far more; this is the quick always-on version.)
@Suite struct TotalityTests {
    @Test func randomBytesNeverTrap() {
        var g = SplitMix64(seed: 2026)
        var failures = 0
        for _ in 0..<20_000 {
            let bytes = Fixture.randomBytes(Int(g.next() % 300), &g)
            if (try? CourierBundle(decoding: bytes)) == nil { failures += 1 }
            _ = try? Record.decodeAll(bytes[...])
            _ = try? PacketHeader.decode(bytes[...])
            _ = try? PacketOpener(networkKey: Fixture.network).open(bytes, candidates: Fixture.directory([Fixture.a]))
        }
        #expect(failures > 0)
    }

    @Test func mutatedValidInputsNeverTrap() throws {
        var g = SplitMix64(seed: 77)
        let b = try Fixture.bundle(kind: .alert, text: "Armed convoy moving north on the Zakho road, avoid until further notice.")
        let seeds: [[UInt8]] = [
            b.encode(),
            Record.encode([.bundle(BundleRecord(nextHop: ShortID(1), transfer: 3, bundle: b.encode())),
                           .ack(AckRecord(target: ShortID(2), entries: [AckEntry(transfer: 1, receivedIndices: [0, 2, 5])])),
                           .summary(SummaryRecord(isFinal: true, digests: [1, 2]))]),
        ]
        for seed in seeds {
            for _ in 0..<5_000 {
                var m = seed
                for _ in 0..<Int(1 + g.next() % 4) {
                    switch g.next() % 4 {
                    case 0: m[Int(g.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: g.next())
                    case 1: m.removeLast(Int(g.next() % UInt64(min(m.count, 10))))
                    case 2: m.insert(UInt8(truncatingIfNeeded: g.next()), at: Int(g.next() % UInt64(m.count + 1)))
                    default: m[Int(g.next() % UInt64(m.count))] ^= 0x80
                    }
                    if m.isEmpty { m = [0] }
                }
                if let d = try? CourierBundle(decoding: m) { _ = try? d.content(compressor: Fixture.compressor) }
                _ = try? Record.decodeAll(m[...])
            }
        }
    }
}
