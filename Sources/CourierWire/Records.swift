/// One unit inside a packet. A packet carries one or more records, so short bundles, acks and announces share one
/// header, one tag and one key-up.
///
/// Record header byte: `TTTT L FFF`: type (4 bits), L = a varint length follows (0: the record runs to the end of
/// the packet, allowed only for the last record), FFF = flags of the type.
public enum Record: Sendable, Hashable {
    case bundle(BundleRecord)
    case fragment(FragmentRecord)
    case ack(AckRecord)
    case announce(AnnounceRecord)
    case summary(SummaryRecord)
    /// Federation dictionaries the sender holds, or asks for (SPEC 5.10, 7.6).
    case dictionaries(DictionariesRecord)
    /// Aggregated receipts for one origin's flooded bundles (type 7, SPEC 6.16).
    case receiptParts(ReceiptPartsRecord)
    /// A piece of a bundle cut across two packets at the end or start of a bundle run (SPEC 5.12): the head (with the
    /// whole run form's length) or the rest.
    case piece(RunPiece)
    /// The neighbours the sender hears, sent with its announce (type 9, SPEC 5.13, 8.5 rule 5).
    case neighbours(NeighbourListRecord)
    /// Copy budgets of the directed transfers in the packet (type 10, SPEC 5.14): binary spray-and-wait.
    case copyBudgets(CopyBudgetsRecord)
    /// A record type this version does not know: skipped and counted by receivers. (Bundle runs, type 8, decode into
    /// `.bundle` records, one for each bundle of the run; see `BundleRun`.)
    case unknown(type: UInt8, flags: UInt8, body: [UInt8])

    public enum TypeCode: UInt8, Sendable {
        case padding = 0, bundle = 1, fragment = 2, ack = 3, announce = 4, summary = 5, dictionaries = 6, receiptParts = 7
    }

    var typeAndFlags: (UInt8, UInt8) {
        switch self {
        case .bundle(let b):
            if BundleRun.eligible(b) { return (BundleRun.type, 0) }
            return (1, (b.nextHop != nil ? 0x1 : 0) | (b.transfer != nil ? 0x2 : 0) | (b.compactBundle() != nil ? 0x4 : 0))
        case .fragment(let f): return (2, f.nextHop != nil ? 0x1 : 0)
        case .ack(let a): return (3, a.isRangesForm ? 0x1 : 0)
        case .announce(let a):
            return (4, (a.signingKey != nil ? 0x1 : 0) | (a.agreementKey != nil ? 0x2 : 0) | (a.name != nil ? 0x4 : 0))
        case .summary(let s): return (5, s.isFinal ? 0x1 : 0)
        case .dictionaries(let d): return (6, d.isRequest ? 0x1 : (d.readsBare ? 0x2 : 0))
        case .receiptParts(let p): return (ReceiptPartsRecord.type, p.carriesHops ? ReceiptPartsRecord.hopsFlag : 0)
        case .piece(let p): return (BundleRun.type, p.isHead ? BundleRun.cutFlag : BundleRun.restFlag)
        case .neighbours(let n): return (NeighbourListRecord.type, n.flags)
        case .copyBudgets: return (CopyBudgetsRecord.type, 0)
        case .unknown(let t, let f, _): return (t & 0x0F, f & 0x07)
        }
    }

    /// The record body (after the header byte and length).
    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch self {
        case .bundle(let b) where BundleRun.eligible(b):
            w.append(BundleRun.encodeBody([b]))
        case .bundle(let b):
            if let n = b.nextHop { w.u32(n.rawValue) }
            if let t = b.transfer { w.varint(t) }
            w.append(b.compactBundle() ?? b.bundle)
        case .fragment(let f):
            if let n = f.nextHop { w.u32(n.rawValue) }
            w.varint(f.transfer)
            w.varint(f.index)
            w.varint(f.count)
            w.append(f.data)
        case .ack(let a) where a.isRangesForm:
            w.u32(a.target.rawValue)
            for (first, more) in AckRanges.ranges(a.entries) {
                w.varint(first)
                w.varint(more)
            }
        case .ack(let a):
            w.u32(a.target.rawValue)
            for e in a.entries {
                w.varint(e.transfer)
                w.varint(e.received)
                w.varint(e.bitmap.count)
                w.append(e.bitmap)
            }
        case .announce(let a):
            w.u8(a.capabilities)
            if let k = a.signingKey { w.append(k) }
            if let k = a.agreementKey { w.append(k) }
            if let n = a.name { w.append(n.utf8) }
        case .summary(let s):
            for d in s.digests { w.u32(d) }
        case .dictionaries(let d):
            for e in d.entries { w.u8(e.id); w.u16(e.fingerprint) }
        case .receiptParts(let p):
            w.append(p.encodeBody())
        case .piece(let p):
            w.append(BundleRun.encodeBody(p.isHead ? nil : p, [], p.isHead ? p : nil))
        case .neighbours(let n):
            w.append(n.encodeBody())
        case .copyBudgets(let c):
            w.append(c.encodeBody())
        case .unknown(_, _, let body):
            w.append(body)
        }
        return w.bytes
    }

    /// The encoded size: with a length prefix unless it is the packet's last record.
    public func encodedSize(last: Bool) -> Int {
        let n = self.encodeBody().count
        return 1 + (last ? 0 : ByteWriter.varintSize(n)) + n
    }

    /// One record as written: several bundle records that continue one another go as one bundle run (type 8).
    public struct Unit: Sendable {
        public var type: UInt8
        public var flags: UInt8
        public var body: [UInt8]
        /// The records it carries (indices into the list encoded).
        public var records: Range<Int>

        func write(to w: inout ByteWriter, last: Bool) {
            w.u8(self.type << 4 | (last ? 0 : 0x08) | self.flags)
            if !last { w.varint(self.body.count) }
            w.append(self.body)
        }

        /// Its size: with a length prefix unless it is the payload's last.
        public func size(last: Bool) -> Int { 1 + (last ? 0 : ByteWriter.varintSize(self.body.count)) + self.body.count }
    }

    /// The records as written, in order: a bundle record that can go in a run (`BundleRecord.inRun`, SPEC 5.11)
    /// joins the run before it when it continues it (same next hop, the next transfer number).
    public static func units(_ records: [Record]) -> [Unit] {
        var out: [Unit] = []
        // A run as written: the rest of a cut bundle first (R), whole bundles, the head of a cut bundle last (C).
        var rest: RunPiece? = nil
        var run: [BundleRecord] = []
        var runStart = 0
        var open = false
        var lastHop: ShortID? = nil
        var lastTransfer: UInt32? = nil
        func flush(at end: Int, head: RunPiece? = nil) {
            guard open else { return }
            let flags = (rest != nil ? BundleRun.restFlag : 0) | (head != nil ? BundleRun.cutFlag : 0)
            out.append(Unit(type: BundleRun.type, flags: flags, body: BundleRun.encodeBody(rest, run, head), records: runStart..<end))
            rest = nil
            run = []
            open = false
        }
        func continues(_ hop: ShortID, _ transfer: UInt32, from: ShortID?) -> Bool {
            guard open, let t = lastTransfer, transfer > t, transfer - t - 1 <= UInt32(Int32.max), hop == lastHop else { return false }
            return run.last.map { $0.compactFrom == from } ?? true
        }
        for (i, r) in records.enumerated() {
            if case .bundle(let b) = r, BundleRun.eligible(b) {
                if !continues(b.nextHop!, b.transfer!, from: b.compactFrom) || (run.isEmpty && rest == nil) {
                    flush(at: i)
                    runStart = i
                    open = true
                }
                run.append(b)
                lastHop = b.nextHop
                lastTransfer = b.transfer
                continue
            }
            if case .piece(let p) = r {
                if p.isHead {
                    // The head ends a run it continues, or goes alone.
                    if continues(p.nextHop, p.transfer, from: run.last?.compactFrom) {
                        flush(at: i + 1, head: p)
                    } else {
                        flush(at: i)
                        runStart = i
                        open = true
                        flush(at: i + 1, head: p)
                    }
                } else {
                    // The rest begins a run.
                    flush(at: i)
                    rest = p
                    runStart = i
                    open = true
                    lastHop = p.nextHop
                    lastTransfer = p.transfer
                }
                continue
            }
            flush(at: i)
            let (type, flags) = r.typeAndFlags
            out.append(Unit(type: type, flags: flags, body: r.encodeBody(), records: i..<(i + 1)))
        }
        flush(at: records.count)
        return out
    }

    /// Encodes records into a packet payload.
    public static func encode(_ records: [Record]) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        let units = Self.units(records)
        for (i, u) in units.enumerated() { u.write(to: &w, last: i == units.count - 1) }
        return w.bytes
    }

    /// The payload size of `records`: as `encode` writes them, or with every record length-prefixed (`lastWithLength`,
    /// what a packer counts for records that may not stay last).
    public static func payloadSize(_ records: [Record], lastWithLength: Bool = false) -> Int {
        let units = Self.units(records)
        var n = 0
        for (i, u) in units.enumerated() { n += u.size(last: !lastWithLength && i == units.count - 1) }
        return n
    }

    /// Decodes a packet payload. Unknown record types come back as `.unknown`; a padding record ends the payload.
    /// `sender`: the short id of the packet's sender (its clear header), which compact bundle records (5.3) leave out
    /// as the bundle's origin; nil for announce-form packets, where a compact bundle record is an error.
    public static func decodeAll(_ payload: ArraySlice<UInt8>, sender: ShortID? = nil) throws(WireError) -> [Record] {
        var r = ByteReader(payload)
        var out: [Record] = []
        while !r.isAtEnd {
            let h = try r.u8("record.header")
            let type = h >> 4
            let flags = h & 0x07
            let body: ArraySlice<UInt8>
            if h & 0x08 != 0 {
                let len = try r.varintInt("record.length", max: Packet.maxSize)
                body = try r.bytes(len, "record.body")
            } else {
                body = r.rest()
            }
            if type == TypeCode.padding.rawValue {
                if h & 0x08 == 0 { break }
                continue
            }
            // A known type with a reserved flag set comes from a newer sender: skip it like an unknown type.
            let reserved: UInt8 = [1: 0x0, 2: 0x6, 3: 0x6, 4: 0x0, 5: 0x6, 6: 0x4, 7: 0x6, 8: 0x4, 9: 0x6, 10: 0x7][type] ?? 0
            if flags & reserved != 0 {
                out.append(.unknown(type: type, flags: flags, body: Array(body)))
                continue
            }
            if type == BundleRun.type {
                out.append(contentsOf: try BundleRun.decode(body, flags: flags, sender: sender))
                continue
            }
            out.append(try Record.decode(type: type, flags: flags, body: body, sender: sender))
        }
        return out
    }

    /// Decodes one record body. Reserved flags were already handled by `decodeAll` (such records are unknown).
    static func decode(type: UInt8, flags: UInt8, body: ArraySlice<UInt8>, sender: ShortID?) throws(WireError) -> Record {
        var r = ByteReader(body)
        switch type {
        case 1:
            let next = flags & 0x1 != 0 ? ShortID(try r.u32("bundle.nextHop")) : nil
            let transfer = flags & 0x2 != 0 ? try r.varint32("bundle.transfer") : nil
            var bytes = r.rest()
            var compactFrom: ShortID? = nil
            if flags & 0x4 != 0 {
                guard let next else { throw .invalidValue(field: "bundle record", reason: "compact without a next hop") }
                guard let sender else { throw .invalidValue(field: "bundle record", reason: "compact outside an ordinary packet") }
                bytes = try CompactBundle.expand(bytes, origin: sender, destination: next)[...]
                compactFrom = sender
            }
            guard !bytes.isEmpty else { throw .truncated(field: "bundle record") }
            guard bytes.count <= CourierBundle.maxEncodedSize else {
                throw .tooLarge(field: "bundle record", size: bytes.count, limit: CourierBundle.maxEncodedSize)
            }
            return .bundle(BundleRecord(nextHop: next, transfer: transfer, bundle: Array(bytes), compactFrom: compactFrom))
        case 2:
            let next = flags & 0x1 != 0 ? ShortID(try r.u32("fragment.nextHop")) : nil
            let transfer = try r.varint32("fragment.transfer")
            let index = try r.varintInt("fragment.index", max: FragmentRecord.maxCount - 1)
            let count = try r.varintInt("fragment.count", max: FragmentRecord.maxCount)
            guard count >= 2 else { throw .invalidValue(field: "fragment.count", reason: "must be >= 2") }
            guard index < count else { throw .invalidValue(field: "fragment.index", reason: "not below count") }
            let data = r.rest()
            guard !data.isEmpty else { throw .truncated(field: "fragment.data") }
            return .fragment(FragmentRecord(nextHop: next, transfer: transfer, index: index, count: count, data: Array(data)))
        case 3 where flags & 0x1 != 0:
            let target = ShortID(try r.u32("ack.target"))
            return .ack(AckRecord(target: target, entries: try AckRanges.decode(&r), ranges: true))
        case 3:
            let target = ShortID(try r.u32("ack.target"))
            var entries: [AckEntry] = []
            while !r.isAtEnd {
                let t = try r.varint32("ack.transfer")
                let rec = try r.varintInt("ack.received", max: FragmentRecord.maxCount)
                let bl = try r.varintInt("ack.bitmap.length", max: FragmentRecord.maxCount / 8)
                let bitmap = Array(try r.bytes(bl, "ack.bitmap"))
                entries.append(AckEntry(transfer: t, received: rec, bitmap: bitmap))
            }
            guard !entries.isEmpty else { throw .truncated(field: "ack.entries") }
            return .ack(AckRecord(target: target, entries: entries))
        case 4:
            let caps = try r.u8("announce.capabilities")
            let s = flags & 0x1 != 0 ? Array(try r.bytes(32, "announce.signingKey")) : nil
            let a = flags & 0x2 != 0 ? Array(try r.bytes(32, "announce.agreementKey")) : nil
            var name: String? = nil
            if flags & 0x4 != 0 {
                let raw = r.rest()
                guard raw.count <= AnnounceRecord.maxNameBytes else {
                    throw .tooLarge(field: "announce.name", size: raw.count, limit: AnnounceRecord.maxNameBytes)
                }
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw .invalidValue(field: "announce.name", reason: "not UTF-8")
                }
                name = text
            }
            guard r.isAtEnd else { throw .trailingBytes(field: "announce", count: r.remaining) }
            return .announce(AnnounceRecord(capabilities: caps, signingKey: s, agreementKey: a, name: name))
        case 5:
            guard body.count % 4 == 0 else {
                throw .invalidValue(field: "summary", reason: "length not a multiple of 4")
            }
            var digests: [UInt32] = []
            digests.reserveCapacity(body.count / 4)
            while !r.isAtEnd { digests.append(try r.u32("summary.digest")) }
            return .summary(SummaryRecord(isFinal: flags & 0x1 != 0, digests: digests))
        case 6:
            guard body.count % 3 == 0 else {
                throw .invalidValue(field: "dictionaries", reason: "length not a multiple of 3")
            }
            var entries: [DictionariesRecord.Entry] = []
            while !r.isAtEnd {
                let id = try r.u8("dictionaries.id")
                entries.append(DictionariesRecord.Entry(id: id, fingerprint: try r.u16("dictionaries.fingerprint")))
            }
            let request = flags & 0x1 != 0
            if request && entries.isEmpty { throw .truncated(field: "dictionaries.request") }
            if entries.contains(where: { $0.id < 2 }) {
                throw .invalidValue(field: "dictionaries.id", reason: "federation dictionaries are numbered 2-255")
            }
            // B (0x02, SPEC 5.10) says the sender reads bare blocks (7.2); it means nothing in a request (ignored there).
            return .dictionaries(DictionariesRecord(isRequest: request, entries: entries, readsBare: !request && flags & 0x2 != 0))
        case ReceiptPartsRecord.type:
            return .receiptParts(try ReceiptPartsRecord.decode(body, withHops: flags & ReceiptPartsRecord.hopsFlag != 0))
        case NeighbourListRecord.type:
            return .neighbours(try NeighbourListRecord.decode(body, withRelays: flags & NeighbourListRecord.relaysFlag != 0))
        case CopyBudgetsRecord.type:
            return .copyBudgets(try CopyBudgetsRecord.decode(body))
        default:
            return .unknown(type: type, flags: flags, body: Array(body))
        }
    }
}

/// A whole bundle in one record. `nextHop` addresses it to one neighbour (custody transfer); `transfer` asks for
/// an acknowledgement under that transfer number.
public struct BundleRecord: Sendable, Hashable {
    public var nextHop: ShortID?
    public var transfer: UInt32?
    /// The encoded bundle (see `CourierBundle`), whole (a compact record is expanded when decoded).
    public var bundle: [UInt8]
    /// Send it in the compact form (5.3, flag 0x04) in a packet from this node, when the bundle allows it (its origin
    /// is this node and its destination the next hop); otherwise the ordinary form. Decoded compact records carry
    /// the packet's sender here.
    public var compactFrom: ShortID?
    /// Send it in a bundle run (5.11, record type 8) when it allows the compact form and has a transfer number (a
    /// neighbour that announced capability bit 4); runs carry several such records to one next hop. Decoded records of
    /// a run have it set.
    public var inRun: Bool
    public init(nextHop: ShortID? = nil, transfer: UInt32? = nil, bundle: [UInt8], compactFrom: ShortID? = nil, inRun: Bool = false) {
        self.nextHop = nextHop
        self.transfer = transfer
        self.bundle = bundle
        self.compactFrom = compactFrom
        self.inRun = inRun
    }

    /// The bundle bytes of the compact form, or nil when the record goes in the ordinary form.
    public func compactBundle() -> [UInt8]? {
        guard let from = self.compactFrom, let next = self.nextHop else { return nil }
        return CompactBundle.compact(self.bundle, origin: from, destination: next)
    }
}

/// The compact form of a bundle in a directed bundle record (SPEC 5.3): the bundle leaves out what the packet says
/// already (its origin is the packet's sender, its destination the record's next hop) and writes a lifetime equal to
/// its kind's default as 0. The receiver puts them back, so the bundle it stores, forwards, verifies and decrypts
/// is byte for byte the one the origin made.
public enum CompactBundle {
    /// Where the fields of a bundle's header are, or nil when they cannot be read.
    private struct Layout {
        var kind: Kind
        /// Bytes before the origin (first byte, flags, more-flags).
        var flagsEnd: Int
        var destinationIsNode: Bool
    }

    private static func layout(_ r: inout ByteReader) throws(WireError) -> Layout {
        let b0 = try r.u8("bundle.kind")
        let b1 = try r.u8("bundle.flags")
        var n = 2
        if b1 & 0x02 != 0 { _ = try r.u8("bundle.more"); n = 3 }
        return Layout(kind: Kind(code: b0 & 0x0F), flagsEnd: n, destinationIsNode: b1 >> 6 == 0)
    }

    /// The compact bytes of `bundle` sent by `origin` to next hop `destination`; nil when the bundle is not from
    /// `origin` to `destination` (or cannot be read: it then goes whole, and its receiver judges it).
    public static func compact(_ bundle: [UInt8], origin: ShortID, destination: ShortID) -> [UInt8]? {
        var r = ByteReader(bundle[...])
        do {
            let l = try self.layout(&r)
            guard l.destinationIsNode, try r.u32("bundle.origin") == origin.rawValue else { return nil }
            let created = try r.bytes(3, "bundle.created")
            let sequence = try r.varint32("bundle.sequence")
            let lifetime = try r.varint32("bundle.lifetime")
            guard try r.u32("bundle.destination") == destination.rawValue else { return nil }
            var w = ByteWriter(capacity: bundle.count)
            w.append(bundle[0..<l.flagsEnd])
            w.append(created)
            w.varint(sequence)
            w.varint(lifetime == l.kind.defaultLifetime ? 0 : lifetime)
            w.append(r.rest())
            // Only a form that gives back these very bytes (a bundle with a non-canonical varint does not).
            guard try self.expand(w.bytes[...], origin: origin, destination: destination) == bundle else { return nil }
            return w.bytes
        } catch {
            return nil
        }
    }

    /// The whole bundle from its compact bytes: total (a compact form that cannot be read is a typed error). The
    /// result is decoded as any bundle afterwards (section 6).
    public static func expand(_ compact: ArraySlice<UInt8>, origin: ShortID, destination: ShortID) throws(WireError) -> [UInt8] {
        var r = ByteReader(compact)
        let l = try self.layout(&r)
        guard l.destinationIsNode else {
            throw .invalidValue(field: "bundle record", reason: "compact form of a bundle not addressed to one node")
        }
        let created = try r.bytes(3, "bundle.created")
        let sequence = try r.varint32("bundle.sequence")
        let lifetime = try r.varint32("bundle.lifetime")
        var w = ByteWriter(capacity: compact.count + 12)
        w.append(compact.prefix(l.flagsEnd))
        w.u32(origin.rawValue)
        w.append(created)
        w.varint(sequence)
        w.varint(lifetime == 0 ? l.kind.defaultLifetime : lifetime)
        w.u32(destination.rawValue)
        w.append(r.rest())
        return w.bytes
    }
}

/// One piece of a bundle too large for one packet. `transfer` is chosen by the sender and scoped to it.
public struct FragmentRecord: Sendable, Hashable {
    public static let maxCount = 4_096
    public var nextHop: ShortID?
    public var transfer: UInt32
    public var index: Int
    public var count: Int
    public var data: [UInt8]
    public init(nextHop: ShortID? = nil, transfer: UInt32, index: Int, count: Int, data: [UInt8]) {
        self.nextHop = nextHop
        self.transfer = transfer
        self.index = index
        self.count = count
        self.data = data
    }
}

/// Selective acknowledgement of transfers from `target`.
public struct AckRecord: Sendable, Hashable {
    public var target: ShortID
    public var entries: [AckEntry]
    /// Write it in the ranges form (5.5, flag W: whole transfers as ranges) when every entry is of a whole-bundle
    /// record (`received = 1`, no bitmap): toward a neighbour that announced capability bit 4. Decoded ones have it set.
    public var ranges: Bool
    public init(target: ShortID, entries: [AckEntry], ranges: Bool = false) {
        self.target = target
        self.entries = entries
        self.ranges = ranges
    }

    /// Whether it goes in the ranges form.
    public var isRangesForm: Bool { self.ranges && AckRanges.fits(self.entries) }
}

/// Fragments `0..<received` have all arrived; bit i (LSB first) of byte j of `bitmap` says fragment
/// `received + 1 + 8j + i` arrived too. A whole-bundle record is acknowledged with `received = 1`.
public struct AckEntry: Sendable, Hashable {
    public var transfer: UInt32
    public var received: Int
    public var bitmap: [UInt8]
    public init(transfer: UInt32, received: Int, bitmap: [UInt8] = []) {
        self.transfer = transfer
        self.received = received
        self.bitmap = bitmap
    }

    public func has(_ index: Int) -> Bool {
        if index < self.received { return true }
        let k = index - self.received - 1
        guard k >= 0, k / 8 < self.bitmap.count else { return false }
        return self.bitmap[k / 8] & (1 << UInt8(k % 8)) != 0
    }

    /// Builds the entry for a set of received indices.
    public init(transfer: UInt32, receivedIndices: Set<Int>) {
        var n = 0
        while receivedIndices.contains(n) { n += 1 }
        let beyond = receivedIndices.filter { $0 > n }
        var bitmap: [UInt8] = []
        if let top = beyond.max() {
            bitmap = [UInt8](repeating: 0, count: (top - n - 1) / 8 + 1)
            for i in beyond {
                let k = i - n - 1
                bitmap[k / 8] |= 1 << UInt8(k % 8)
            }
        }
        self.init(transfer: transfer, received: n, bitmap: bitmap)
    }
}

/// Who a node is. Flags say which keys are present (a 64-byte MTU sends the two keys in two packets).
public struct AnnounceRecord: Sendable, Hashable {
    public static let maxNameBytes = 32
    /// Capability bit 2, "hello": set in a node's first announce on a link after it starts; neighbours announce
    /// back, since the sender may have forgotten their keys.
    public static let hello: UInt8 = 0x04
    /// Capability bit 3, "compact": the node reads compact bundle records (SPEC 5.3); neighbours send it directed
    /// bundles of their own making in that form.
    public static let compact: UInt8 = 0x08
    /// Capability bit 4, "runs": the node reads bundle runs (SPEC 5.11, record type 8) and acks in the ranges form
    /// (5.5, flag W); neighbours send it their own directed bundles in runs and acknowledge its whole bundles in ranges.
    public static let runs: UInt8 = 0x10
    /// Capability bit 5, "cuts": the node reads cut bundles in runs (SPEC 5.12, run flags C and R); neighbours cut the
    /// last bundle of a packet to fill it and send its rest in the next packet.
    public static let cuts: UInt8 = 0x20
    /// Capability bit 6, "bare blocks": the node reads bodies in the bare block form (SPEC 7.2, 11.11: compression 2,
    /// dictionary byte 0, then the dictionary id); neighbours may send it bundles addressed to it in that form.
    public static let bareBlocks: UInt8 = 0x40
    /// Capability bit 7, "copy budgets": the node reads copy-budgets records (SPEC 5.14, record type 10) and hands on
    /// copies of a directed bundle without a route only within the budget it was given (binary spray-and-wait);
    /// neighbours write the budget of each copy they give it.
    public static let copyBudgets: UInt8 = 0x80
    /// Bit 0: forwards bundles for others. Bit 1: has an internet/TCP gateway. Bit 2: hello. Bit 3: compact.
    /// Others reserved (0).
    public var capabilities: UInt8
    public var signingKey: [UInt8]?
    public var agreementKey: [UInt8]?
    public var name: String?
    public init(capabilities: UInt8, signingKey: [UInt8]?, agreementKey: [UInt8]?, name: String? = nil) {
        self.capabilities = capabilities
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.name = name
    }
}

/// Digests (`BundleID.digest`) of bundles the sender holds. The last page of a summary has `isFinal`.
public struct SummaryRecord: Sendable, Hashable {
    public var isFinal: Bool
    public var digests: [UInt32]
    public init(isFinal: Bool, digests: [UInt32]) {
        self.isFinal = isFinal
        self.digests = digests
    }
}
