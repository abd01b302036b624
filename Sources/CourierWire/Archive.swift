import Crypto

/// A bundle archive: bundles written to a file for sneakernet (a USB stick carried between relays), SPEC 17.
///
///     magic "CBA1" | flags u8 (0) | created u32 (Courier minutes) | writer node id (16)
///     | count varint | count × (length varint, bundle encoding) | HMAC-SHA256 tag (32)
///
/// The tag is keyed by `derive("archive")` of the network key: only a member of the federation can write an
/// archive another member accepts, and any change to the file is detected before one bundle is read.
public struct BundleArchive: Sendable, Equatable {
    public static let magic: [UInt8] = [0x43, 0x42, 0x41, 0x31]
    public static let tagSize = 32
    /// At most this many bundles in one archive (about 4 GB of the largest bundles: more than any stick needs).
    public static let maxCount = 65_536

    public var created: UInt32
    public var writer: NodeID
    /// Encoded bundles (section 6), each as stored by the writer.
    public var bundles: [[UInt8]]

    public init(created: UInt32, writer: NodeID, bundles: [[UInt8]]) {
        self.created = created
        self.writer = writer
        self.bundles = bundles
    }

    static func key(_ network: NetworkKey) -> SymmetricKey { network.derive("archive") }

    public func encoded(networkKey: NetworkKey) -> [UInt8] {
        var w = ByteWriter(capacity: 32 + self.bundles.reduce(0) { $0 + $1.count + 3 })
        w.append(Self.magic)
        w.u8(0)
        w.u32(self.created)
        w.append(self.writer.bytes)
        w.varint(self.bundles.count)
        for b in self.bundles {
            w.varint(b.count)
            w.append(b)
        }
        return Self.seal(w.bytes, networkKey: networkKey)
    }

    /// `body` followed by its tag: what `encoded` ends with. (The fuzz target uses it to reach the framing
    /// decoder with arbitrary bodies.)
    public static func seal(_ body: [UInt8], networkKey: NetworkKey) -> [UInt8] {
        body + Array(HMAC<SHA256>.authenticationCode(for: body, using: Self.key(networkKey)))
    }

    /// Checks the tag first (`authenticationFailed`: another federation's file, or a damaged one), then reads the
    /// bundles' framing. The bundles themselves are decoded and verified by whoever imports them.
    public init(decoding bytes: [UInt8], networkKey: NetworkKey) throws(WireError) {
        guard bytes.count >= 4, bytes[0..<4].elementsEqual(Self.magic) else {
            throw .invalidValue(field: "archive magic", reason: "not a Courier bundle archive")
        }
        guard bytes.count >= 4 + 1 + 4 + 16 + 1 + Self.tagSize else { throw .truncated(field: "archive") }
        let body = bytes[0..<(bytes.count - Self.tagSize)]
        guard HMAC<SHA256>.isValidAuthenticationCode(bytes[(bytes.count - Self.tagSize)...], authenticating: body, using: Self.key(networkKey)) else {
            throw .authenticationFailed
        }
        var r = ByteReader(body)
        _ = try r.bytes(4, "archive magic")
        let flags = try r.u8("archive flags")
        guard flags == 0 else { throw .unsupportedFeature("archive flags \(flags)") }
        self.created = try r.u32("archive created")
        guard let writer = NodeID(bytes: Array(try r.bytes(16, "archive writer"))) else { throw .truncated(field: "archive writer") }
        self.writer = writer
        let count = try r.varintInt("archive count", max: Self.maxCount)
        var out: [[UInt8]] = []
        out.reserveCapacity(min(count, 1_024))
        for _ in 0..<count {
            let n = try r.varintInt("archive bundle length", max: CourierBundle.maxEncodedSize)
            out.append(Array(try r.bytes(n, "archive bundle")))
        }
        guard r.isAtEnd else { throw .trailingBytes(field: "archive bundles", count: r.remaining) }
        self.bundles = out
    }
}
