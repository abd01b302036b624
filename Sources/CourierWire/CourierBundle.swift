import Crypto

/// What a bundle is about. The code is the low nibble of the bundle's first byte.
public enum Kind: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case alert, aidRequest, aidOffer, grievance, minutes, text, receipt
    /// A node's public keys and name (SPEC 6.8, `IdentityContent`): flooded so every member can encrypt to it and
    /// read what it encrypts, or sent to one node to ask for its keys. Read by the engine, never put in an inbox.
    case identity
    /// A failure notice to an origin: a relay gave up on some of its bundles, and why (`FailureContent`).
    case failure
    /// A federation compression dictionary (SPEC 7.6): its id and version in extension type 5, the zstd dictionary as
    /// content. Read by the engine of every node it passes, never put in an inbox.
    case dictionary
    /// A kind this version does not know (codes 10-15): stored and forwarded, never interpreted.
    case other(UInt8)

    public static let allCases: [Kind] = [.alert, .aidRequest, .aidOffer, .grievance, .minutes, .text, .receipt, .identity, .failure, .dictionary]

    public init(code: UInt8) {
        switch code {
        case 0: self = .alert
        case 1: self = .aidRequest
        case 2: self = .aidOffer
        case 3: self = .grievance
        case 4: self = .minutes
        case 5: self = .text
        case 6: self = .receipt
        case 7: self = .identity
        case 8: self = .failure
        case 9: self = .dictionary
        default: self = .other(code & 0x0F)
        }
    }

    public var code: UInt8 {
        switch self {
        case .alert: return 0
        case .aidRequest: return 1
        case .aidOffer: return 2
        case .grievance: return 3
        case .minutes: return 4
        case .text: return 5
        case .receipt: return 6
        case .identity: return 7
        case .failure: return 8
        case .dictionary: return 9
        case .other(let c): return c & 0x0F
        }
    }

    /// The class a bundle of this kind is scheduled in unless it says otherwise.
    public var defaultPriority: PriorityClass {
        switch self {
        case .alert: return .urgent
        case .aidRequest, .aidOffer: return .aid
        case .grievance, .text, .receipt, .identity, .failure: return .normal
        case .minutes, .dictionary, .other: return .bulk
        }
    }

    public var description: String {
        switch self {
        case .alert: return "alert"
        case .aidRequest: return "aid"
        case .aidOffer: return "offer"
        case .grievance: return "grievance"
        case .minutes: return "minutes"
        case .text: return "text"
        case .receipt: return "receipt"
        case .identity: return "identity"
        case .failure: return "failure"
        case .dictionary: return "dictionary"
        case .other(let c): return "kind\(c)"
        }
    }
}

/// Scheduling class: lower goes first.
public enum PriorityClass: UInt8, Sendable, Hashable, Comparable, CaseIterable {
    case urgent = 0, aid = 1, normal = 2, bulk = 3
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A 2-byte group id: SHA-256("courier/v1/group" || UTF-8 name), first two bytes, big-endian.
public struct GroupID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }
    public init(name: String) {
        let d = Array(SHA256.hash(data: Array("courier/v1/group".utf8) + Array(name.utf8)))
        self.rawValue = UInt16(d[0]) << 8 | UInt16(d[1])
    }
    public var description: String {
        let h = String(self.rawValue, radix: 16)
        return "g" + String(repeating: "0", count: 4 - h.count) + h
    }
}

public enum Destination: Sendable, Hashable {
    case node(ShortID)
    case group(GroupID)
    case everyone

    var code: UInt8 {
        switch self {
        case .node: return 0
        case .group: return 1
        case .everyone: return 2
        }
    }
}

/// Bundle identity: who made it, when (minutes since the Courier epoch), and a per-origin sequence number.
public struct BundleID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let origin: ShortID
    /// Minutes since 2024-01-01T00:00:00Z; 24 bits on the wire.
    public let created: UInt32
    public let sequence: UInt32

    public init(origin: ShortID, created: UInt32, sequence: UInt32) throws(WireError) {
        guard created < 1 << 24 else {
            throw .invalidValue(field: "created", reason: "must be below 2^24 minutes")
        }
        self.origin = origin
        self.created = created
        self.sequence = sequence
    }

    public static func < (a: BundleID, b: BundleID) -> Bool {
        (a.created, a.origin.rawValue, a.sequence) < (b.created, b.origin.rawValue, b.sequence)
    }

    /// The fixed-width 11-byte form: origin (4) || created (3) || sequence (4). Input of the digest and nonces.
    public var fixedBytes: [UInt8] {
        var w = ByteWriter(capacity: 11)
        w.u32(self.origin.rawValue)
        w.u24(self.created)
        w.u32(self.sequence)
        return w.bytes
    }

    /// 4-byte digest used in summaries: SHA-256(fixedBytes), first four bytes, big-endian.
    /// (The 11 bytes hashed from the stack, and the hash read in place: `fixedBytes` and an `Array` of the hash were
    /// two arrays made for each digest, and a summary heard takes the digest of every bundle with a known holder:
    /// 2% of a 1,000-relay drill.)
    public var digest: UInt32 {
        let o = self.origin.rawValue, c = self.created, s = self.sequence
        var fixed: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            UInt8(o >> 24), UInt8((o >> 16) & 0xFF), UInt8((o >> 8) & 0xFF), UInt8(o & 0xFF),
            UInt8((c >> 16) & 0xFF), UInt8((c >> 8) & 0xFF), UInt8(c & 0xFF),
            UInt8(s >> 24), UInt8((s >> 16) & 0xFF), UInt8((s >> 8) & 0xFF), UInt8(s & 0xFF))
        var h = SHA256()
        withUnsafeBytes(of: &fixed) { h.update(bufferPointer: $0) }
        return h.finalize().withUnsafeBytes { d in
            UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
        }
    }

    func write(to w: inout ByteWriter) {
        w.u32(self.origin.rawValue)
        w.u24(self.created)
        w.varint(self.sequence)
    }

    static func read(from r: inout ByteReader, _ field: String) throws(WireError) -> BundleID {
        let origin = ShortID(try r.u32("\(field).origin"))
        let created = try r.u24("\(field).created")
        let seq = try r.varint32("\(field).sequence")
        return try BundleID(origin: origin, created: created, sequence: seq)
    }

    /// `origin.created.sequence`, e.g. `3f9a01c2.1523041.0`.
    public var description: String { "\(self.origin).\(self.created).\(self.sequence)" }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let o = ShortID(hex: String(parts[0])), let c = UInt32(parts[1]),
            let s = UInt32(parts[2]), let id = try? BundleID(origin: o, created: c, sequence: s)
        else { return nil }
        self = id
    }
}

/// How the body is compressed (bits 5-4 of the second byte).
public enum Compression: Sendable, Hashable {
    case none
    /// zstd, magicless frame, no dictionary.
    case zstd
    /// zstd, magicless frame, with the numbered dictionary.
    case zstdDictionary(UInt8)
    /// zstd, the bare block (SPEC 7.2): the one compressed block of a frame with the numbered dictionary (1-255),
    /// without the frame's 2-byte header and the block's 3-byte header. Code 2 with dictionary byte 0, then the id.
    case zstdBlock(UInt8)

    var code: UInt8 {
        switch self {
        case .none: return 0
        case .zstd: return 1
        case .zstdDictionary, .zstdBlock: return 2
        }
    }

    /// The dictionary a reader needs (either form), if any.
    public var dictionary: UInt8? {
        switch self {
        case .none, .zstd: return nil
        case .zstdDictionary(let id), .zstdBlock(let id): return id
        }
    }
}

/// A bundle extension: a type and opaque bytes. Odd types are critical: a node that does not know one must not
/// deliver the bundle to its inbox (it still stores and forwards it). Unknown extensions are forwarded unchanged.
public struct Extension: Sendable, Hashable {
    public let type: UInt32
    public let value: [UInt8]
    public init(type: UInt32, value: [UInt8]) {
        self.type = type
        self.value = value
    }
    public var isCritical: Bool { self.type & 1 == 1 }
}

/// The end-to-end unit: what an origin sends and a destination receives, carried hop by hop.
///
/// ```
///  byte 0      HHHH KKKK   hop limit (mutable, 0-15) | kind
///  byte 1      DD CC S E M 0   destination type | compression | signed | end-to-end | more flags | reserved
///  [byte 2]    R F X P pp 00   respond-by | reference | extensions | priority present | priority | reserved
///  origin      4     short id of the origin
///  created     3     minutes since 2024-01-01T00:00Z
///  sequence    varint
///  lifetime    varint minutes (>= 1)
///  destination 4 (node) | 2 (group) | 0 (everyone)
///  [respond-by varint minutes after created]
///  [reference  origin 4, created 3, sequence varint]
///  [dictionary 1, or 00 and the dictionary 1 for the bare block form]
///  [extensions count varint, then type varint, length varint, value]
///  body        to the end, less the signature
///  [signature  64, Ed25519]
/// ```
public struct CourierBundle: Sendable, Hashable {
    public static let maxContentSize = 65_536
    public static let maxEncodedSize = 66_048
    public static let maxHopLimit: UInt8 = 15
    public static let maxExtensions = 16
    public static let maxExtensionSize = 1_024

    public var hopLimit: UInt8
    public var kind: Kind
    public var destination: Destination
    /// Set only when the bundle overrides its kind's default class.
    public var priorityOverride: PriorityClass?
    public var id: BundleID
    public var lifetime: UInt32
    public var respondBy: UInt32?
    public var reference: BundleID?
    public var compression: Compression
    public var isEncrypted: Bool
    public var extensions: [Extension]
    /// The body as on the wire: compressed, and encrypted with its tag when `isEncrypted`.
    public var body: [UInt8]
    public var signature: [UInt8]?

    public var priority: PriorityClass { self.priorityOverride ?? self.kind.defaultPriority }
    public var origin: ShortID { self.id.origin }
    public var isSigned: Bool { self.signature != nil }

    /// Minutes since the epoch after which the bundle is dropped everywhere.
    public var expires: UInt64 { UInt64(self.id.created) + UInt64(self.lifetime) }

    public init(
        hopLimit: UInt8, kind: Kind, destination: Destination, priorityOverride: PriorityClass? = nil,
        id: BundleID, lifetime: UInt32, respondBy: UInt32? = nil, reference: BundleID? = nil,
        compression: Compression = .none, isEncrypted: Bool = false, extensions: [Extension] = [],
        body: [UInt8], signature: [UInt8]? = nil
    ) {
        self.hopLimit = hopLimit
        self.kind = kind
        self.destination = destination
        self.priorityOverride = priorityOverride
        self.id = id
        self.lifetime = lifetime
        self.respondBy = respondBy
        self.reference = reference
        self.compression = compression
        self.isEncrypted = isEncrypted
        self.extensions = extensions
        self.body = body
        self.signature = signature
    }

    // MARK: Encoding

    /// The header bytes (everything before the body). With `zeroHop`, the hop-limit nibble is 0: that form is
    /// what signatures and end-to-end encryption authenticate, since relays rewrite the hop limit.
    public func encodeHeader(zeroHop: Bool = false) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        let hop = zeroHop ? 0 : min(self.hopLimit, Self.maxHopLimit)
        w.u8(hop << 4 | self.kind.code)
        var more: UInt8 = 0
        if self.respondBy != nil { more |= 0x80 }
        if self.reference != nil { more |= 0x40 }
        if !self.extensions.isEmpty { more |= 0x20 }
        if let p = self.priorityOverride { more |= 0x10 | p.rawValue << 2 }
        var b1 = self.destination.code << 6 | self.compression.code << 4
        if self.signature != nil { b1 |= 0x08 }
        if self.isEncrypted { b1 |= 0x04 }
        if more != 0 { b1 |= 0x02 }
        w.u8(b1)
        if more != 0 { w.u8(more) }
        self.id.write(to: &w)
        w.varint(self.lifetime)
        switch self.destination {
        case .node(let n): w.u32(n.rawValue)
        case .group(let g): w.u16(g.rawValue)
        case .everyone: break
        }
        if let r = self.respondBy { w.varint(r) }
        if let ref = self.reference { ref.write(to: &w) }
        switch self.compression {
        case .zstdDictionary(let d): w.u8(d)
        case .zstdBlock(let d): w.u8(0); w.u8(d)
        case .none, .zstd: break
        }
        if !self.extensions.isEmpty {
            w.varint(self.extensions.count)
            for e in self.extensions {
                w.varint(e.type)
                w.varint(e.value.count)
                w.append(e.value)
            }
        }
        return w.bytes
    }

    public func encode() -> [UInt8] {
        var out = self.encodeHeader()
        out.append(contentsOf: self.body)
        if let s = self.signature { out.append(contentsOf: s) }
        return out
    }

    /// The bytes an origin signature covers: a domain label, the header with hop 0, and the body.
    public func signingInput() -> [UInt8] {
        Array("courier/v1/bundle".utf8) + self.encodeHeader(zeroHop: true) + self.body
    }

    // MARK: Decoding

    public init(decoding bytes: [UInt8]) throws(WireError) {
        try self.init(decoding: bytes[...])
    }

    public init(decoding bytes: ArraySlice<UInt8>) throws(WireError) {
        guard bytes.count <= Self.maxEncodedSize else {
            throw .tooLarge(field: "bundle", size: bytes.count, limit: Self.maxEncodedSize)
        }
        var r = ByteReader(bytes)
        let b0 = try r.u8("bundle.kind")
        let b1 = try r.u8("bundle.flags")
        guard b1 & 0x01 == 0 else { throw .unsupportedFeature("bundle flags reserved bit") }
        var more: UInt8 = 0
        if b1 & 0x02 != 0 {
            more = try r.u8("bundle.more")
            guard more & 0x03 == 0 else { throw .unsupportedFeature("bundle more-flags reserved bits") }
            guard more != 0 else { throw .invalidValue(field: "bundle.more", reason: "present but empty") }
            // Canonical form only: a priority value without the priority-present bit would not re-encode, and
            // signatures and end-to-end AAD cover the re-encoded header.
            guard more & 0x10 != 0 || more & 0x0C == 0 else {
                throw .invalidValue(field: "bundle.more", reason: "priority bits without the priority flag")
            }
        }
        self.hopLimit = b0 >> 4
        self.kind = Kind(code: b0 & 0x0F)
        let destCode = b1 >> 6
        let compCode = (b1 >> 4) & 0x03
        let signed = b1 & 0x08 != 0
        self.isEncrypted = b1 & 0x04 != 0
        self.priorityOverride = more & 0x10 != 0 ? PriorityClass(rawValue: (more >> 2) & 0x03) : nil
        self.id = try BundleID.read(from: &r, "bundle.id")
        self.lifetime = try r.varint32("bundle.lifetime")
        guard self.lifetime >= 1 else { throw .invalidValue(field: "bundle.lifetime", reason: "must be >= 1") }
        switch destCode {
        case 0: self.destination = .node(ShortID(try r.u32("bundle.destination")))
        case 1: self.destination = .group(GroupID(try r.u16("bundle.destination")))
        case 2: self.destination = .everyone
        default: throw .unsupportedFeature("destination type 3")
        }
        self.respondBy = more & 0x80 != 0 ? try r.varint32("bundle.respondBy") : nil
        self.reference = more & 0x40 != 0 ? try BundleID.read(from: &r, "bundle.reference") : nil
        switch compCode {
        case 0: self.compression = .none
        case 1: self.compression = .zstd
        case 2:
            let d = try r.u8("bundle.dictionary")
            if d != 0 {
                self.compression = .zstdDictionary(d)
            } else {
                // Dictionary byte 0: the bare block form (SPEC 7.2); the dictionary's id follows.
                let id = try r.u8("bundle.dictionary (bare block)")
                guard id != 0 else { throw .invalidValue(field: "bundle.dictionary", reason: "a bare block names dictionary 1-255, not 0") }
                self.compression = .zstdBlock(id)
            }
        default: throw .unsupportedFeature("compression 3")
        }
        var exts: [Extension] = []
        if more & 0x20 != 0 {
            let n = try r.varintInt("bundle.extensions.count", max: Self.maxExtensions)
            guard n >= 1 else { throw .invalidValue(field: "bundle.extensions.count", reason: "flagged but 0") }
            for _ in 0..<n {
                let t = try r.varint32("bundle.extension.type")
                let len = try r.varintInt("bundle.extension.length", max: Self.maxExtensionSize)
                exts.append(Extension(type: t, value: Array(try r.bytes(len, "bundle.extension.value"))))
            }
        }
        self.extensions = exts
        let rest = r.rest()
        if signed {
            guard rest.count >= 64 else { throw .truncated(field: "bundle.signature") }
            self.body = Array(rest.dropLast(64))
            self.signature = Array(rest.suffix(64))
        } else {
            self.body = Array(rest)
            self.signature = nil
        }
        if self.isEncrypted && self.body.count < 16 { throw .truncated(field: "bundle.body (tag)") }
    }
}

/// Courier time: minutes since 2024-01-01T00:00:00Z.
public enum CourierTime {
    public static let epochUnixSeconds: Int64 = 1_704_067_200

    public static func minutes(unixSeconds: Int64) -> UInt32 {
        let m = max(0, (unixSeconds - epochUnixSeconds) / 60)
        return UInt32(min(m, Int64(1 << 24) - 1))
    }

    public static func unixSeconds(minutes: UInt32) -> Int64 { epochUnixSeconds + Int64(minutes) * 60 }
}
