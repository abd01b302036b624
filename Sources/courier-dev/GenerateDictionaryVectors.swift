import CourierTooling
import CourierWire
import Foundation

/// dictionaries.json (SPEC 5.10, 7.6): a federation dictionary trained on 300 notices of one federation, the
/// signed dictionary bundle node A publishes it in, a text compressed with it, and dictionaries records (what a node
/// holds, what it asks for).
struct DictionaryVectorsFile: Codable {
    struct RecordVector: Codable {
        var name: String
        var payloadHex: String
        var record: Vectors.RecordJSON
    }
    var description: String
    /// The dictionary (a zstd dictionary, RFC 8878 §5), its wire id, version and fingerprint (SHA-256, first 2 bytes).
    var dictionaryHex: String
    var id: UInt8
    var version: UInt32
    var fingerprint: String
    /// Node A's dictionary bundle: kind 9, to everyone, signed, extension type 5 = id || version (varint).
    var dictionaryBundleHex: String
    var labelHex: String
    /// A text from A to everyone compressed with the dictionary (compression 2, dictionary id `id`).
    var textBundleHex: String
    var textUtf8: String
    /// The same text from A to node B (unencrypted) in the bare block form (SPEC 7.2, 11.11): compression 2,
    /// dictionary byte 00, then `id`; the body is the block of `textBundleHex`'s frame, without its 5 header bytes.
    var bareTextBundleHex: String
    /// The bare text with dictionary byte 00 followed by 00 (no dictionary 0): the bundle decoder rejects it.
    var bareZeroIdBundleHex: String
    /// The bare text with its block cut to its first 4 bytes: the bundle decodes, its content does not.
    var bareDamagedBundleHex: String
    var records: [RecordVector]
}

extension GenerateVectors {
    func dictionaryVectors(a: NodeIdentity, b: NodeIdentity) throws {
        // One federation's traffic: a water committee's notices, names and phrases recurring, details changing.
        let villages = ["Sargalu", "Penjwen", "Garmik", "Shanakhse", "Khanke", "Qaraqosh", "Hasansham", "Zakho"]
        let goods = ["flour", "kerosene", "blankets", "water tanks", "bread", "baby milk", "antivenom"]
        let messages = (0..<300).map { i in
            "Water committee of \(villages[i % 8]): distribution of \(goods[(i * 3) % 7]) moves to day \(i % 28 + 1) at \(7 + i % 5):00. Bring your ration card; the tanker from \(villages[(i + 3) % 8]) is \(i % 4 + 1) hours late."
        }
        let dictionary = try DictionaryTrainer.train(messages.map { Array($0.utf8) }, capacity: 2_048)
        let label = try DictionaryLabel(id: 7, version: 1)
        var opts = BundleOptions(kind: .dictionary)
        opts.extensions = [label.asExtension]
        let dictBundle = try CourierBundle.make(kind: .dictionary, destination: .everyone, content: dictionary, origin: a,
                                                created: 1_523_050, sequence: 9, options: opts, compressor: BodyCompressor())
        let shelf = DictionaryShelf()
        try shelf.put(id: label.id, bytes: dictionary)
        // Another notice of the same federation (not trained on).
        let text = "Water committee of Zakho: distribution of bread moves to day 3 at 9:00. Bring your ration card; the tanker from Garmik is 2 hours late."
        var textOpts = BundleOptions(kind: .text)
        textOpts.dictionaries = [label.id]
        let textBundle = try CourierBundle.make(kind: .text, destination: .everyone, content: Array(text.utf8), origin: a,
                                                created: 1_523_051, sequence: 10, options: textOpts, compressor: BodyCompressor(shelf: shelf))
        guard textBundle.compression == .zstdDictionary(label.id) else { throw GenerateError("the text did not compress best with the federation dictionary: \(textBundle.compression), \(textBundle.body.count) B; with it: \(BodyCompressor(shelf: shelf).compress(Array(text.utf8), also: [label.id]).1.count); dictionary of \(dictionary.count) B on \(messages.count) messages") }
        var bareOpts = textOpts
        bareOpts.bareBlocks = true
        let bare = try CourierBundle.make(kind: .text, destination: .node(b.nodeID.short), content: Array(text.utf8), origin: a,
                                          created: 1_523_051, sequence: 11, options: bareOpts, compressor: BodyCompressor(shelf: shelf))
        guard bare.compression == .zstdBlock(label.id), bare.body == Array(textBundle.body.dropFirst(5)) else {
            throw GenerateError("the bare form is not the frame's block: \(bare.compression)")
        }
        let bareBytes = bare.encode()
        let header = bare.encodeHeader()
        // No extensions: the header ends with the dictionary byte 00 and the id.
        let at = header.count - 2
        guard header[at] == 0, header[at + 1] == label.id else { throw GenerateError("the bare header does not end 00 \(label.id)") }
        var zeroId = bareBytes
        zeroId[at + 1] = 0
        let damaged = header + Array(bare.body.prefix(4))
        let fp = FederationDictionary.fingerprint(dictionary)
        let records: [(String, Record)] = [
            ("holds dictionary 7 and 12", .dictionaries(DictionariesRecord(isRequest: false, entries: [
                .init(id: 7, fingerprint: fp), .init(id: 12, fingerprint: 0xbeef)]))),
            ("asks for dictionary 7 (any fingerprint)", .dictionaries(DictionariesRecord(isRequest: true, entries: [.init(id: 7, fingerprint: 0)]))),
            ("holds none", .dictionaries(DictionariesRecord(isRequest: false, entries: []))),
        ]
        let file = DictionaryVectorsFile(
            description: "Federation dictionaries (SPEC 5.10, 7.6): A's dictionary bundle, a text compressed with it, dictionaries records.",
            dictionaryHex: dictionary.hex, id: label.id, version: label.version, fingerprint: String(format: "%04x", fp),
            dictionaryBundleHex: dictBundle.encode().hex, labelHex: label.asExtension.value.hex,
            textBundleHex: textBundle.encode().hex, textUtf8: text,
            bareTextBundleHex: bareBytes.hex, bareZeroIdBundleHex: zeroId.hex, bareDamagedBundleHex: damaged.hex,
            records: records.map { DictionaryVectorsFile.RecordVector(name: $0.0, payloadHex: Record.encode([$0.1]).hex, record: Vectors.json($0.1)) })
        try self.write(file, "dictionaries.json")
    }
}

struct GenerateError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { self.description = d }
}
