import CourierWire
import Testing

/// The bare block form (SPEC 7.2, 11.11): compression 2 with dictionary byte 00 and the dictionary id, the body the one
/// compressed block of the dictionary's frame without the frame's 2-byte header and the block's 3-byte header.
@Suite struct BareBlockTests {
    static let text = Array("Water committee of Zakho: the tanker from Garmik is 2 hours late; distribution of bread moves to day 4 at 9:00.".utf8)

    @Test func theBareFormIsTheFramesBlockAndRoundTrips() throws {
        let c = Fixture.compressor
        let (framed, frame) = c.compress(Self.text)
        #expect(framed == .zstdDictionary(1), "without `bare`: the frame, as before")
        let (code, block) = c.compress(Self.text, bare: true)
        #expect(code == .zstdBlock(1))
        #expect(block == Array(frame.dropFirst(5)), "the frame less its 2 + 3 header bytes")
        #expect(BareBlock.strip(frame) == block)
        #expect(try BareBlock.frame(block).count == frame.count)
        #expect(try c.decompress(block, .zstdBlock(1)) == Self.text)

        // In a bundle to B: the header carries 00 01, one byte more than the framed bundle's; the bundle 4 B smaller.
        var o = BundleOptions(kind: .text)
        o.bareBlocks = true
        let bare = try CourierBundle.make(kind: .text, destination: .node(Fixture.b.nodeID.short), content: Self.text, origin: Fixture.a,
                                          created: 1_523_051, sequence: 3, options: o, compressor: c)
        var p = o
        p.bareBlocks = false
        let framedBundle = try CourierBundle.make(kind: .text, destination: .node(Fixture.b.nodeID.short), content: Self.text, origin: Fixture.a,
                                                  created: 1_523_051, sequence: 3, options: p, compressor: c)
        #expect(Array(bare.encodeHeader().suffix(2)) == [0x00, 0x01])
        #expect(bare.encode().count == framedBundle.encode().count - 4)
        let decoded = try CourierBundle(decoding: bare.encode())
        #expect(decoded == bare)
        #expect(decoded.encode() == bare.encode())
        #expect(try decoded.content(compressor: c) == Self.text)

        // End-to-end encrypted: the AAD covers the header with its 00 01.
        o.encryptTo = Fixture.b.publicKeys
        let sealed = try CourierBundle.make(kind: .text, destination: .node(Fixture.b.nodeID.short), content: Self.text, origin: Fixture.a,
                                            created: 1_523_051, sequence: 4, options: o, compressor: c)
        #expect(sealed.compression == .zstdBlock(1))
        let got = try CourierBundle(decoding: sealed.encode())
        #expect(try got.content(compressor: c, recipient: Fixture.b, originKeys: Fixture.a.publicKeys) == Self.text)
    }

    @Test func aFederationDictionaryGoesBareToo() throws {
        let shelf = DictionaryShelf()
        try shelf.put(id: 7, bytes: try FederationDictionaryTests.dictionary())
        let c = BodyCompressor(shelf: shelf)
        let m = Array(DictionaryTrainingTests.messages(300..<301)[0])
        let (framed, frame) = c.compress(m, also: [7])
        try #require(framed == .zstdDictionary(7), "the test needs a message the federation dictionary compresses best: \(framed)")
        let (code, block) = c.compress(m, also: [7], bare: true)
        #expect(code == .zstdBlock(7) && block == Array(frame.dropFirst(5)))
        #expect(try c.decompress(block, .zstdBlock(7)) == m)
        // A reader without dictionary 7: unknown dictionary 7 (kept for it, SPEC 7.6 rule 6), not 0.
        #expect(throws: WireError.unknownDictionary(7)) { try Fixture.compressor.decompress(block, .zstdBlock(7)) }
    }

    @Test func contentThatDoesNotCompressStaysRaw() {
        var g = SplitMix64(seed: 16)
        let random = (0..<120).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        #expect(Fixture.compressor.compress(random, bare: true).0 == .none)
    }

    @Test func damagedBareBlocksGiveTypedErrors() throws {
        let c = Fixture.compressor
        let block = c.compress(Self.text, bare: true).1
        #expect(throws: WireError.decompressionFailed("empty bare block")) { try c.decompress([], .zstdBlock(1)) }
        #expect(throws: WireError.self) { try c.decompress(Array(block.prefix(4)), .zstdBlock(1)) }
        #expect(throws: WireError.self) { try c.decompress(block + [0], .zstdBlock(1)) }
        #expect(throws: WireError.self) { try c.decompress([UInt8](repeating: 0, count: 128 * 1024 + 1), .zstdBlock(1)) }
        for i in 0..<block.count {
            var junk = block
            junk[i] ^= 0xff
            // A flipped byte reads as some content or a typed error, never a crash or more than the bound.
            do { _ = try c.decompress(junk, .zstdBlock(1)) } catch { _ = error }
        }
        // Dictionary byte 00 then 00: the bundle decoder rejects it; 00 at the end: truncated.
        var o = BundleOptions(kind: .text)
        o.bareBlocks = true
        let b = try CourierBundle.make(kind: .text, destination: .node(Fixture.b.nodeID.short), content: Self.text, origin: Fixture.a,
                                       created: 1_523_051, sequence: 5, options: o, compressor: c)
        var bytes = b.encode()
        let at = b.encodeHeader().count - 1
        bytes[at] = 0
        #expect(throws: WireError.invalidValue(field: "bundle.dictionary", reason: "a bare block names dictionary 1-255, not 0")) {
            try CourierBundle(decoding: bytes)
        }
        #expect(throws: WireError.self) { try CourierBundle(decoding: Array(b.encodeHeader().dropLast())) }
    }
}
