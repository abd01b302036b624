import CourierTooling
import CourierWire
import Testing

/// `DictionaryTrainer` (issue 16): a dictionary trained on one federation's messages compresses its other messages
/// better than no dictionary, is reproducible, and round-trips through a compressor under its own id.
@Suite struct DictionaryTrainingTests {
    /// Messages a water committee's federation might write: names and phrases recur, details change.
    static func messages(_ range: Range<Int>) -> [[UInt8]] {
        let villages = ["Sargalu", "Penjwen", "Garmik", "Shanakhse", "Khanke", "Qaraqosh", "Hasansham", "Zakho"]
        let goods = ["flour", "kerosene", "blankets", "water tanks", "bread", "baby milk", "antivenom"]
        return range.map { i in
            let v = villages[i % villages.count], g = goods[(i * 3) % goods.count]
            return Array("Water committee of \(v): distribution of \(g) moves to day \(i % 28 + 1) at \(7 + i % 5):00. Bring your ration card; the tanker from \(villages[(i + 3) % villages.count]) is \(i % 4 + 1) hours late.".utf8)
        }
    }

    @Test func aTrainedDictionaryCompressesOtherMessagesOfTheSameFederation() throws {
        let train = Self.messages(0..<300)
        let bytes = try DictionaryTrainer.train(train, capacity: 4_096)
        #expect(bytes.count > 256 && bytes.count <= 4_096)
        #expect(Array(bytes.prefix(4)) == [0x37, 0xA4, 0x30, 0xEC], "a formatted zstd dictionary (RFC 8878 §5)")
        #expect(try DictionaryTrainer.train(train, capacity: 4_096) == bytes, "the same samples give the same bytes")
        let federation = BodyCompressor(dictionary: CompressionDictionary(id: 2, bytes: bytes))
        let none = BodyCompressor(dictionary: nil)
        var with = 0, without = 0
        for m in Self.messages(1_000..<1_040) {
            let (code, body) = federation.compress(m)
            #expect(code == .zstdDictionary(2))
            #expect(try federation.decompress(body, code) == m)
            #expect(throws: WireError.unknownDictionary(2)) { try none.decompress(body, code) }
            with += body.count
            without += none.compress(m).1.count
        }
        #expect(with * 2 < without, "\(with) B with the dictionary, \(without) B without")
    }

    /// The trainer searches COVER's parameters (session 9): on the corpus's messages (four in five to train, the fifth
    /// to measure) its dictionary compresses the messages it never saw to fewer bytes than libzstd's default trainer's
    /// of the same size (about 6% fewer at 8 KiB when measured: 32,993 B against 34,969 B).
    @Test func theTunedTrainerBeatsLibzstdsDefaultOnMessagesItNeverSaw() throws {
        let all = try Corpus.load(directory: Fixture.repoPath("corpus")).map(\.utf8)
        let train = all.enumerated().filter { $0.offset % 5 != 4 }.map(\.element)
        let held = all.enumerated().filter { $0.offset % 5 == 4 }.map(\.element)
        func total(_ bytes: [UInt8]) throws -> Int {
            let c = BodyCompressor(dictionary: CompressionDictionary(id: 2, bytes: bytes))
            var sum = 0
            for m in held {
                let (code, body) = c.compress(m)
                #expect(try c.decompress(body, code) == m)
                sum += body.count
            }
            return sum
        }
        let tuned = try total(DictionaryTrainer.train(train, capacity: 8_192))
        let plain = try total(DictionaryTrainer.trainWithLibzstdDefaults(train, capacity: 8_192))
        #expect(tuned < plain, "\(held.count) messages: \(tuned) B with the tuned trainer's dictionary, \(plain) B with libzstd's default trainer's")
    }

    @Test func tooFewMessagesAreRefusedWithAReason() {
        let e = #expect(throws: DictionaryTrainingError.self) { try DictionaryTrainer.train(Self.messages(0..<3), capacity: 4_096) }
        #expect(e?.description.contains("3 messages") == true)
    }
}
