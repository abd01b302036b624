import CourierTooling
import CourierWire
import Testing

/// Bundle archives (SPEC 17): what `relay export` writes and `relay import` reads.
@Suite struct ArchiveTests {
    func sample() throws -> BundleArchive {
        let b1 = try Fixture.bundle(kind: .alert, text: "Checkpoint on the valley road since dawn.")
        let b2 = try Fixture.bundle(kind: .grievance, text: "The pump at the upper well has been broken for nine days.")
        return BundleArchive(created: 1_529_600, writer: Fixture.a.nodeID, bundles: [b1.encode(), b2.encode()])
    }

    @Test func roundTrips() throws {
        let a = try self.sample()
        let bytes = a.encoded(networkKey: Fixture.network)
        #expect(bytes.count == 4 + 1 + 4 + 16 + 1 + a.bundles.reduce(0) { $0 + 1 + $1.count } + 32)
        #expect(try BundleArchive(decoding: bytes, networkKey: Fixture.network) == a)
        let empty = BundleArchive(created: 0, writer: Fixture.b.nodeID, bundles: [])
        #expect(try BundleArchive(decoding: empty.encoded(networkKey: Fixture.network), networkKey: Fixture.network) == empty)
    }

    @Test func anotherFederationOrAnyChangeIsRefusedWhole() throws {
        let bytes = try self.sample().encoded(networkKey: Fixture.network)
        let other = try NetworkKey(bytes: Fixture.seeds(0x10))
        #expect(throws: WireError.authenticationFailed) { try BundleArchive(decoding: bytes, networkKey: other) }
        for i in stride(from: 4, to: bytes.count, by: 7) {
            var t = bytes
            t[i] ^= 0x01
            #expect(throws: WireError.authenticationFailed) { try BundleArchive(decoding: t, networkKey: Fixture.network) }
        }
        #expect(throws: WireError.self) { try BundleArchive(decoding: Array(bytes.dropLast()), networkKey: Fixture.network) }
        #expect(throws: WireError.self) { try BundleArchive(decoding: Array("hello, this is not an archive".utf8), networkKey: Fixture.network) }
    }

    @Test func randomInputNeverTraps() {
        var g = SplitMix64(seed: 17)
        for _ in 0..<5_000 {
            var bytes = Fixture.randomBytes(Int(g.next() % 200), &g)
            if g.next() % 2 == 0 { bytes = BundleArchive.magic + bytes }
            #expect(throws: WireError.self) { try BundleArchive(decoding: bytes, networkKey: Fixture.network) }
        }
    }
}
