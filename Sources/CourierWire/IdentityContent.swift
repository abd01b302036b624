/// The content of an identity bundle (kind 7, SPEC 6.8 and 9.1): a node's public keys and name.
///
/// ```
///  flags       1     bit 0: Q, an answer is wanted (a key request); bits 1-7 reserved (0; ignored)
///  signing     32    Ed25519 public key
///  agreement   32    X25519 public key
///  name        0-32  UTF-8, to the end
/// ```
///
/// The keys are self-certifying: they hash to a node id (2.2) whose short id must be the bundle's origin, and the
/// bundle must be signed by the signing key it carries.
public struct IdentityContent: Sendable, Hashable {
    public static let answerWanted: UInt8 = 0x01
    public static let maxName = 32

    public var keys: NodePublicKeys
    public var name: String?
    /// A key request: the destination should send its own identity back to the origin.
    public var wantsAnswer: Bool

    public init(keys: NodePublicKeys, name: String?, wantsAnswer: Bool = false) {
        self.keys = keys
        self.name = name
        self.wantsAnswer = wantsAnswer
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 65 + Self.maxName)
        w.u8(self.wantsAnswer ? Self.answerWanted : 0)
        w.append(self.keys.signing)
        w.append(self.keys.agreement)
        if let n = self.name { w.append(Array(Array(n.utf8).prefix(Self.maxName))) }
        return w.bytes
    }

    public init(decoding content: [UInt8]) throws(WireError) {
        var r = ByteReader(content[...])
        let flags = try r.u8("identity.flags")
        let s = Array(try r.bytes(32, "identity.signing"))
        let a = Array(try r.bytes(32, "identity.agreement"))
        let rest = r.rest()
        guard rest.count <= Self.maxName else { throw .tooLarge(field: "identity.name", size: rest.count, limit: Self.maxName) }
        self.keys = try NodePublicKeys(signing: s, agreement: a)
        self.wantsAnswer = flags & Self.answerWanted != 0
        self.name = rest.isEmpty ? nil : String(decoding: rest, as: UTF8.self)
    }

    /// The keys of an identity bundle, checked: well-formed content, keys whose short id is the bundle's origin,
    /// and the bundle signed by the signing key it carries.
    public static func verified(_ b: CourierBundle, compressor: BodyCompressor) throws(WireError) -> IdentityContent {
        guard b.kind == .identity else { throw .invalidValue(field: "bundle.kind", reason: "not an identity bundle") }
        guard !b.isEncrypted else { throw .invalidValue(field: "identity", reason: "must not be end-to-end encrypted") }
        let c = try IdentityContent(decoding: b.content(compressor: compressor))
        guard c.keys.nodeID.short == b.origin else {
            throw .invalidValue(field: "identity", reason: "keys of \(c.keys.nodeID.short), not of the origin \(b.origin)")
        }
        guard b.verifySignature(originKeys: c.keys) else {
            throw .invalidValue(field: "identity", reason: "not signed by the key it carries")
        }
        return c
    }
}

/// Why a relay gave up on a bundle (the reason byte of a failure notice, SPEC 6.8).
public enum FailureReason: Sendable, Hashable, CustomStringConvertible {
    /// Its lifetime passed in a relay's queue before it could be passed on.
    case expired
    /// A relay refused it: its queue was full, or the origin is not on its trust list.
    case refused
    /// The recipient cannot read it: the origin's keys never arrived, or decryption failed.
    case unreadable
    /// Pushed out of a relay's queue by more urgent bundles.
    case evicted
    /// Its hop limit was spent: a directed bundle handed back to a relay that had passed it on, with no hop left (a
    /// loop of routes ends there, SPEC 8.5 directed rule 2).
    case outOfHops
    case other(UInt8)

    public init(code: UInt8) {
        switch code {
        case 1: self = .expired
        case 2: self = .refused
        case 3: self = .unreadable
        case 4: self = .evicted
        case 5: self = .outOfHops
        default: self = .other(code)
        }
    }

    public var code: UInt8 {
        switch self {
        case .expired: return 1
        case .refused: return 2
        case .unreadable: return 3
        case .evicted: return 4
        case .outOfHops: return 5
        case .other(let c): return c
        }
    }

    public var description: String {
        switch self {
        case .expired: return "expired"
        case .refused: return "refused"
        case .unreadable: return "unreadable"
        case .evicted: return "evicted"
        case .outOfHops: return "out of hops"
        case .other(let c): return "reason \(c)"
        }
    }
}

/// The content of a failure notice (kind 8): entries of reason (u8) || bundle id (wire form, 6.11), concatenated.
public enum FailureContent {
    public static func encode(_ entries: [(id: BundleID, reason: FailureReason)]) -> [UInt8] {
        var w = ByteWriter(capacity: entries.count * 10)
        for e in entries {
            w.u8(e.reason.code)
            e.id.write(to: &w)
        }
        return w.bytes
    }

    /// The entries, in order. Total: content that does not parse as whole entries is malformed (SPEC 6.8) and throws,
    /// naming the entry and the field where it ends or goes wrong; no entry of a malformed notice is returned (none is
    /// acted on). A reason this node does not know is not an error: it is `.other(code)`, shown as "reason N". Empty
    /// content decodes to no entries.
    public static func decode(_ content: [UInt8]) throws(WireError) -> [(id: BundleID, reason: FailureReason)] {
        var r = ByteReader(content[...])
        var out: [(id: BundleID, reason: FailureReason)] = []
        while !r.isAtEnd {
            do {
                let code = try r.u8("reason")
                out.append((try BundleID.read(from: &r, "id"), FailureReason(code: code)))
            } catch {
                throw error.within("failure notice entry \(out.count + 1)")
            }
        }
        return out
    }
}
