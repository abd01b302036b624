import CourierWire
import Testing

/// Federation dictionaries on the wire (SPEC 5.10, 6.6 type 5, 7.6): the dictionaries record, the label extension,
/// the shelf a compressor reads and writes with.
@Suite struct FederationDictionaryTests {
    static func dictionary() throws -> [UInt8] {
        try DictionaryTrainer.train(DictionaryTrainingTests.messages(0..<200), capacity: 2_048)
    }

    @Test func theDictionariesRecordRoundTripsAndIsTotal() throws {
        let holds = Record.dictionaries(DictionariesRecord(isRequest: false, entries: [.init(id: 7, fingerprint: 0x71f4), .init(id: 12, fingerprint: 0xbeef)]))
        let payload = Record.encode([holds])
        #expect(payload == [0x60, 0x07, 0x71, 0xf4, 0x0c, 0xbe, 0xef])
        #expect(try Record.decodeAll(payload[...]) == [holds])
        let ask = Record.dictionaries(DictionariesRecord(isRequest: true, entries: [.init(id: 7, fingerprint: 0)]))
        #expect(Record.encode([ask]) == [0x61, 0x07, 0x00, 0x00])
        #expect(try Record.decodeAll(Record.encode([ask, holds])[...]) == [ask, holds])
        #expect(try Record.decodeAll([0x60][...]) == [.dictionaries(DictionariesRecord(isRequest: false, entries: []))], "holding none")
        #expect(throws: WireError.self) { try Record.decodeAll([0x61][...]) }  // a request for nothing
        #expect(throws: WireError.self) { try Record.decodeAll([0x60, 0x07, 0x01][...]) }  // not a multiple of 3
        #expect(throws: WireError.self) { try Record.decodeAll([0x60, 0x01, 0x00, 0x00][...]) }  // dictionary 1 is not a federation one
        // B (0x02): the sender reads bare blocks (SPEC 5.10, 11.11); ignored in a request.
        #expect(try Record.decodeAll([0x62, 0x07, 0xab, 0xcd][...]) == [.dictionaries(DictionariesRecord(isRequest: false, entries: [.init(id: 7, fingerprint: 0xabcd)], readsBare: true))])
        #expect(Record.encode([.dictionaries(DictionariesRecord(isRequest: false, entries: [], readsBare: true))]) == [0x62])
        #expect(try Record.decodeAll([0x63, 0x07, 0x00, 0x00][...]) == [.dictionaries(DictionariesRecord(isRequest: true, entries: [.init(id: 7, fingerprint: 0)]))])
        #expect(try Record.decodeAll([0x64, 0x07, 0xab, 0xcd][...]) == [.unknown(type: 6, flags: 4, body: [0x07, 0xab, 0xcd])], "a reserved flag: a newer sender's")
    }

    @Test func theLabelIsCheckedAndABundleCarriesExactlyOne() throws {
        let label = try DictionaryLabel(id: 7, version: 300)
        #expect(label.asExtension.type == 5 && label.asExtension.isCritical)
        #expect(label.asExtension.value == [0x07, 0xac, 0x02])
        #expect(try DictionaryLabel(decoding: label.asExtension.value) == label)
        #expect(throws: WireError.self) { try DictionaryLabel(id: 1, version: 1) }
        #expect(throws: WireError.self) { try DictionaryLabel(decoding: [0x07, 0x01, 0x00]) }
        #expect(throws: WireError.self) { try DictionaryLabel(decoding: [0x07]) }
        let origin = NodeIdentity()
        var o = BundleOptions(kind: .dictionary)
        o.extensions = [label.asExtension, label.asExtension]
        let twice = try CourierBundle.make(kind: .dictionary, destination: .everyone, content: try Self.dictionary(), origin: origin,
                                           created: 1_000, sequence: 1, options: o, compressor: BodyCompressor())
        #expect(throws: WireError.self) { try DictionaryLabel.of(twice) }
        o.extensions = [label.asExtension]
        let once = try CourierBundle.make(kind: .dictionary, destination: .everyone, content: try Self.dictionary(), origin: origin,
                                          created: 1_000, sequence: 2, options: o, compressor: BodyCompressor())
        #expect(try DictionaryLabel.of(try CourierBundle(decoding: once.encode())) == label)
        #expect(once.isSigned, "dictionary bundles are origin-signed by default")
        #expect(Kind(code: 9) == .dictionary && Kind.dictionary.defaultPriority == .bulk)
    }

    @Test func aCompressorUsesAShelvedDictionaryOnlyWhenAskedAndReadsItWhenABodyNamesIt() throws {
        let bytes = try Self.dictionary()
        let shelf = DictionaryShelf()
        #expect(throws: WireError.self) { try shelf.put(id: 7, bytes: Array("not a dictionary at all, just words".utf8) + [UInt8](repeating: 0x41, count: 300)) }
        try shelf.put(id: 7, bytes: bytes)
        #expect(shelf.entries == [DictionariesRecord.Entry(id: 7, fingerprint: FederationDictionary.fingerprint(bytes))])
        let c = BodyCompressor(shelf: shelf)
        let m = DictionaryTrainingTests.messages(1_000..<1_001)[0]
        let (plain, plainBody) = c.compress(m)
        #expect(plain == .zstdDictionary(1), "not asked to use it: dictionary 1")
        let (code, body) = c.compress(m, also: [7])
        #expect(code == .zstdDictionary(7) && body.count < plainBody.count, "\(body.count) B with it, \(plainBody.count) B with dictionary 1")
        #expect(try c.decompress(body, code) == m)
        #expect(throws: WireError.unknownDictionary(7)) { try BodyCompressor().decompress(body, code) }
        #expect(c.compress(m, also: [8]).0 == .zstdDictionary(1), "an id not on the shelf is not tried")
        shelf.remove(id: 7)
        #expect(throws: WireError.unknownDictionary(7)) { try c.decompress(body, code) }
    }
}
