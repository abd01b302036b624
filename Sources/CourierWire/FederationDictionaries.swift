import CZstd
import Crypto
import Synchronization

/// Record type 6 (SPEC 5.10): the federation dictionaries the sender holds (`isRequest` false: every one, by id and
/// fingerprint), or those it lacks and asks its neighbours for (`isRequest` true; fingerprint 0: any with that id).
public struct DictionariesRecord: Sendable, Hashable {
    public struct Entry: Sendable, Hashable, Comparable {
        public let id: UInt8
        public let fingerprint: UInt16
        public init(id: UInt8, fingerprint: UInt16) {
            self.id = id
            self.fingerprint = fingerprint
        }
        public static func < (a: Self, b: Self) -> Bool { (a.id, a.fingerprint) < (b.id, b.fingerprint) }
        /// Not on the wire: the mark a node keeps among a neighbour's holdings (id 0 is no dictionary) when its record
        /// set B, so `relay send` and the engine alike know it reads bare blocks.
        public static let readsBareMark = Entry(id: 0, fingerprint: 0)
    }
    public var isRequest: Bool
    public var entries: [Entry]
    /// Flag B (0x02, SPEC 5.10, 11.11), only without Q: the sender reads bodies in the bare block form (7.2). An older
    /// node skips a record with B as unknown, so a node sets it only on a link whose every neighbour announced
    /// capability bit 6.
    public var readsBare: Bool
    public init(isRequest: Bool, entries: [Entry], readsBare: Bool = false) {
        self.isRequest = isRequest
        self.entries = entries
        self.readsBare = readsBare && !isRequest
    }
}

/// Extension type 5 (SPEC 7.6), critical: the wire id (2-255) and version of the dictionary a dictionary bundle
/// (kind 9) carries. Critical, so a node from before federation dictionaries stores and forwards the bundle but
/// never puts it in its inbox (6.6).
public struct DictionaryLabel: Sendable, Hashable {
    public static let extensionType: UInt32 = 5
    public let id: UInt8
    public let version: UInt32

    public init(id: UInt8, version: UInt32) throws(WireError) {
        guard id >= 2 else { throw .invalidValue(field: "dictionary id", reason: "federation dictionaries are numbered 2-255") }
        self.id = id
        self.version = version
    }

    /// Value: id (u8) || version (varint, 32 bits); nothing may follow.
    public init(decoding value: [UInt8]) throws(WireError) {
        var r = ByteReader(value[...])
        let id = try r.u8("dictionary.id")
        let version = try r.varint32("dictionary.version")
        guard r.isAtEnd else { throw .trailingBytes(field: "dictionary label", count: r.remaining) }
        try self.init(id: id, version: version)
    }

    public var asExtension: Extension {
        var w = ByteWriter(capacity: 6)
        w.u8(self.id)
        w.varint(self.version)
        return Extension(type: Self.extensionType, value: w.bytes)
    }

    /// The label of a dictionary bundle: exactly one type-5 extension.
    public static func of(_ b: CourierBundle) throws(WireError) -> DictionaryLabel {
        let found = b.extensions.filter { $0.type == Self.extensionType }
        guard b.kind == .dictionary, found.count == 1 else {
            throw .invalidValue(field: "dictionary bundle", reason: "a kind-9 bundle with exactly one dictionary extension (type 5)")
        }
        return try DictionaryLabel(decoding: found[0].value)
    }
}

public enum FederationDictionary {
    /// The first two bytes of SHA-256 of the dictionary, big-endian: tells two dictionaries under one id apart.
    public static func fingerprint(_ bytes: [UInt8]) -> UInt16 {
        let d = Array(SHA256.hash(data: bytes))
        return UInt16(d[0]) << 8 | UInt16(d[1])
    }

    /// Smallest and largest dictionary a bundle may carry.
    public static let minSize = 256
    public static let maxSize = CourierBundle.maxContentSize

    /// A formatted zstd dictionary (magic `37 a4 30 ec`, RFC 8878 §5) that libzstd loads for both directions.
    public static func check(_ bytes: [UInt8]) throws(WireError) {
        guard bytes.count >= Self.minSize, bytes.count <= Self.maxSize else {
            throw .invalidValue(field: "dictionary", reason: "\(bytes.count) bytes: a dictionary has \(Self.minSize)-\(Self.maxSize)")
        }
        guard bytes.prefix(4).elementsEqual([0x37, 0xa4, 0x30, 0xec]) else {
            throw .invalidValue(field: "dictionary", reason: "not a zstd dictionary (no 37 a4 30 ec magic)")
        }
        let ok: Bool = bytes.withUnsafeBytes { raw in
            guard let c = ZSTD_createCDict(raw.baseAddress, bytes.count, Zstd.level) else { return false }
            ZSTD_freeCDict(c)
            guard let d = ZSTD_createDDict(raw.baseAddress, bytes.count) else { return false }
            ZSTD_freeDDict(d)
            return true
        }
        guard ok else { throw .invalidValue(field: "dictionary", reason: "libzstd cannot load it (damaged tables)") }
    }
}

/// The federation dictionaries a node holds, by wire id (2-255), shared by every compressor made with it: the
/// engine adds one as it arrives and `BodyCompressor` reads and writes with it at once.
public final class DictionaryShelf: Sendable {
    struct Held: Sendable {
        let dictionary: CompressionDictionary
        let codec: Zstd
        let fingerprint: UInt16
    }
    private let held = Mutex<[UInt8: Held]>([:])

    public init() {}

    /// Puts a dictionary on the shelf under `id` (replacing another with that id). Checked first (`FederationDictionary.check`).
    public func put(id: UInt8, bytes: [UInt8]) throws(WireError) {
        try FederationDictionary.check(bytes)
        let fp = FederationDictionary.fingerprint(bytes)
        if self.held.withLock({ $0[id]?.fingerprint == fp }) { return }
        let d = CompressionDictionary(id: id, bytes: bytes)
        let h = Held(dictionary: d, codec: Zstd(dictionary: d), fingerprint: fp)
        self.held.withLock { $0[id] = h }
    }

    public func remove(id: UInt8) { self.held.withLock { _ = $0.removeValue(forKey: id) } }

    /// Another shelf holding what this one holds now (a simulation forked at a moment: each branch shelves on its own).
    public func copy() -> DictionaryShelf {
        let copy = DictionaryShelf()
        let held = self.held.withLock { $0 }
        copy.held.withLock { $0 = held }
        return copy
    }

    /// What is on the shelf, by id.
    public var entries: [DictionariesRecord.Entry] {
        self.held.withLock { h in h.map { DictionariesRecord.Entry(id: $0.key, fingerprint: $0.value.fingerprint) }.sorted() }
    }

    public func holds(_ id: UInt8) -> Bool { self.held.withLock { $0[id] != nil } }

    func codec(_ id: UInt8) -> Zstd? { self.held.withLock { $0[id]?.codec } }
}
