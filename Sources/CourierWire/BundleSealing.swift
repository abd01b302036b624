import Crypto

/// Options for making a bundle at its origin.
public struct BundleOptions: Sendable {
    public var hopLimit: UInt8 = 8
    public var lifetime: UInt32
    public var sign: Bool
    /// End-to-end encrypt the body to this recipient (the destination must be that node).
    public var encryptTo: NodePublicKeys?
    public var respondBy: UInt32?
    public var reference: BundleID?
    public var priority: PriorityClass?
    public var extensions: [Extension] = []
    /// Federation dictionaries (ids on the compressor's shelf, SPEC 7.6) to try besides dictionary 1: those the
    /// destination holds. The smallest body wins (7.5).
    public var dictionaries: [UInt8] = []
    /// The recipient reads the bare block form (SPEC 7.2, 11.11: its announce set capability bit 6): the body may be
    /// a dictionary frame's bare block when that is smaller.
    public var bareBlocks = false

    public init(
        kind: Kind, lifetime: UInt32? = nil, sign: Bool? = nil, encryptTo: NodePublicKeys? = nil,
        respondBy: UInt32? = nil, reference: BundleID? = nil, priority: PriorityClass? = nil, hopLimit: UInt8 = 8
    ) {
        self.lifetime = lifetime ?? kind.defaultLifetime
        self.sign = sign ?? kind.signedByDefault
        self.encryptTo = encryptTo
        self.respondBy = respondBy
        self.reference = reference
        self.priority = priority
        self.hopLimit = hopLimit
    }
}

extension Kind {
    /// Alerts, receipts, identities and failure notices are origin-signed by default, so a captured device cannot
    /// forge them for another node.
    public var signedByDefault: Bool {
        switch self {
        case .alert, .receipt, .identity, .failure, .dictionary: return true
        default: return false
        }
    }

    /// Default lifetime in minutes.
    public var defaultLifetime: UInt32 {
        switch self {
        case .alert: return 24 * 60
        case .aidRequest, .aidOffer: return 3 * 24 * 60
        case .receipt, .failure: return 2 * 24 * 60
        case .identity: return 7 * 24 * 60
        case .grievance, .text: return 14 * 24 * 60
        case .minutes, .dictionary, .other: return 30 * 24 * 60
        }
    }
}

extension CourierBundle {
    /// Makes a bundle at its origin: compresses the content (the smallest of raw and zstd forms), encrypts it to the
    /// recipient if asked, and signs it if asked.
    public static func make(
        kind: Kind, destination: Destination, content: [UInt8], origin: NodeIdentity, created: UInt32,
        sequence: UInt32, options: BundleOptions, compressor: BodyCompressor
    ) throws(WireError) -> CourierBundle {
        guard content.count <= CourierBundle.maxContentSize else {
            throw .tooLarge(field: "content", size: content.count, limit: CourierBundle.maxContentSize)
        }
        guard options.hopLimit <= CourierBundle.maxHopLimit else {
            throw .invalidValue(field: "hop limit", reason: "must be 0-15")
        }
        guard options.lifetime >= 1 else { throw .invalidValue(field: "lifetime", reason: "must be >= 1 minute") }
        if let recipient = options.encryptTo {
            guard case .node(let n) = destination, n == recipient.nodeID.short else {
                throw .invalidValue(field: "destination", reason: "end-to-end encryption needs the recipient's node as destination")
            }
        }
        guard options.extensions.count <= CourierBundle.maxExtensions,
            options.extensions.allSatisfy({ $0.value.count <= CourierBundle.maxExtensionSize })
        else {
            throw .invalidValue(field: "extensions", reason: "at most \(CourierBundle.maxExtensions) of at most \(CourierBundle.maxExtensionSize) bytes")
        }
        let (compression, compressed) = compressor.compress(content, also: options.dictionaries, bare: options.bareBlocks)
        var b = CourierBundle(
            hopLimit: options.hopLimit, kind: kind, destination: destination,
            priorityOverride: options.priority.flatMap { $0 == kind.defaultPriority ? nil : $0 },
            id: try BundleID(origin: origin.nodeID.short, created: created, sequence: sequence),
            lifetime: options.lifetime, respondBy: options.respondBy, reference: options.reference,
            compression: compression, isEncrypted: options.encryptTo != nil, extensions: options.extensions,
            body: compressed,
            // A placeholder so the header carries the signed flag; replaced below.
            signature: options.sign ? [UInt8](repeating: 0, count: 64) : nil)
        if let recipient = options.encryptTo {
            let key = E2E.key(mine: origin, theirs: recipient, origin: origin.nodeID, recipient: recipient.nodeID)
            b.body = try E2E.seal(compressed, key: key, id: b.id, aad: b.encodeHeader(zeroHop: true))
        }
        if options.sign { b.signature = origin.sign(b.signingInput()) }
        let size = b.encodeHeader().count + b.body.count + (b.signature?.count ?? 0)
        guard size <= CourierBundle.maxEncodedSize else {
            throw .tooLarge(field: "bundle", size: size, limit: CourierBundle.maxEncodedSize)
        }
        return b
    }

    /// Verifies the origin signature with the origin's public keys. Unsigned bundles do not verify.
    public func verifySignature(originKeys: NodePublicKeys) -> Bool {
        guard let s = self.signature, originKeys.nodeID.short == self.origin else { return false }
        return originKeys.verify(signature: s, message: self.signingInput())
    }

    /// Whether the end-to-end tag verifies for recipient `me` under the keys of `originKeys` (SPEC 3.5): only the
    /// origin and the recipient can compute that key, so to the recipient the tag proves the origin wrote the header
    /// and body, as a signature does (6.12). False for a bundle that is not end-to-end encrypted to `me`.
    public func endToEndVerifies(recipient me: NodeIdentity, originKeys: NodePublicKeys) -> Bool {
        guard self.isEncrypted, originKeys.nodeID.short == self.origin, case .node(let dest) = self.destination,
              dest == me.nodeID.short else { return false }
        let key = E2E.key(mine: me, theirs: originKeys, origin: originKeys.nodeID, recipient: me.nodeID)
        do {
            _ = try E2E.open(self.body, key: key, id: self.id, aad: self.encodeHeader(zeroHop: true))
            return true
        } catch {
            return false
        }
    }

    /// The content as the origin wrote it: decrypted (when end-to-end encrypted: `me` must be the recipient and
    /// `originKeys` the origin's keys) and decompressed, bounded to `CourierBundle.maxContentSize`.
    public func content(
        compressor: BodyCompressor, recipient me: NodeIdentity? = nil, originKeys: NodePublicKeys? = nil
    ) throws(WireError) -> [UInt8] {
        var body = self.body
        if self.isEncrypted {
            guard let me, let originKeys, case .node(let dest) = self.destination, dest == me.nodeID.short else {
                throw .decryptionFailed
            }
            let key = E2E.key(mine: me, theirs: originKeys, origin: originKeys.nodeID, recipient: me.nodeID)
            body = try E2E.open(body, key: key, id: self.id, aad: self.encodeHeader(zeroHop: true))
        }
        return try compressor.decompress(body, self.compression)
    }
}

/// End-to-end encryption to one recipient: ChaCha20-Poly1305 under a key from static X25519 agreement.
enum E2E {
    /// HKDF-SHA256(ikm: X25519(mine, theirs), salt: "courier/v1", info: "e2e" || origin id || recipient id).
    static func key(mine: NodeIdentity, theirs: NodePublicKeys, origin: NodeID, recipient: NodeID) -> SymmetricKey {
        let pub = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: theirs.agreement)
        guard let shared = try? mine.agreementKey.sharedSecretFromKeyAgreement(with: pub) else {
            // A low-order public key gives an all-zero secret; BoringSSL refuses it. Use a key nobody can match.
            return SymmetricKey(size: .bits256)
        }
        return shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: Array("courier/v1".utf8),
            sharedInfo: Array("e2e".utf8) + origin.bytes + recipient.bytes, outputByteCount: 32)
    }

    /// Nonce: created (3) || sequence (4) || five zero bytes. Unique because bundle ids are unique per origin, and
    /// the key is unique per (origin, recipient) pair.
    static func nonce(_ id: BundleID) -> ChaChaPoly.Nonce {
        var w = ByteWriter(capacity: 12)
        w.u24(id.created)
        w.u32(id.sequence)
        w.append([UInt8](repeating: 0, count: 5))
        return try! ChaChaPoly.Nonce(data: w.bytes)
    }

    static func seal(_ plain: [UInt8], key: SymmetricKey, id: BundleID, aad: [UInt8]) throws(WireError) -> [UInt8] {
        guard let box = try? ChaChaPoly.seal(plain, using: key, nonce: self.nonce(id), authenticating: aad) else {
            throw .decryptionFailed
        }
        return Array(box.ciphertext) + Array(box.tag)
    }

    static func open(_ body: [UInt8], key: SymmetricKey, id: BundleID, aad: [UInt8]) throws(WireError) -> [UInt8] {
        guard body.count >= 16,
            let box = try? ChaChaPoly.SealedBox(
                nonce: self.nonce(id), ciphertext: body.dropLast(16), tag: body.suffix(16)),
            let plain = try? ChaChaPoly.open(box, using: key, authenticating: aad)
        else { throw .decryptionFailed }
        return Array(plain)
    }
}
