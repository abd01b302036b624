import CourierTooling
import CourierWire
import Testing

@Suite struct BundleTests {
    @Test func randomBundlesRoundTrip() throws {
        var g = SplitMix64(seed: 7)
        let dests: [Destination] = [.everyone, .group(GroupID(name: "clinic")), .node(Fixture.b.nodeID.short)]
        for i in 0..<300 {
            let kind = Kind(code: UInt8(g.next() % 16))
            let len = Int(g.next() % 700)
            let content = Fixture.randomBytes(len, &g)
            var opts = BundleOptions(
                kind: kind, lifetime: UInt32(1 + g.next() % 100_000), sign: g.next() % 2 == 0,
                respondBy: g.next() % 3 == 0 ? UInt32(g.next() % 5000) : nil,
                reference: g.next() % 4 == 0 ? try BundleID(origin: ShortID(7), created: 99, sequence: 3) : nil,
                priority: g.next() % 3 == 0 ? PriorityClass(rawValue: UInt8(g.next() % 4)) : nil,
                hopLimit: UInt8(g.next() % 16))
            if g.next() % 5 == 0 { opts.extensions = [Extension(type: UInt32(g.next() % 300), value: Fixture.randomBytes(Int(g.next() % 20), &g))] }
            let b = try CourierBundle.make(
                kind: kind, destination: dests[i % 3], content: content, origin: Fixture.a,
                created: UInt32(g.next() % (1 << 24)), sequence: UInt32(truncatingIfNeeded: g.next()), options: opts,
                compressor: Fixture.compressor)
            let decoded = try CourierBundle(decoding: b.encode())
            #expect(decoded == b)
            #expect(try decoded.content(compressor: Fixture.compressor) == content)
            #expect(decoded.isSigned == opts.sign)
            if opts.sign { #expect(decoded.verifySignature(originKeys: Fixture.a.publicKeys)) }
        }
    }

    @Test func relaysMayRewriteTheHopLimitWithoutBreakingTheSignature() throws {
        var b = try Fixture.bundle(kind: .alert, text: "Checkpoint on the Ranya road since dawn, use the valley track.")
        #expect(b.isSigned)
        b.hopLimit = 3
        let decoded = try CourierBundle(decoding: b.encode())
        #expect(decoded.hopLimit == 3)
        #expect(decoded.verifySignature(originKeys: Fixture.a.publicKeys))
    }

    @Test func forgedOrAlteredAlertsFailVerification() throws {
        let b = try Fixture.bundle(kind: .alert, text: "Well 3 is contaminated. Do not drink until tested.")
        // Another node's key does not verify it.
        #expect(!b.verifySignature(originKeys: Fixture.b.publicKeys))
        // Any change to signed bytes breaks it.
        var bytes = b.encode()
        for i in [1, 3, 8, bytes.count - 70] {
            var t = bytes
            t[i] ^= 0x20
            if let d = try? CourierBundle(decoding: t) { #expect(!d.verifySignature(originKeys: Fixture.a.publicKeys)) }
        }
        bytes[bytes.count - 1] ^= 1
        #expect(!(try CourierBundle(decoding: bytes)).verifySignature(originKeys: Fixture.a.publicKeys))
    }

    @Test func defaultsPerKind() throws {
        #expect(try Fixture.bundle(kind: .alert, text: "x").isSigned)
        #expect(try Fixture.bundle(kind: .receipt, text: "x").isSigned)
        #expect(!(try Fixture.bundle(kind: .grievance, text: "x").isSigned))
        #expect(Kind.alert.defaultPriority < Kind.aidRequest.defaultPriority)
        #expect(Kind.aidOffer.defaultPriority < Kind.grievance.defaultPriority)
        #expect(Kind.grievance.defaultPriority < Kind.minutes.defaultPriority)
    }

    @Test func endToEndMustNameTheRecipient() throws {
        #expect(throws: WireError.self) {
            try CourierBundle.make(
                kind: .text, destination: .node(Fixture.c.nodeID.short), content: [1], origin: Fixture.a, created: 1, sequence: 1,
                options: BundleOptions(kind: .text, encryptTo: Fixture.b.publicKeys), compressor: Fixture.compressor)
        }
    }

    @Test func endToEndNeedsASingleNode() throws {
        #expect(throws: WireError.self) {
            try CourierBundle.make(
                kind: .text, destination: .everyone, content: [1], origin: Fixture.a, created: 1, sequence: 1,
                options: BundleOptions(kind: .text, encryptTo: Fixture.b.publicKeys), compressor: Fixture.compressor)
        }
    }

    @Test func oversizedContentIsRefused() {
        #expect(throws: WireError.self) {
            try CourierBundle.make(
                kind: .minutes, destination: .everyone, content: [UInt8](repeating: 65, count: CourierBundle.maxContentSize + 1),
                origin: Fixture.a, created: 1, sequence: 1, options: BundleOptions(kind: .minutes),
                compressor: Fixture.compressor)
        }
    }

    @Test func bundleIDTextForm() throws {
        let id = try BundleID(origin: ShortID(0x3F9A_01C2), created: 1_523_041, sequence: 0)
        #expect(id.description == "3f9a01c2.1523041.0")
        #expect(BundleID("3f9a01c2.1523041.0") == id)
        #expect(BundleID("3f9a01c2.16777216.0") == nil)
        #expect(BundleID("nonsense") == nil)
        #expect(BundleID("+f9a01c2.1523041.0") == nil)
        #expect(ShortID(hex: "+0000001") == nil)
        #expect(GroupID(0x0a).description == "g000a")
        #expect(throws: WireError.self) { try BundleID(origin: ShortID(1), created: 1 << 24, sequence: 0) }
    }
}

@Suite struct CompressionTests {
    @Test func decompressionIsBounded() throws {
        // A zip bomb: 1 MiB of zeros compresses to a few dozen bytes.
        let z = Zstd()
        let bomb = z.compress([UInt8](repeating: 0, count: 1 << 20))
        #expect(bomb.count < 200)
        #expect(throws: WireError.self) { try z.decompress(bomb, limit: CourierBundle.maxContentSize) }
        // Its frame asks for a 1 MiB window: refused even when the output bound would allow it.
        #expect(throws: WireError.self) { try z.decompress(bomb, limit: 1 << 21) }
        // Within the 128 KiB window, the output bound decides.
        let big = z.compress([UInt8](repeating: 7, count: 100_000))
        #expect(throws: WireError.self) { try z.decompress(big, limit: CourierBundle.maxContentSize) }
        #expect(try z.decompress(big, limit: 100_000).count == 100_000)
        // Exactly one frame: nothing empty, nothing after it, no second frame.
        let one = z.compress(Array("a short alert".utf8))
        #expect(try z.decompress(one, limit: 100) == Array("a short alert".utf8))
        #expect(throws: WireError.self) { try z.decompress([UInt8](), limit: 100) }
        #expect(throws: WireError.self) { try z.decompress(one + [0], limit: 100) }
        #expect(throws: WireError.self) { try z.decompress(one + one, limit: 100) }
        #expect(throws: WireError.self) { try z.decompress(one.dropLast(), limit: 100) }
        let b = CourierBundle(
            hopLimit: 1, kind: .text, destination: .everyone, id: try BundleID(origin: ShortID(1), created: 1, sequence: 1),
            lifetime: 10, compression: .zstd, body: bomb)
        #expect(throws: WireError.self) { try b.content(compressor: Fixture.compressor) }
    }

    @Test func incompressibleContentTravelsRaw() throws {
        var g = SplitMix64(seed: 3)
        let noise = Fixture.randomBytes(300, &g)
        let (c, body) = Fixture.compressor.compress(noise)
        #expect(c == .none)
        #expect(body == noise)
    }

    @Test func textUsesTheDictionaryAndShrinks() throws {
        let text = Array("Flood warning: the river is rising near the lower village. Move families and animals to high ground now.".utf8)
        let (c, body) = Fixture.compressor.compress(text)
        #expect(c == .zstdDictionary(1))
        #expect(body.count < text.count * 3 / 4)
    }

    @Test func garbageAndUnknownDictionariesAreTypedErrors() throws {
        var g = SplitMix64(seed: 11)
        for _ in 0..<500 {
            let junk = Fixture.randomBytes(Int(g.next() % 64), &g)
            _ = try? Fixture.compressor.decompress(junk, .zstd)
            _ = try? Fixture.compressor.decompress(junk, .zstdDictionary(1))
        }
        #expect(throws: WireError.unknownDictionary(9)) { try Fixture.compressor.decompress([1, 2], .zstdDictionary(9)) }
    }

    @Test func shippedDictionaryMatchesTheProtocolFile() throws {
        let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixture.repoPath("protocol/dictionaries/courier-1.zdict"))))
        #expect(onDisk == CompressionDictionary.courierDefault.bytes)
        #expect(onDisk.count > 1_000)
    }

    @Test func heldOutSplitIsNeverTrainedOn() throws {
        // The split is a pure function of the id; the benchmark set lives outside the training folder.
        let all = try Corpus.load(directory: Fixture.repoPath("corpus"))
        let held = all.filter(\.isHeldOut)
        #expect(held.count > all.count / 10 && held.count < all.count * 3 / 10)
        let bench = try Corpus.load(directory: Fixture.repoPath("corpus/bench"))
        #expect(Set(bench.map(\.id)).isDisjoint(with: Set(all.map(\.id))))
        #expect(Set(bench.map(\.lang)) == ["en", "ar", "ckb", "kmr"])
    }
}

import Foundation
