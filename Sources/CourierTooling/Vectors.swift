import CourierWire
import Foundation

/// The JSON shapes of protocol/vectors/*.json, shared by the generator (`courier-dev vectors`) and the tests.
/// Every byte string is lower-case hex.
public enum Vectors {
    public struct IdentitySeeds: Codable, Sendable, Hashable {
        public var signingSeed: String
        public var agreementSeed: String
        public init(signingSeed: String, agreementSeed: String) {
            self.signingSeed = signingSeed
            self.agreementSeed = agreementSeed
        }
        public func identity() throws -> NodeIdentity {
            try NodeIdentity(signingSeed: [UInt8](hex: self.signingSeed)!, agreementSeed: [UInt8](hex: self.agreementSeed)!)
        }
    }

    // MARK: keys.json

    public struct KeyVector: Codable, Sendable {
        public var name: String
        public var identity: IdentitySeeds
        public var signingPublic: String
        public var agreementPublic: String
        public var nodeId: String
        public var shortId: String
        public var networkKey: String
        public var packetKey: String
        public var announceKey: String
        public init(
            name: String, identity: IdentitySeeds, signingPublic: String, agreementPublic: String, nodeId: String,
            shortId: String, networkKey: String, packetKey: String, announceKey: String
        ) {
            self.name = name
            self.identity = identity
            self.signingPublic = signingPublic
            self.agreementPublic = agreementPublic
            self.nodeId = nodeId
            self.shortId = shortId
            self.networkKey = networkKey
            self.packetKey = packetKey
            self.announceKey = announceKey
        }
    }

    public struct GroupVector: Codable, Sendable {
        public var name: String
        public var groupId: String
        public init(name: String, groupId: String) {
            self.name = name
            self.groupId = groupId
        }
    }

    public struct DigestVector: Codable, Sendable {
        public var bundleId: String
        public var fixedBytes: String
        public var digest: String
        public init(bundleId: String, fixedBytes: String, digest: String) {
            self.bundleId = bundleId
            self.fixedBytes = fixedBytes
            self.digest = digest
        }
    }

    public struct KeysFile: Codable, Sendable {
        public var description: String
        public var nodes: [KeyVector]
        public var groups: [GroupVector]
        public var digests: [DigestVector]
        public init(description: String, nodes: [KeyVector], groups: [GroupVector], digests: [DigestVector]) {
            self.description = description
            self.nodes = nodes
            self.groups = groups
            self.digests = digests
        }
    }

    // MARK: varints.json

    public struct VarintVector: Codable, Sendable {
        public var value: UInt64?
        public var hex: String
        /// Set for encodings a decoder must reject.
        public var error: String?
        public init(value: UInt64?, hex: String, error: String?) {
            self.value = value
            self.hex = hex
            self.error = error
        }
    }

    // MARK: bundles.json

    /// A bundle made at an origin: the inputs, then the expected encoding.
    public struct BundleVector: Codable, Sendable {
        public var name: String
        public var origin: IdentitySeeds
        /// Set when the body is end-to-end encrypted to this recipient.
        public var recipient: IdentitySeeds?
        public var kind: UInt8
        /// "everyone", "node:<8 hex>" or "group:<4 hex>".
        public var destination: String
        public var created: UInt32
        public var sequence: UInt32
        public var lifetime: UInt32
        public var hopLimit: UInt8
        public var priority: UInt8?
        public var respondBy: UInt32?
        public var reference: String?
        public var sign: Bool
        /// "none", "zstd" or "zstd-dict-1": what the encoder chose (the smallest).
        public var compression: String
        public var contentUtf8: String
        /// Binary content (receipts), instead of `contentUtf8`.
        public var contentHex: String? = nil
        /// Extensions, each `{type, value (hex)}`, in order.
        public var extensions: [ExtensionJSON]? = nil
        /// False: the encoder had no dictionary (so it chose between raw and zstd alone).
        public var dictionary: Bool? = nil
        /// What proves the origin to the recipient (the destination node, or any node for a flood), knowing the
        /// origin's keys (SPEC 6.12): "signature", "end-to-end" (an unsigned end-to-end bundle: its tag), or
        /// "none".
        public var provenBy: String? = nil
        public var bundleHex: String
        public init(
            name: String, origin: IdentitySeeds, recipient: IdentitySeeds?, kind: UInt8, destination: String,
            created: UInt32, sequence: UInt32, lifetime: UInt32, hopLimit: UInt8, priority: UInt8?,
            respondBy: UInt32?, reference: String?, sign: Bool, compression: String, contentUtf8: String,
            bundleHex: String
        ) {
            self.name = name
            self.origin = origin
            self.recipient = recipient
            self.kind = kind
            self.destination = destination
            self.created = created
            self.sequence = sequence
            self.lifetime = lifetime
            self.hopLimit = hopLimit
            self.priority = priority
            self.respondBy = respondBy
            self.reference = reference
            self.sign = sign
            self.compression = compression
            self.contentUtf8 = contentUtf8
            self.bundleHex = bundleHex
        }
    }

    public struct ExtensionJSON: Codable, Sendable, Hashable {
        public var type: UInt32
        public var value: String
        public init(type: UInt32, value: String) {
            self.type = type
            self.value = value
        }
    }

    /// The content bytes a bundle vector describes.
    public static func content(_ v: BundleVector) -> [UInt8] {
        v.contentHex.flatMap { [UInt8](hex: $0) } ?? Array(v.contentUtf8.utf8)
    }

    // MARK: packets.json

    /// A record in JSON form.
    public struct RecordJSON: Codable, Sendable, Hashable {
        public var type: String
        public var nextHop: String?
        public var transfer: UInt32?
        public var index: Int?
        public var count: Int?
        /// CourierBundle bytes (bundle), fragment data (fragment), or body (unknown).
        public var data: String?
        public var target: String?
        public var acks: [AckJSON]?
        public var capabilities: UInt8?
        public var signingKey: String?
        public var agreementKey: String?
        public var name: String?
        public var isFinal: Bool?
        public var digests: [String]?
        public var code: UInt8?
        public var flags: UInt8?
        /// Dictionaries record (type 6): a request, and its entries as `{id, fingerprint}`.
        public var isRequest: Bool?
        public var dictionaries: [DictionaryEntryJSON]?
        /// Dictionaries record flag B (5.10): present (true) only when set.
        public var readsBare: Bool?
        /// Bundle record in the compact form (5.3) from this sender (the packet's); `data` is the whole bundle.
        public var compactFrom: String?
        /// Bundle record that goes in a bundle run (5.11) with the bundle records around it; ack record in the ranges
        /// form (5.5, flag W).
        public var run: Bool?
        public var ranges: Bool?
        /// Piece of a cut bundle (5.12): the head's whole run-form length (absent for the rest); `data` the piece.
        public var total: Int?

        public init(type: String) { self.type = type }
    }

    public struct DictionaryEntryJSON: Codable, Sendable, Hashable {
        public var id: UInt8
        /// Four hex digits.
        public var fingerprint: String
    }

    public struct AckJSON: Codable, Sendable, Hashable {
        public var transfer: UInt32
        public var received: Int
        public var bitmap: String
        public init(transfer: UInt32, received: Int, bitmap: String) {
            self.transfer = transfer
            self.received = received
            self.bitmap = bitmap
        }
    }

    public struct PacketVector: Codable, Sendable {
        public var name: String
        public var networkKey: String
        public var sender: IdentitySeeds
        public var counter: UInt32
        /// Set for the announce form.
        public var announceSalt: UInt32?
        public var open: Bool
        public var records: [RecordJSON]
        public var payloadHex: String
        public var packetHex: String
        public init(
            name: String, networkKey: String, sender: IdentitySeeds, counter: UInt32, announceSalt: UInt32?,
            open: Bool, records: [RecordJSON], payloadHex: String, packetHex: String
        ) {
            self.name = name
            self.networkKey = networkKey
            self.sender = sender
            self.counter = counter
            self.announceSalt = announceSalt
            self.open = open
            self.records = records
            self.payloadHex = payloadHex
            self.packetHex = packetHex
        }
    }

    // MARK: fragments.json

    public struct FragmentVector: Codable, Sendable {
        public var name: String
        public var bundleHex: String
        public var mtu: Int
        public var transfer: UInt32
        public var nextHop: String?
        /// Each record's payload encoding (as the only record of its packet).
        public var recordsHex: [String]
        public init(name: String, bundleHex: String, mtu: Int, transfer: UInt32, nextHop: String?, recordsHex: [String]) {
            self.name = name
            self.bundleHex = bundleHex
            self.mtu = mtu
            self.transfer = transfer
            self.nextHop = nextHop
            self.recordsHex = recordsHex
        }
    }

    // MARK: archives.json

    public struct ArchiveVector: Codable, Sendable {
        public var name: String
        public var networkKey: String
        public var created: UInt32
        public var writer: String
        public var bundlesHex: [String]
        /// derive("archive"), the HMAC key.
        public var archiveKey: String
        public var archiveHex: String
        public init(name: String, networkKey: String, created: UInt32, writer: String, bundlesHex: [String], archiveKey: String, archiveHex: String) {
            self.name = name
            self.networkKey = networkKey
            self.created = created
            self.writer = writer
            self.bundlesHex = bundlesHex
            self.archiveKey = archiveKey
            self.archiveHex = archiveHex
        }
    }

    // MARK: invalid.json

    public struct InvalidVector: Codable, Sendable {
        /// "bundle", "payload" (records), "packet-header", "packet", "receipt-content" or "failure-content" (6.8).
        public var decoder: String
        public var hex: String
        public var why: String
        public init(decoder: String, hex: String, why: String) {
            self.decoder = decoder
            self.hex = hex
            self.why = why
        }
    }

    // MARK: conversions

    public static func destination(_ s: String) -> Destination? {
        if s == "everyone" { return .everyone }
        if s.hasPrefix("node:"), let id = ShortID(hex: String(s.dropFirst(5))) { return .node(id) }
        if s.hasPrefix("group:"), let v = UInt16(s.dropFirst(6), radix: 16) { return .group(GroupID(v)) }
        return nil
    }

    public static func describe(_ d: Destination) -> String {
        switch d {
        case .everyone: return "everyone"
        case .node(let n): return "node:\(n)"
        case .group(let g): return "group:" + String(format: "%04x", g.rawValue)
        }
    }

    public static func describe(_ c: Compression) -> String {
        switch c {
        case .none: return "none"
        case .zstd: return "zstd"
        case .zstdDictionary(let id): return "zstd-dict-\(id)"
        case .zstdBlock(let id): return "zstd-block-\(id)"
        }
    }

    static func hex32(_ v: UInt32) -> String { String(format: "%08x", v) }

    public static func json(_ r: Record) -> RecordJSON {
        switch r {
        case .bundle(let b):
            var j = RecordJSON(type: "bundle")
            j.nextHop = b.nextHop?.description
            j.transfer = b.transfer
            j.data = b.bundle.hex
            j.compactFrom = b.compactBundle() != nil ? b.compactFrom?.description : nil
            j.run = BundleRun.eligible(b) ? true : nil
            return j
        case .fragment(let f):
            var j = RecordJSON(type: "fragment")
            j.nextHop = f.nextHop?.description
            j.transfer = f.transfer
            j.index = f.index
            j.count = f.count
            j.data = f.data.hex
            return j
        case .ack(let a):
            var j = RecordJSON(type: "ack")
            j.target = a.target.description
            j.acks = a.entries.map { AckJSON(transfer: $0.transfer, received: $0.received, bitmap: $0.bitmap.hex) }
            j.ranges = a.isRangesForm ? true : nil
            return j
        case .announce(let a):
            var j = RecordJSON(type: "announce")
            j.capabilities = a.capabilities
            j.signingKey = a.signingKey?.hex
            j.agreementKey = a.agreementKey?.hex
            j.name = a.name
            return j
        case .summary(let s):
            var j = RecordJSON(type: "summary")
            j.isFinal = s.isFinal
            j.digests = s.digests.map(Self.hex32)
            return j
        case .dictionaries(let d):
            var j = RecordJSON(type: "dictionaries")
            j.isRequest = d.isRequest
            if d.readsBare { j.readsBare = true }
            j.dictionaries = d.entries.map { DictionaryEntryJSON(id: $0.id, fingerprint: String(format: "%04x", $0.fingerprint)) }
            return j
        case .receiptParts(let p):
            var j = RecordJSON(type: "receipt-parts")
            j.data = p.encodeBody().hex
            if p.carriesHops { j.flags = ReceiptPartsRecord.hopsFlag }
            return j
        case .piece(let p):
            var j = RecordJSON(type: "piece")
            j.nextHop = p.nextHop.description
            j.transfer = p.transfer
            j.total = p.total
            j.data = p.data.hex
            return j
        case .neighbours(let n):
            var j = RecordJSON(type: "neighbours")
            j.data = n.encodeBody().hex
            if n.flags != 0 { j.flags = n.flags }
            return j
        case .copyBudgets(let c):
            var j = RecordJSON(type: "copy-budgets")
            j.data = c.encodeBody().hex
            return j
        case .unknown(let t, let f, let body):
            var j = RecordJSON(type: "unknown")
            j.code = t
            j.flags = f
            j.data = body.hex
            return j
        }
    }

    public struct BadVector: Error {}

    public static func record(_ j: RecordJSON) throws -> Record {
        func short(_ s: String?) throws -> ShortID? {
            guard let s else { return nil }
            guard let v = ShortID(hex: s) else { throw BadVector() }
            return v
        }
        func bytes(_ s: String?) throws -> [UInt8] {
            guard let s, let b = [UInt8](hex: s) else { throw BadVector() }
            return b
        }
        switch j.type {
        case "bundle":
            return .bundle(BundleRecord(nextHop: try short(j.nextHop), transfer: j.transfer, bundle: try bytes(j.data),
                                        compactFrom: try short(j.compactFrom), inRun: j.run ?? false))
        case "fragment":
            guard let t = j.transfer, let i = j.index, let c = j.count else { throw BadVector() }
            return .fragment(FragmentRecord(nextHop: try short(j.nextHop), transfer: t, index: i, count: c, data: try bytes(j.data)))
        case "ack":
            guard let target = try short(j.target), let acks = j.acks else { throw BadVector() }
            return .ack(AckRecord(target: target, entries: try acks.map {
                AckEntry(transfer: $0.transfer, received: $0.received, bitmap: try bytes($0.bitmap))
            }, ranges: j.ranges ?? false))
        case "announce":
            return .announce(AnnounceRecord(
                capabilities: j.capabilities ?? 0, signingKey: try j.signingKey.map { try bytes($0) },
                agreementKey: try j.agreementKey.map { try bytes($0) }, name: j.name))
        case "summary":
            return .summary(SummaryRecord(
                isFinal: j.isFinal ?? false,
                digests: try (j.digests ?? []).map { guard let v = UInt32($0, radix: 16) else { throw BadVector() }; return v }))
        case "dictionaries":
            return .dictionaries(DictionariesRecord(isRequest: j.isRequest ?? false, entries: try (j.dictionaries ?? []).map {
                guard let fp = UInt16($0.fingerprint, radix: 16) else { throw BadVector() }
                return DictionariesRecord.Entry(id: $0.id, fingerprint: fp)
            }, readsBare: j.readsBare ?? false))
        case "receipt-parts":
            return .receiptParts(try ReceiptPartsRecord.decode(try bytes(j.data)[...], withHops: (j.flags ?? 0) & ReceiptPartsRecord.hopsFlag != 0))
        case "piece":
            guard let next = try short(j.nextHop), let t = j.transfer else { throw BadVector() }
            return .piece(RunPiece(nextHop: next, transfer: t, total: j.total, data: try bytes(j.data)))
        case "neighbours":
            return .neighbours(try NeighbourListRecord.decode(try bytes(j.data)[...], withRelays: (j.flags ?? 0) & NeighbourListRecord.relaysFlag != 0))
        case "copy-budgets":
            return .copyBudgets(try CopyBudgetsRecord.decode(try bytes(j.data)[...]))
        case "unknown":
            return .unknown(type: j.code ?? 15, flags: j.flags ?? 0, body: try bytes(j.data))
        default:
            throw BadVector()
        }
    }

    /// Makes the bundle a vector describes (the encoder's side).
    public static func make(_ v: BundleVector, compressor: BodyCompressor) throws -> CourierBundle {
        guard let dest = Self.destination(v.destination) else { throw BadVector() }
        var opts = BundleOptions(
            kind: Kind(code: v.kind), lifetime: v.lifetime, sign: v.sign,
            encryptTo: try v.recipient?.identity().publicKeys, respondBy: v.respondBy,
            reference: v.reference.flatMap(BundleID.init), priority: v.priority.flatMap(PriorityClass.init(rawValue:)),
            hopLimit: v.hopLimit)
        opts.extensions = try (v.extensions ?? []).map {
            guard let value = [UInt8](hex: $0.value) else { throw BadVector() }
            return Extension(type: $0.type, value: value)
        }
        return try CourierBundle.make(
            kind: Kind(code: v.kind), destination: dest, content: Self.content(v),
            origin: try v.origin.identity(), created: v.created, sequence: v.sequence, options: opts,
            compressor: v.dictionary == false ? BodyCompressor(dictionary: nil) : compressor)
    }

    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// The repository's protocol/vectors folder.
    public static func defaultDirectory() -> String { Corpus.defaultDirectory("protocol/vectors") }
}
