import CourierTooling
import CourierWire
import Crypto
import Testing

/// `BundleID.digest` computes SHA-256 of the id's 11 bytes itself (`SHA256OneBlock`): the same first four bytes as
/// the library's SHA-256 of `fixedBytes`, for ids across the whole range of each field.
@Suite struct DigestTests {
    static func library(_ id: BundleID) -> UInt32 {
        let d = Array(SHA256.hash(data: id.fixedBytes))
        return UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
    }

    @Test func digestIsSHA256OfTheFixedBytes() throws {
        var g = SplitMix64(seed: 22)
        var ids: [BundleID] = []
        for edge: (UInt32, UInt32, UInt32) in [(0, 0, 0), (.max, (1 << 24) - 1, .max), (1, 1, 1), (0x8000_0000, 1 << 23, 0x8000_0000)] {
            ids.append(try BundleID(origin: ShortID(edge.0), created: edge.1, sequence: edge.2))
        }
        for _ in 0..<20_000 {
            let o = UInt32(truncatingIfNeeded: g.next()), c = UInt32(g.next() % (1 << 24)), s = UInt32(truncatingIfNeeded: g.next())
            ids.append(try BundleID(origin: ShortID(o), created: c, sequence: s))
        }
        var differing = 0
        for id in ids where id.digest != Self.library(id) { differing += 1 }
        #expect(differing == 0)
        #expect(Set(ids.map(\.digest)).count > 19_900)
    }
}
