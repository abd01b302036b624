import Crypto

/// The 4-byte node id carried on air: the first four bytes of the node id, big-endian.
public struct ShortID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (a: ShortID, b: ShortID) -> Bool { a.rawValue < b.rawValue }
    /// Eight hex digits, as operators see it.
    public var description: String {
        let s = String(self.rawValue, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }
    public init?(hex: String) {
        guard hex.utf8.count == 8, hex.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0) }),
            let v = UInt32(hex, radix: 16)
        else { return nil }
        self.rawValue = v
    }
}

/// A node's 16-byte id: SHA-256("courier/v1/node" || signing public key || agreement public key), first 16 bytes.
public struct NodeID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init(keys: NodePublicKeys) {
        self = keys.nodeID
    }

    /// The id of the node with these public keys (both 32 bytes).
    init(signing: [UInt8], agreement: [UInt8]) {
        var h = SHA256()
        h.update(data: Self.domain)
        h.update(data: signing)
        h.update(data: agreement)
        self.bytes = Array(h.finalize().prefix(16))
    }

    private static let domain = Array("courier/v1/node".utf8)

    public var short: ShortID {
        ShortID(UInt32(self.bytes[0]) << 24 | UInt32(self.bytes[1]) << 16 | UInt32(self.bytes[2]) << 8
            | UInt32(self.bytes[3]))
    }

    public var description: String { self.bytes.hex }

    /// Hashed as two words rather than byte by byte (what the synthesized conformance of `[UInt8]` does): the
    /// engine keys its neighbours, holders and directory by node id, and a 1,000-relay drill hashed ids a billion
    /// times. Equal ids hash equal; nothing keeps a hash value (dictionary order is never relied on).
    @inlinable
    public func hash(into h: inout Hasher) {
        self.bytes.withUnsafeBytes { raw in
            h.combine(raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            h.combine(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    /// Compared as two words, as hashed (the synthesized conformance compares the arrays byte by byte, and each
    /// dictionary lookup by node id compares once at least: 1% of a 1,000-relay drill's CPU). Every id is 16 bytes.
    @inlinable
    public static func == (a: NodeID, b: NodeID) -> Bool {
        a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                x.loadUnaligned(fromByteOffset: 0, as: UInt64.self) == y.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
                    && x.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == y.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            }
        }
    }
}

/// The public half of a node identity: an Ed25519 key that signs and an X25519 key for end-to-end encryption.
public struct NodePublicKeys: Sendable, Hashable {
    public let signing: [UInt8]
    public let agreement: [UInt8]
    /// Its node id, hashed once when the keys are made: the engine asks for it at every key looked up, and a
    /// federation's relay knows a thousand keys.
    public let nodeID: NodeID

    public init(signing: [UInt8], agreement: [UInt8]) throws(WireError) {
        guard signing.count == 32 else {
            throw .invalidValue(field: "signing key", reason: "must be 32 bytes")
        }
        guard agreement.count == 32 else {
            throw .invalidValue(field: "agreement key", reason: "must be 32 bytes")
        }
        self.signing = signing
        self.agreement = agreement
        self.nodeID = NodeID(signing: signing, agreement: agreement)
    }

    /// Equal keys are equal (the node id follows from them).
    public static func == (a: NodePublicKeys, b: NodePublicKeys) -> Bool {
        a.signing == b.signing && a.agreement == b.agreement
    }

    /// By the node id alone (it follows from the keys, so equal keys hash equal): not the 64 key bytes one by one.
    public func hash(into h: inout Hasher) {
        h.combine(self.nodeID)
    }

    /// Verifies an Ed25519 signature by this node over `message`.
    public func verify(signature: some Collection<UInt8>, message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: self.signing) else { return false }
        return key.isValidSignature(Array(signature), for: message)
    }
}

/// A node's private keys. Kept by the node; never on the wire.
public struct NodeIdentity: Sendable {
    public let signingKey: Curve25519.Signing.PrivateKey
    public let agreementKey: Curve25519.KeyAgreement.PrivateKey
    public let publicKeys: NodePublicKeys
    public let nodeID: NodeID

    public init() {
        self.init(signing: Curve25519.Signing.PrivateKey(), agreement: Curve25519.KeyAgreement.PrivateKey())
    }

    public init(signing: Curve25519.Signing.PrivateKey, agreement: Curve25519.KeyAgreement.PrivateKey) {
        self.signingKey = signing
        self.agreementKey = agreement
        // Both raw representations are 32 bytes by construction.
        self.publicKeys = try! NodePublicKeys(
            signing: Array(signing.publicKey.rawRepresentation),
            agreement: Array(agreement.publicKey.rawRepresentation))
        self.nodeID = NodeID(keys: self.publicKeys)
    }

    /// Restores an identity from its two 32-byte private seeds (as stored on disk and used in test vectors).
    public init(signingSeed: [UInt8], agreementSeed: [UInt8]) throws(WireError) {
        guard let s = try? Curve25519.Signing.PrivateKey(rawRepresentation: signingSeed),
            let a = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: agreementSeed)
        else { throw .invalidValue(field: "private key", reason: "must be 32 bytes") }
        self.init(signing: s, agreement: a)
    }

    public var signingSeed: [UInt8] { Array(self.signingKey.rawRepresentation) }
    public var agreementSeed: [UInt8] { Array(self.agreementKey.rawRepresentation) }

    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Ed25519 per RFC 8032 is deterministic; BoringSSL (swift-crypto on Linux) signs that way.
        Array(try! self.signingKey.signature(for: message))
    }
}

/// The federation's shared secret. Every packet on air is sealed (or, in open mode, authenticated) under keys
/// derived from it.
public struct NetworkKey: Sendable, Hashable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(WireError) {
        guard bytes.count == 32 else { throw .invalidValue(field: "network key", reason: "must be 32 bytes") }
        self.bytes = bytes
    }

    public static func random() -> NetworkKey {
        let k = SymmetricKey(size: .bits256)
        return try! NetworkKey(bytes: k.withUnsafeBytes { Array($0) })
    }

    /// HKDF-SHA256(ikm: network key, salt: "courier/v1", info: label || context), 32 bytes.
    func derive(_ label: String, _ context: [UInt8] = []) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: self.bytes),
            salt: Array("courier/v1".utf8),
            info: Array(label.utf8) + context,
            outputByteCount: 32)
    }

    /// The key that seals ordinary packets from `sender`.
    public func packetKey(for sender: NodeID) -> SymmetricKey { self.derive("packet", sender.bytes) }

    /// The key that seals announce-form packets, whose sender may not be known yet.
    public var announceKey: SymmetricKey { self.derive("announce") }

    /// A short fingerprint operators can compare: first 4 bytes of HKDF(label "fingerprint"), hex.
    public var fingerprint: String {
        self.derive("fingerprint").withUnsafeBytes { Array($0.prefix(4)) }.hex
    }
}
