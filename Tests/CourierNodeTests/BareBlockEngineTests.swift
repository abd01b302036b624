import CourierNode
import CourierWire
import Testing

/// The bare block form in the engine (SPEC 7.2, 11.11): a bundle made here for a neighbour whose announce set
/// capability bit 6 goes bare (4 B less with a dictionary); for an older neighbour, framed as before; a bare bundle
/// addressed here is read and delivered.
@Suite(.timeLimit(.minutes(20))) struct BareBlockEngineTests {
    static let message = "Water committee of Zakho: the tanker from Garmik is 2 hours late; distribution of bread moves to day 4 at 9:00."

    func made(caps: UInt8) throws -> (bundle: CourierBundle, peer: EngineHarness.Peer, origin: NodePublicKeys) {
        let h = try EngineHarness()
        let (p, _) = h.addPeer(capabilities: caps)
        h.run(for: 2)
        var o = BundleOptions(kind: .text, encryptTo: p.identity.publicKeys)
        o.sign = false
        let (id, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array(Self.message.utf8), options: o, now: h.now)
        let data = try #require(try h.store.bundle(id)?.data)
        return (try CourierBundle(decoding: data), p, h.me.publicKeys)
    }

    @Test func aNeighbourThatReadsBareBlocksGetsOneAndReadsIt() throws {
        let (b, p, origin) = try self.made(caps: 1 | AnnounceRecord.bareBlocks)
        #expect(b.compression == .zstdBlock(1), "\(b.compression)")
        #expect(b.isEncrypted)
        #expect(try b.content(compressor: BodyCompressor(), recipient: p.identity, originKeys: origin) == Array(Self.message.utf8))
    }

    @Test func anOlderNeighbourGetsTheFrame() throws {
        let (b, _, _) = try self.made(caps: 1 | AnnounceRecord.compact | AnnounceRecord.runs | AnnounceRecord.cuts)
        #expect(b.compression == .zstdDictionary(1), "\(b.compression)")
    }

    @Test func theEngineAnnouncesBit6AndReadsABareBundleAddressedToIt() throws {
        let h = try EngineHarness()
        let (p, first) = h.addPeer(capabilities: 1 | AnnounceRecord.hello)
        let announced = (first.records + h.run(for: 3).records).compactMap { if case .announce(let a) = $0 { a } else { nil } }
        #expect(announced.contains { $0.capabilities & AnnounceRecord.bareBlocks != 0 }, "\(announced.map(\.capabilities))")
        p.sequence += 1
        var o = BundleOptions(kind: .text, sign: true)
        o.bareBlocks = true
        let b = try CourierBundle.make(kind: .text, destination: .node(h.me.nodeID.short), content: Array(Self.message.utf8), origin: p.identity,
                                       created: CourierTime.minutes(unixSeconds: Int64(h.now)), sequence: p.sequence, options: o, compressor: BodyCompressor())
        try #require(b.compression == .zstdBlock(1))
        let got = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 3, bundle: b.encode()))])
        let after = got.delivered.isEmpty ? h.run(for: 2) : got
        #expect(after.delivered.contains { $0.id == b.id && $0.text == Self.message }, "\(after.delivered) \(got.events)")
    }

    static func dictionaryRecords(_ o: EngineHarness.Out) -> [DictionariesRecord] {
        o.records.compactMap { if case .dictionaries(let d) = $0, !d.isRequest { d } else { nil } }
    }

    /// `relay send` has no engine: it learns that a node reads bare blocks from the stored dictionaries record with B.
    @Test func aStoredRecordWithBMakesRelaySendGoBare() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let maker = BundleMaker(identity: h.me, store: h.store)
        let before = try maker.make(kind: .text, destination: .node(p.short), content: Array(Self.message.utf8), options: nil, now: h.now)
        #expect(before.compression == .zstdDictionary(1), "no B heard: framed")
        h.receive(from: p, [.dictionaries(DictionariesRecord(isRequest: false, entries: [], readsBare: true))])
        let after = try maker.make(kind: .text, destination: .node(p.short), content: Array(Self.message.utf8), options: nil, now: h.now)
        #expect(after.compression == .zstdBlock(1), "\(after.compression)")
        #expect(after.encode().count == before.encode().count - 4)
        // A flood never goes bare (older nodes may read it).
        let flood = try maker.make(kind: .text, destination: .everyone, content: Array(Self.message.utf8), options: nil, now: h.now)
        #expect(flood.compression == .zstdDictionary(1))
        // It says B no more (an older version restarted there): framed again.
        h.receive(from: p, [.dictionaries(DictionariesRecord(isRequest: false, entries: []))])
        #expect(try maker.make(kind: .text, destination: .node(p.short), content: Array(Self.message.utf8), options: nil, now: h.now).compression == .zstdDictionary(1))
    }

    /// B goes in the dictionaries record only on a link whose every neighbour announced bit 6: an older one would skip
    /// the whole record and forget what this node holds.
    @Test func theRecordSaysBOnlyWhenEveryNeighbourOnTheLinkReadsBareBlocks() throws {
        let h = try EngineHarness()
        let (p, _) = h.addPeer(capabilities: 1 | AnnounceRecord.bareBlocks)
        let dict = try DictionaryEngineTests.dictionary()
        var out = h.receive(from: p, [.bundle(BundleRecord(bundle: try DictionaryEngineTests.dictionaryBundle(p, dict, at: h.now).encode()))])
        out.packets += h.run(for: 5).packets
        let first = Self.dictionaryRecords(out)
        try #require(!first.isEmpty, "no dictionaries record after taking a dictionary")
        #expect(first.allSatisfy { $0.readsBare }, "\(first)")
        // An older neighbour joins the link (hello: the node announces back, its record with it).
        var (_, joined) = h.addPeer(capabilities: 1 | AnnounceRecord.hello)
        joined.packets += h.run(for: 30).packets
        let later = Self.dictionaryRecords(joined)
        try #require(!later.isEmpty, "no dictionaries record with the announce")
        #expect(later.allSatisfy { !$0.readsBare }, "\(later)")
    }
}
