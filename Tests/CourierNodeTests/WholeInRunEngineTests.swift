import CourierMedium
import CourierNode
import CourierWire
import Testing

/// A relay's own bundle whose ordinary form overfills a packet goes in a run (SPEC 5.11), whole or cut across two
/// packets (5.12), to a neighbour that reads runs and cuts, instead of as fragments: each fragment repeats the next hop
/// and transfer number and carries the bundle in its ordinary form (origin, destination, lifetime). An older neighbour
/// still gets fragments.
@Suite(.timeLimit(.minutes(15))) struct WholeInRunEngineTests {
    static let runs: UInt8 = 1 | AnnounceRecord.compact | AnnounceRecord.runs
    static let cuts: UInt8 = Self.runs | AnnounceRecord.cuts

    /// Submits one text of `size` random bytes (nothing to compress) to a neighbour announcing `caps`; what went out.
    func send(size: Int, caps: UInt8) throws -> (bundle: [UInt8], peer: ShortID, out: EngineHarness.Out) {
        let h = try EngineHarness(properties: BundleRunEngineTests.serial)
        var (p, all) = h.addPeer(capabilities: caps | AnnounceRecord.hello)
        all.packets += h.run(for: 5).packets
        var g = SplitMix64(seed: UInt64(size))
        let content = (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let (id, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: content, now: h.now)
        all.packets += h.read(out).packets
        all.packets += h.run(for: 5).packets
        let bytes = try #require(try h.store.bundle(id)?.data)
        return (bytes, p.short, all)
    }

    static func pieces(_ out: EngineHarness.Out) -> [RunPiece] { out.records.compactMap { if case .piece(let x) = $0 { x } else { nil } } }

    @Test func aBundleWhoseRunFormFitsOnePacketGoesWholeNotInFragments() throws {
        let (bundle, peer, out) = try self.send(size: 147, caps: Self.runs)
        // The precondition: its ordinary form does not fit one packet (the fragmenter cuts it).
        try #require(try Fragmenter.plan(bundleSize: bundle.count, mtu: 255, transfer: 1, nextHop: peer, wantAck: true).count > 1,
                     "a bundle of \(bundle.count) B fits one packet whole: the test needs a larger one")
        #expect(out.fragments.isEmpty, "sent as \(out.fragments.count) fragments")
        #expect(Set(out.bundles.filter { $0.nextHop == peer }.map(\.bundle)) == [bundle], "not sent whole in one record (sent again, unacknowledged, as often as it likes)")
    }

    @Test func aBundleWhoseRunFormFitsTwoPacketsGoesCutToANeighbourThatReadsCuts() throws {
        let (bundle, peer, out) = try self.send(size: 300, caps: Self.cuts)
        try #require(try Fragmenter.plan(bundleSize: bundle.count, mtu: 255, transfer: 1, nextHop: peer, wantAck: true).count > 1)
        #expect(out.fragments.isEmpty, "sent as \(out.fragments.count) fragments")
        let pieces = Self.pieces(out)
        let head = try #require(pieces.first { $0.isHead }, "not cut: \(out.packets.map(\.count))")
        let rest = try #require(pieces.first { !$0.isHead && $0.transfer == head.transfer })
        // Joined by the neighbour as the engine's own: the bundle, byte for byte.
        let origin = try CourierBundle(decoding: bundle).origin
        #expect(try RunPiece.join(head: head, rest: rest, origin: origin) == bundle)
    }

    @Test func olderNeighboursStillGetFragments() throws {
        // Reads runs but not cuts: a bundle too large for one packet in any form goes in fragments.
        let big = try self.send(size: 300, caps: Self.runs)
        #expect(!big.out.fragments.isEmpty)
        #expect(Self.pieces(big.out).isEmpty)
        // Reads neither runs nor cuts (compact records only): fragments, as before.
        let small = try self.send(size: 147, caps: 1 | AnnounceRecord.compact)
        #expect(!small.out.fragments.isEmpty)
        #expect(small.out.bundles.filter { $0.nextHop == small.peer }.isEmpty)
    }

    /// Made whole for a run, then the neighbour announces again without runs or compact records (an older version
    /// restarted there): the bundle no longer fits a packet as it would go (the ordinary form), and the engine cuts it into fragments under a new transfer number.
    @Test func aNeighbourThatStopsReadingRunsGetsTheBundleInFragments() throws {
        let h = try EngineHarness(properties: BundleRunEngineTests.serial)
        let (p, _) = h.addPeer(capabilities: Self.runs | AnnounceRecord.hello)
        h.run(for: 5)
        var g = SplitMix64(seed: 147)
        let content = (0..<147).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let (_, submitted) = try h.node.submit(kind: .text, destination: .node(p.short), content: content, now: h.now)
        var first = h.read(submitted)
        first.packets += h.run(for: 1).packets
        let whole = try #require(first.bundles.first { $0.nextHop == p.short }, "not sent whole first")
        #expect(first.fragments.isEmpty)
        let k = p.identity.publicKeys
        h.receive(from: p, [.announce(AnnounceRecord(capabilities: 1 | AnnounceRecord.hello, signingKey: k.signing, agreementKey: k.agreement))], announce: true)
        let later = h.run(for: 120)
        let fragments = later.fragments.filter { $0.nextHop == p.short }
        try #require(!fragments.isEmpty, "not sent again in fragments: \(later.records.map { "\($0)".prefix(60) })")
        #expect(fragments.allSatisfy { $0.transfer != whole.transfer }, "fragments under the transfer number of the whole record")
        // One transfer's fragments, by index (each may have gone more than once): the bundle, byte for byte.
        var byIndex: [Int: [UInt8]] = [:]
        for f in fragments where f.transfer == fragments[0].transfer { byIndex[Int(f.index)] = f.data }
        #expect(byIndex.count == Int(fragments[0].count))
        #expect(byIndex.keys.sorted().flatMap { byIndex[$0]! } == whole.bundle)
    }
}
