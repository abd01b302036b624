/// Bundle runs (SPEC 5.11, record type 8): a node's own directed bundles to one neighbour, several in one record.
///
/// ```
///  header     1000 L 000     type 8, flags reserved (0)
///  next hop   4              short id of the neighbour (the destination of every bundle in the run)
///  transfer   varint         the first bundle's transfer number
///  first      length varint (1 .. 66,048), then the first bundle in the run form (below)
///  later      zero or more, to the end of the record body:
///    step     varint         skip << 1 | like: transfer = the previous one's + 1 + skip; like (below)
///    length   varint         1 .. 66,048
///    bundle   length bytes   in the run form (below); a bundle "like" the one before it: only its rest
/// ```
///
/// The run form is the compact form (5.3: no origin, no destination, a default lifetime as 0) with three more cuts:
/// bit 0 of byte 1 (reserved in bundles) set means dictionary 1, whose byte is left out; after the first bundle of the
/// run, `created` is a zigzag varint of its difference from the previous bundle's, and `sequence` a zigzag varint of
/// `sequence - previous sequence - 1`. A bundle like the one before it (same bytes 0 and 1, more-flags and lifetime
/// field, same created, sequence = the previous + 1 + skip) is written as only the rest. The receiver puts every bundle
/// back byte for byte, so what the origin signature and the end-to-end tag cover is unchanged.
public enum BundleRun {
    public static let type: UInt8 = 8
    /// Flag C (SPEC 5.12): the run's last bundle is cut: its length is the whole run form's, and only its head (to the
    /// end of the record) is here.
    public static let cutFlag: UInt8 = 0x01
    /// Flag R (SPEC 5.12): the run begins with the rest of a bundle cut at the end of an earlier packet.
    public static let restFlag: UInt8 = 0x02
    /// Bit 0 of byte 1 in the run form: compression with dictionary 1, its byte left out.
    static let dictionaryOne: UInt8 = 0x01

    /// What the run form of a bundle needs from the bundle before it in the run.
    public struct Previous: Sendable, Hashable {
        public var created: UInt32
        public var sequence: UInt32
        /// Bytes 0 and 1 (with D) and the more-flags, as in the run form.
        var head: [UInt8]
        /// The lifetime field as written (0: the default).
        var lifetime: UInt32

        /// Whether a bundle with these fields, `skip` transfer numbers after this one's plus one, is "like" this one
        /// (written as only its rest): its sequence is this one's + 1 + skip.
        func likes(head: [UInt8], created: UInt32, sequence: UInt32, lifetime: UInt32, skip: UInt32) -> Bool {
            head == self.head && created == self.created && UInt64(self.sequence) + 1 + UInt64(skip) == UInt64(sequence)
                && lifetime == self.lifetime
        }
    }

    static func zigzag(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }
    static func unzigzag(_ v: UInt32) -> Int32 { Int32(bitPattern: v >> 1) ^ -Int32(bitPattern: v & 1) }

    /// The run form of `bundle` (sent by `origin` to next hop `destination`) after `previous` (nil: first of its run),
    /// with its own created and sequence; nil when the bundle has no compact form (not ours, not addressed to that
    /// neighbour, or a form that would not give back its bytes): it then goes in a bundle record.
    public static func form(_ bundle: [UInt8], origin: ShortID, destination: ShortID, previous: Previous?, skip: UInt32 = 0) -> (bytes: [UInt8], id: Previous, like: Bool)? {
        guard let compact = CompactBundle.compact(bundle, origin: origin, destination: destination) else { return nil }
        var r = ByteReader(compact[...])
        do {
            let b0 = try r.u8("bundle.kind")
            var b1 = try r.u8("bundle.flags")
            let more: UInt8? = b1 & 0x02 != 0 ? try r.u8("bundle.more") : nil
            let created = try r.u24("bundle.created")
            let sequence = try r.varint32("bundle.sequence")
            let lifetime = try r.varint32("bundle.lifetime")
            let afterLifetime = r
            if (more ?? 0) & 0x80 != 0 { _ = try r.varint32("bundle.respondBy") }
            if (more ?? 0) & 0x40 != 0 { _ = try r.bytes(7, "bundle.reference"); _ = try r.varint32("bundle.reference") }
            var cut: Int? = nil
            if (b1 >> 4) & 0x03 == 2 {
                let at = r.offset
                if try r.u8("bundle.dictionary") == 1 { cut = at }
            }
            if cut != nil { b1 |= Self.dictionaryOne }
            let head = [b0, b1] + (more.map { [$0] } ?? [])
            var tail = afterLifetime
            let rest = tail.rest()
            // A bundle "like" the one before it needs a rest to write (a 00 then a length of 0 would not read).
            let like = rest.count > (cut != nil ? 1 : 0)
                && (previous?.likes(head: head, created: created, sequence: sequence, lifetime: lifetime, skip: skip) ?? false)
            var w = ByteWriter(capacity: compact.count)
            if like {
                // Only the rest.
            } else if let p = previous {
                w.append(head)
                w.varint(Self.zigzag(Int32(bitPattern: created &- p.created)))
                w.varint(Self.zigzag(Int32(bitPattern: sequence &- p.sequence &- 1)))
            } else {
                w.append(head)
                w.u24(created)
                w.varint(sequence)
            }
            if !like { w.varint(lifetime) }
            if let cut {
                w.append(rest[rest.startIndex..<cut])
                w.append(rest[(cut + 1)...])
            } else {
                w.append(rest)
            }
            let id = Previous(created: created, sequence: sequence, head: head, lifetime: lifetime)
            // Only a form that gives back these very bytes.
            guard try self.expand(w.bytes[...], like: like, skip: skip, previous: previous, origin: origin, destination: destination).bundle == bundle else { return nil }
            return (w.bytes, id, like)
        } catch {
            return nil
        }
    }

    /// The whole bundle from its run form: total (a run form that cannot be read is a typed error).
    public static func expand(_ form: ArraySlice<UInt8>, like: Bool = false, skip: UInt32 = 0, previous: Previous?, origin: ShortID, destination: ShortID) throws(WireError) -> (bundle: [UInt8], id: Previous) {
        if like {
            guard let p = previous else {
                throw .invalidValue(field: "bundle run", reason: "a bundle like the one before it, first in its run")
            }
            guard UInt64(p.sequence) + 1 + UInt64(skip) <= UInt64(UInt32.max) else {
                throw .invalidValue(field: "bundle.sequence", reason: "past 2^32 - 1")
            }
            // The fields left out, then the rest: read as a form with previous' head, created, sequence + 1 + skip,
            // lifetime.
            var w = ByteWriter(capacity: form.count + 8)
            w.append(p.head)
            w.u24(p.created)
            w.varint(p.sequence + 1 + skip)
            w.varint(p.lifetime)
            w.append(form)
            return try self.expand(w.bytes[...], previous: nil, origin: origin, destination: destination)
        }
        var r = ByteReader(form)
        let b0 = try r.u8("bundle.kind")
        var b1 = try r.u8("bundle.flags")
        let more: UInt8? = b1 & 0x02 != 0 ? try r.u8("bundle.more") : nil
        let head = [b0, b1] + (more.map { [$0] } ?? [])
        let dictionaryOne = b1 & Self.dictionaryOne != 0
        b1 &= ~Self.dictionaryOne
        if dictionaryOne && (b1 >> 4) & 0x03 != 2 {
            throw .invalidValue(field: "bundle run", reason: "dictionary 1 flagged without dictionary compression")
        }
        let created: UInt32
        let sequence: UInt32
        if let p = previous {
            let c = Int64(p.created) + Int64(Self.unzigzag(try r.varint32("bundle.created")))
            guard c >= 0, c < 1 << 24 else { throw .invalidValue(field: "bundle.created", reason: "outside 0 ..< 2^24 minutes") }
            created = UInt32(c)
            sequence = p.sequence &+ 1 &+ UInt32(bitPattern: Self.unzigzag(try r.varint32("bundle.sequence")))
        } else {
            created = try r.u24("bundle.created")
            sequence = try r.varint32("bundle.sequence")
        }
        let lifetime = try r.varint32("bundle.lifetime")
        var w = ByteWriter(capacity: form.count + 4)
        w.u8(b0)
        w.u8(b1)
        if let more { w.u8(more) }
        w.u24(created)
        w.varint(sequence)
        w.varint(lifetime)
        let start = r.offset
        if (more ?? 0) & 0x80 != 0 { _ = try r.varint32("bundle.respondBy") }
        if (more ?? 0) & 0x40 != 0 { _ = try r.bytes(7, "bundle.reference"); _ = try r.varint32("bundle.reference") }
        w.append(form[start..<r.offset])
        if dictionaryOne { w.u8(1) }
        w.append(r.rest())
        let bundle = try CompactBundle.expand(w.bytes[...], origin: origin, destination: destination)
        return (bundle, Previous(created: created, sequence: sequence, head: head, lifetime: lifetime))
    }

    /// Whether `b` can go in a run: in a packet from its origin, to its destination as next hop, with a transfer number.
    public static func eligible(_ b: BundleRecord) -> Bool {
        guard b.inRun, let from = b.compactFrom, let next = b.nextHop, b.transfer != nil else { return false }
        return self.form(b.bundle, origin: from, destination: next, previous: nil) != nil
    }

    /// Whether `b` continues a run ending with `last`: same next hop, a higher transfer number (skipped ones are
    /// written as a step, 5.11).
    static func continues(_ last: BundleRecord, with b: BundleRecord) -> Bool {
        guard let t = last.transfer, let u = b.transfer, u > t, u - t - 1 <= UInt32(Int32.max) else { return false }
        return last.nextHop == b.nextHop && last.compactFrom == b.compactFrom
    }

    /// One bundle of a run as written: its step (nil for the first), then its run form.
    public struct Written: Sendable {
        public var step: UInt32?
        public var bytes: [UInt8]
        /// What the next bundle of the run is written after.
        var id: Previous
    }

    /// The bundles of a run as written, in order.
    public static func forms(_ run: [BundleRecord]) -> [Written] {
        var previous: Previous? = nil
        var lastTransfer: UInt32? = nil
        var out: [Written] = []
        for b in run {
            let skip = lastTransfer.map { b.transfer! - $0 - 1 } ?? 0
            // `eligible` checked every one of them, and `continues` their transfer numbers; the compact form puts back
            // any bundle it was made from, with any created and sequence before it.
            guard let from = b.compactFrom, let next = b.nextHop,
                  let f = self.form(b.bundle, origin: from, destination: next, previous: previous, skip: skip) else { preconditionFailure("bundle run of an ineligible record") }
            out.append(Written(step: previous == nil ? nil : skip << 1 | (f.like ? 1 : 0), bytes: f.bytes, id: f.id))
            previous = f.id
            lastTransfer = b.transfer
        }
        return out
    }

    /// The record body of a run (bundles eligible and continuing one another).
    static func encodeBody(_ run: [BundleRecord]) -> [UInt8] { self.encodeBody(nil, run, nil) }

    /// The record body of a run: the rest of a cut bundle (flag R), whole bundles continuing it and one another, the
    /// head of a cut bundle (flag C). After a rest the first whole bundle is written as a first one (its created and
    /// sequence whole), so it reads without the head; a head is always in that form too.
    static func encodeBody(_ rest: RunPiece?, _ run: [BundleRecord], _ head: RunPiece?) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u32((rest?.nextHop ?? run.first?.nextHop ?? head?.nextHop)!.rawValue)
        w.varint((rest?.transfer ?? run.first?.transfer ?? head?.transfer)!)
        var last: UInt32? = nil
        if let rest {
            w.varint(rest.data.count)
            w.append(rest.data)
            last = rest.transfer
        }
        let forms = self.forms(run)
        for (b, f) in zip(run, forms) {
            if let s = f.step { w.varint(s) } else if let l = last { w.varint((b.transfer! - l - 1) << 1) }
            w.varint(f.bytes.count)
            w.append(f.bytes)
            last = b.transfer
        }
        if let head, let total = head.total {
            if let l = last, let previous = forms.last?.id {
                // After a bundle of this run: its header as a later bundle's (5.11), the rest of the head as it is.
                let skip = head.transfer - l - 1
                guard let h = try? Self.firstHeader(head.data[...]) else { preconditionFailure("a head without its first form's header") }
                let like = previous.likes(head: h.id.head, created: h.id.created, sequence: h.id.sequence, lifetime: h.id.lifetime, skip: skip)
                var later = ByteWriter(capacity: 16)
                if !like {
                    later.append(h.id.head)
                    later.varint(Self.zigzag(Int32(bitPattern: h.id.created &- previous.created)))
                    later.varint(Self.zigzag(Int32(bitPattern: h.id.sequence &- previous.sequence &- 1)))
                    later.varint(h.id.lifetime)
                }
                w.varint(skip << 1 | (like ? 1 : 0))
                w.varint(total - h.length + later.bytes.count)
                w.append(later.bytes)
                w.append(head.data[h.length...])
            } else {
                // First in the run, or right after a rest: as a first bundle.
                if let l = last { w.varint((head.transfer - l - 1) << 1) }
                w.varint(total)
                w.append(head.data)
            }
        }
        return w.bytes
    }

    /// The header of a first bundle's run form (bytes 0 and 1, more-flags, created, sequence, lifetime) at the start
    /// of `bytes`: its fields and its length.
    static func firstHeader(_ bytes: ArraySlice<UInt8>) throws(WireError) -> (id: Previous, length: Int) {
        var r = ByteReader(bytes)
        let b0 = try r.u8("bundle.kind")
        let b1 = try r.u8("bundle.flags")
        let more: UInt8? = b1 & 0x02 != 0 ? try r.u8("bundle.more") : nil
        let created = try r.u24("bundle.created")
        let sequence = try r.varint32("bundle.sequence")
        let lifetime = try r.varint32("bundle.lifetime")
        let head = [b0, b1] + (more.map { [$0] } ?? [])
        return (Previous(created: created, sequence: sequence, head: head, lifetime: lifetime), r.offset - bytes.startIndex)
    }

    /// The header of a later bundle's run form after `previous` (or none when `like`) at the start of `bytes`, as a
    /// first bundle's header: the fields, the first form's header bytes, and how many bytes of `bytes` it took.
    static func laterHeader(_ bytes: ArraySlice<UInt8>, like: Bool, skip: UInt32, previous p: Previous) throws(WireError) -> (first: [UInt8], length: Int) {
        var w = ByteWriter(capacity: 16)
        if like {
            guard UInt64(p.sequence) + 1 + UInt64(skip) <= UInt64(UInt32.max) else {
                throw .invalidValue(field: "bundle.sequence", reason: "past 2^32 - 1")
            }
            w.append(p.head)
            w.u24(p.created)
            w.varint(p.sequence + 1 + skip)
            w.varint(p.lifetime)
            return (w.bytes, 0)
        }
        var r = ByteReader(bytes)
        let b0 = try r.u8("bundle.kind")
        let b1 = try r.u8("bundle.flags")
        let more: UInt8? = b1 & 0x02 != 0 ? try r.u8("bundle.more") : nil
        let c = Int64(p.created) + Int64(Self.unzigzag(try r.varint32("bundle.created")))
        guard c >= 0, c < 1 << 24 else { throw .invalidValue(field: "bundle.created", reason: "outside 0 ..< 2^24 minutes") }
        let sequence = p.sequence &+ 1 &+ UInt32(bitPattern: Self.unzigzag(try r.varint32("bundle.sequence")))
        let lifetime = try r.varint32("bundle.lifetime")
        w.u8(b0)
        w.u8(b1)
        if let more { w.u8(more) }
        w.u24(UInt32(c))
        w.varint(sequence)
        w.varint(lifetime)
        return (w.bytes, r.offset - bytes.startIndex)
    }

    /// The run form of `b` as a first bundle of a run (how a cut bundle is written, 5.12).
    public static func firstForm(_ b: BundleRecord) -> [UInt8]? {
        guard let from = b.compactFrom, let next = b.nextHop else { return nil }
        return self.form(b.bundle, origin: from, destination: next, previous: nil)?.bytes
    }

    /// Decodes a run's body into its bundle records, each whole, and the pieces of cut bundles (flags C and R, 5.12),
    /// from packet sender `sender`.
    static func decode(_ body: ArraySlice<UInt8>, flags: UInt8 = 0, sender: ShortID?) throws(WireError) -> [Record] {
        guard let sender else { throw .invalidValue(field: "bundle run", reason: "outside an ordinary packet") }
        var r = ByteReader(body)
        let next = ShortID(try r.u32("run.nextHop"))
        var transfer = UInt64(try r.varint32("run.transfer"))
        var out: [Record] = []
        var previous: Previous? = nil
        var first = true
        if flags & Self.restFlag != 0 {
            let len = try r.varintInt("run.rest.length", max: CourierBundle.maxEncodedSize)
            guard len >= 1 else { throw .truncated(field: "run.rest") }
            out.append(.piece(RunPiece(nextHop: next, transfer: UInt32(transfer), total: nil, data: Array(try r.bytes(len, "run.rest")))))
            first = false
        }
        var cut = false
        while !r.isAtEnd {
            var like = false
            var skip: UInt32 = 0
            if !first {
                let step = try r.varint32("run.step")
                (skip, like) = (step >> 1, step & 1 != 0)
                transfer += 1 + UInt64(skip)
                guard transfer <= UInt64(UInt32.max) else {
                    throw .invalidValue(field: "run.transfer", reason: "transfer numbers past 2^32 - 1")
                }
            }
            first = false
            let len = try r.varintInt("run.length", max: CourierBundle.maxEncodedSize)
            guard len >= 1 else { throw .truncated(field: "run.bundle") }
            if flags & Self.cutFlag != 0 && len > r.remaining {
                // The head of a cut bundle: the rest of the record. Its header (whole in the head) goes back to a first
                // bundle's, so the piece joins its rest without the run around it.
                let data = r.rest()
                if let p = previous {
                    let h = try Self.laterHeader(data, like: like, skip: skip, previous: p)
                    guard h.length < data.count else { throw .truncated(field: "run.cut") }
                    let piece = h.first + data[(data.startIndex + h.length)...]
                    out.append(.piece(RunPiece(nextHop: next, transfer: UInt32(transfer), total: len - h.length + h.first.count, data: piece)))
                } else {
                    guard !like else { throw .invalidValue(field: "run.cut", reason: "a cut bundle like the one before it, first in its run") }
                    guard !data.isEmpty else { throw .truncated(field: "run.cut") }
                    out.append(.piece(RunPiece(nextHop: next, transfer: UInt32(transfer), total: len, data: Array(data))))
                }
                cut = true
                break
            }
            let form = try r.bytes(len, "run.bundle")
            let (bundle, id) = try self.expand(form, like: like, skip: skip, previous: previous, origin: sender, destination: next)
            guard bundle.count <= CourierBundle.maxEncodedSize else {
                throw .tooLarge(field: "run.bundle", size: bundle.count, limit: CourierBundle.maxEncodedSize)
            }
            out.append(.bundle(BundleRecord(nextHop: next, transfer: UInt32(transfer), bundle: bundle, compactFrom: sender, inRun: true)))
            previous = id
        }
        if flags & Self.cutFlag != 0 && !cut { throw .truncated(field: "run.cut") }
        guard !out.isEmpty else { throw .truncated(field: "run.bundles") }
        return out
    }
}

/// A piece of a bundle cut across two packets (SPEC 5.12): the head, at the end of a run (flag C), with the length of
/// the bundle's whole run form (the first form of 5.11), or the rest, at the start of a run in a later packet (flag
/// R). The receiver joins the two (same sender, next hop and transfer number) into the run form and puts the bundle
/// back as from any run; it acknowledges the transfer only then.
public struct RunPiece: Sendable, Hashable {
    public var nextHop: ShortID
    public var transfer: UInt32
    /// The head's: the length of the whole run form; nil for the rest.
    public var total: Int?
    /// The piece's bytes of the run form.
    public var data: [UInt8]
    public var isHead: Bool { self.total != nil }
    public init(nextHop: ShortID, transfer: UInt32, total: Int?, data: [UInt8]) {
        self.nextHop = nextHop
        self.transfer = transfer
        self.total = total
        self.data = data
    }

    /// The head and the rest of `b` (a run-eligible bundle record) cut after `keep` bytes of its first form; nil when
    /// `keep` leaves either piece empty.
    public static func cut(_ b: BundleRecord, keep: Int) -> (head: RunPiece, rest: RunPiece)? {
        guard let form = BundleRun.firstForm(b), let next = b.nextHop, let t = b.transfer, keep < form.count,
              let header = try? BundleRun.firstHeader(form[...]), keep > header.length else { return nil }
        return (RunPiece(nextHop: next, transfer: t, total: form.count, data: Array(form[..<keep])),
                RunPiece(nextHop: next, transfer: t, total: nil, data: Array(form[keep...])))
    }

    /// The bundle a head and its rest make (sent by `origin`): total, a typed error when they do not make one.
    public static func join(head: RunPiece, rest: RunPiece, origin: ShortID) throws(WireError) -> [UInt8] {
        guard let total = head.total, head.data.count + rest.data.count == total else {
            throw .invalidValue(field: "run.cut", reason: "the rest does not complete the head (another cut of the bundle)")
        }
        let bundle = try BundleRun.expand((head.data + rest.data)[...], previous: nil, origin: origin, destination: head.nextHop).bundle
        guard bundle.count <= CourierBundle.maxEncodedSize else {
            throw .tooLarge(field: "run.bundle", size: bundle.count, limit: CourierBundle.maxEncodedSize)
        }
        return bundle
    }
}

/// The whole-transfer ranges form of an ack record (SPEC 5.5, flag W): transfers acknowledged whole (`received = 1`,
/// no bitmap: whole-bundle records), written as ranges.
enum AckRanges {
    /// Most entries one ranges-form record may stand for (bounded decoding).
    static let maxEntries = 4_096

    /// Whether these entries can go in the ranges form: all of whole-bundle records.
    static func fits(_ entries: [AckEntry]) -> Bool {
        !entries.isEmpty && entries.count <= Self.maxEntries && entries.allSatisfy { $0.received == 1 && $0.bitmap.isEmpty }
    }

    /// Ranges (first transfer, how many more follow it), ascending, merged.
    static func ranges(_ entries: [AckEntry]) -> [(UInt32, UInt32)] {
        var out: [(UInt32, UInt32)] = []
        for t in Set(entries.map(\.transfer)).sorted() {
            if let last = out.last, UInt64(last.0) + UInt64(last.1) + 1 == UInt64(t) {
                out[out.count - 1].1 += 1
            } else {
                out.append((t, 0))
            }
        }
        return out
    }

    static func decode(_ r: inout ByteReader) throws(WireError) -> [AckEntry] {
        var entries: [AckEntry] = []
        while !r.isAtEnd {
            let first = try r.varint32("ack.transfer")
            let more = try r.varint32("ack.more")
            guard UInt64(first) + UInt64(more) <= UInt64(UInt32.max) else {
                throw .invalidValue(field: "ack.more", reason: "transfer numbers past 2^32 - 1")
            }
            guard entries.count + Int(more) + 1 <= Self.maxEntries else {
                throw .tooLarge(field: "ack.ranges", size: entries.count + Int(more) + 1, limit: Self.maxEntries)
            }
            for k in 0...more { entries.append(AckEntry(transfer: first + k, received: 1)) }
        }
        guard !entries.isEmpty else { throw .truncated(field: "ack.ranges") }
        return entries
    }
}
