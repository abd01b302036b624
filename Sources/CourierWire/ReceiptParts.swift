import Crypto

/// A receipt-parts record (type 7, SPEC 5.8 and 6.16): aggregated receipts for the flooded bundles of one origin,
/// travelling back to it hop by hop and merged on the way. Each part says "holder H has bundle B" and carries H's
/// 8-byte tag over that statement, keyed by the X25519 agreement of H and the origin: only H (and the origin) can
/// make it, and only the origin can check it; a relay that merges parts carries them unchanged.
///
///     origin u32 | hops u8 | groups: created u24, sequence varint, count varint (1-255), count × (holder u32, tag 8)
///
/// With record flag 0x01 (`carriesHops`, SPEC 6.16 "Hop counts"), each part also says how many hops from the origin
/// its holder got the bundle: count × (holder u32, hops u8, tag 8). Relays set it for the parts of drills (6.17), so
/// the drill's origin learns each answer's hop count; a node older than the flag skips such a record (5.1).
public struct ReceiptPartsRecord: Sendable, Hashable {
    /// The bundles' origin (every bundle listed is one of its bundles) and the one the parts travel to.
    public var origin: ShortID
    /// The sender's distance in hops from the origin (0: the origin itself, confirming what it got; 255: unknown).
    public var hops: UInt8
    /// Per bundle, its holders and their tags, in order.
    public var groups: [Group]

    public struct Group: Sendable, Hashable {
        /// The bundle (its origin is the record's; a `BundleID` holds a valid creation time, so every group encodes).
        public var id: BundleID
        public var parts: [Part]
        public var created: UInt32 { self.id.created }
        public var sequence: UInt32 { self.id.sequence }
        public init(id: BundleID, parts: [Part]) {
            self.id = id
            self.parts = parts
        }
    }

    public struct Part: Sendable, Hashable {
        public var holder: ShortID
        public var tag: [UInt8]
        /// How many hops from the origin the holder got the bundle (1: from the origin itself; 255: unknown). Nil in
        /// a record without hop counts. Not covered by the tag: what the holder said, carried unchanged.
        public var hops: UInt8?
        public init(holder: ShortID, tag: [UInt8], hops: UInt8? = nil) {
            self.holder = holder
            self.tag = tag
            self.hops = hops
        }
    }

    /// The record flag saying every part carries its holder's hop count.
    public static let hopsFlag: UInt8 = 0x01
    /// A hop count not known (in a record with hop counts, for a part that came without one).
    public static let unknownHops: UInt8 = 255

    /// Whether the parts carry hop counts (record flag 0x01): some part has one.
    public var carriesHops: Bool { self.groups.contains { $0.parts.contains { $0.hops != nil } } }

    /// The (bundle, holder, tag, hop count) statements, in order.
    public var partsWithHops: [(id: BundleID, holder: ShortID, tag: [UInt8], hops: UInt8?)] {
        self.groups.flatMap { g in
            g.parts.map { p in (g.id, p.holder, p.tag, p.hops) }
        }
    }

    public static let tagSize = 8
    public static let maxHolders = 255
    /// The type code (SPEC 5.8: older nodes skip it).
    public static let type: UInt8 = 7

    public init(origin: ShortID, hops: UInt8, groups: [Group]) {
        self.origin = origin
        self.hops = hops
        self.groups = groups
    }

    /// The (bundle, holder, tag) statements, in order.
    public var parts: [(id: BundleID, holder: ShortID, tag: [UInt8])] {
        self.groups.flatMap { g in
            g.parts.map { p in (g.id, p.holder, p.tag) }
        }
    }

    /// The bundles listed.
    public var bundleIDs: [BundleID] {
        self.groups.map(\.id)
    }

    /// Builds a record from statements (grouped by bundle, in first-seen order; a holder listed once per bundle).
    public init(origin: ShortID, hops: UInt8, parts: [(id: BundleID, holder: ShortID, tag: [UInt8])]) {
        self.init(origin: origin, hops: hops, partsWithHops: parts.map { ($0.id, $0.holder, $0.tag, nil) })
    }

    /// Builds a record from statements with their hop counts (nil: none; a record where some part has one carries
    /// hop counts for all, `unknownHops` for the others).
    public init(origin: ShortID, hops: UInt8, partsWithHops parts: [(id: BundleID, holder: ShortID, tag: [UInt8], hops: UInt8?)]) {
        let any = parts.contains { $0.hops != nil }
        var order: [BundleID] = []
        var byID: [BundleID: [Part]] = [:]
        for p in parts where p.id.origin == origin {
            if byID[p.id] == nil {
                order.append(p.id)
                byID[p.id] = []
            }
            if byID[p.id]!.contains(where: { $0.holder == p.holder }) || byID[p.id]!.count >= Self.maxHolders { continue }
            byID[p.id]!.append(Part(holder: p.holder, tag: p.tag, hops: any ? (p.hops ?? Self.unknownHops) : nil))
        }
        self.init(origin: origin, hops: hops, groups: order.map { Group(id: $0, parts: byID[$0]!) })
    }

    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: 8 + self.groups.count * 16)
        let withHops = self.carriesHops
        w.u32(self.origin.rawValue)
        w.u8(self.hops)
        for g in self.groups {
            w.u24(g.created)
            w.varint(g.sequence)
            w.varint(g.parts.count)
            for p in g.parts {
                w.u32(p.holder.rawValue)
                if withHops { w.u8(p.hops ?? Self.unknownHops) }
                w.append(p.tag)
            }
        }
        return w.bytes
    }

    /// Total: the record, or a typed error (no groups, a group of no holders, a short tag, trailing bytes).
    /// `withHops`: the record flag 0x01 was set (each part carries a hop count).
    public static func decode(_ body: ArraySlice<UInt8>, withHops: Bool = false) throws(WireError) -> ReceiptPartsRecord {
        var r = ByteReader(body)
        let origin = ShortID(try r.u32("receiptParts.origin"))
        let hops = try r.u8("receiptParts.hops")
        var groups: [Group] = []
        while !r.isAtEnd {
            let created = try r.u24("receiptParts.created")
            let sequence = try r.varint32("receiptParts.sequence")
            let id = try BundleID(origin: origin, created: created, sequence: sequence)
            let count = try r.varintInt("receiptParts.count", max: Self.maxHolders)
            guard count >= 1 else { throw .invalidValue(field: "receiptParts.count", reason: "must be >= 1") }
            var parts: [Part] = []
            for _ in 0..<count {
                let holder = ShortID(try r.u32("receiptParts.holder"))
                let hops = withHops ? try r.u8("receiptParts.partHops") : nil
                parts.append(Part(holder: holder, tag: Array(try r.bytes(Self.tagSize, "receiptParts.tag")), hops: hops))
            }
            groups.append(Group(id: id, parts: parts))
        }
        guard !groups.isEmpty else { throw .truncated(field: "receiptParts.groups") }
        return ReceiptPartsRecord(origin: origin, hops: hops, groups: groups)
    }

    /// The key a holder and an origin share for receipt tags: HKDF-SHA256(ikm: X25519(holder, origin), salt:
    /// "courier/v1", info: "receipt" || holder node id || origin node id). Either side computes it with its own
    /// private agreement key and the other's public one. Nil for a low-order public key (no tag can match).
    public static func key(mine: NodeIdentity, theirs: NodePublicKeys, holder: NodeID, origin: NodeID) -> SymmetricKey? {
        guard let pub = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: theirs.agreement),
              let shared = try? mine.agreementKey.sharedSecretFromKeyAgreement(with: pub) else { return nil }
        return shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: Array("courier/v1".utf8),
            sharedInfo: Array("receipt".utf8) + holder.bytes + origin.bytes, outputByteCount: 32)
    }

    /// The statement a tag covers: "courier receipt" || bundle id (wire form, 6.5) || holder short id.
    public static func statement(_ id: BundleID, holder: ShortID) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.append(Array("courier receipt".utf8))
        w.u32(id.origin.rawValue)
        w.u24(id.created)
        w.varint(id.sequence)
        w.u32(holder.rawValue)
        return w.bytes
    }

    /// The holder's tag: the first 8 bytes of HMAC-SHA256(key, statement).
    public static func tag(_ id: BundleID, holder: ShortID, key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.statement(id, holder: holder), using: key).prefix(Self.tagSize))
    }

    /// Whether a tag is the holder's (constant time).
    public static func verify(_ id: BundleID, holder: ShortID, tag: [UInt8], key: SymmetricKey) -> Bool {
        let expected = Self.tag(id, holder: holder, key: key)
        guard tag.count == expected.count else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(tag, expected) { diff |= a ^ b }
        return diff == 0
    }
}
