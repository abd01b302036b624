/// Splits an encoded bundle into records that each fit one packet of a link's MTU.
public enum Fragmenter {
    /// The records that carry `bundle` over a link of `mtu` bytes: one bundle record if it fits, otherwise
    /// fragments of equal size (the last one shorter). Each returned record fits a packet on its own.
    /// A whole-bundle record carries the transfer number only when an acknowledgement is wanted, by default
    /// when it is addressed to a next hop (custody transfer); flooded bundles are not positively acknowledged.
    public static func records(
        bundle: [UInt8], mtu: Int, transfer: UInt32, nextHop: ShortID? = nil, wantAck: Bool? = nil
    ) throws(WireError) -> [Record] {
        let wantAck = wantAck ?? (nextHop != nil)
        let (count, size) = try Self.plan(
            bundleSize: bundle.count, mtu: mtu, transfer: transfer, nextHop: nextHop, wantAck: wantAck)
        if count == 1 {
            return [.bundle(BundleRecord(nextHop: nextHop, transfer: wantAck ? transfer : nil, bundle: bundle))]
        }
        var out: [Record] = []
        out.reserveCapacity(count)
        var start = 0
        for i in 0..<count {
            let end = min(bundle.count, start + size)
            out.append(.fragment(FragmentRecord(
                nextHop: nextHop, transfer: transfer, index: i, count: count, data: Array(bundle[start..<end]))))
            start = end
        }
        return out
    }

    /// How `records` cuts a bundle of `bundleSize` bytes: `count` 1 for one bundle record, otherwise `count`
    /// fragments of `size` data bytes each (the last one shorter). Every record, alone in a packet of the ordinary
    /// form and written last (without a length, 5.1), fits `mtu`; `Packet.fits` is the rule senders pack by.
    public static func plan(
        bundleSize: Int, mtu: Int, transfer: UInt32, nextHop: ShortID? = nil, wantAck: Bool? = nil
    ) throws(WireError) -> (count: Int, size: Int) {
        let wantAck = wantAck ?? (nextHop != nil)
        guard mtu >= Packet.minimumMTU else {
            throw .invalidValue(field: "mtu", reason: "must be at least \(Packet.minimumMTU)")
        }
        // The whole-bundle record: header byte, next hop, transfer number, bundle.
        let whole = 1 + (nextHop != nil ? 4 : 0) + (wantAck ? ByteWriter.varintSize(UInt64(transfer)) : 0) + bundleSize
        if Packet.overhead + whole <= mtu { return (1, bundleSize) }

        // Room for data in one fragment packet, given the varint sizes of count and index.
        func room(count: Int) -> Int {
            mtu - Packet.overhead - 1 - (nextHop != nil ? 4 : 0) - ByteWriter.varintSize(UInt64(transfer))
                - ByteWriter.varintSize(count - 1) - ByteWriter.varintSize(count)
        }
        var count = 2
        while true {
            let r = room(count: count)
            guard r > 0 else { throw .invalidValue(field: "mtu", reason: "too small for fragments") }
            let needed = (bundleSize + r - 1) / r
            if needed <= count { break }
            count = needed
        }
        guard count <= FragmentRecord.maxCount else {
            throw .tooLarge(field: "bundle at this MTU", size: count, limit: FragmentRecord.maxCount)
        }
        // Spread the bytes evenly so no fragment is a runt.
        return (count, (bundleSize + count - 1) / count)
    }
}

/// Packs records into as few packets of `mtu` bytes as possible, keeping their order.
public enum Packer {
    public static func pack(_ records: [Record], mtu: Int, announceForm: Bool = false) -> [[Record]] {
        let overhead = announceForm ? Packet.announceOverhead : Packet.overhead
        var packets: [[Record]] = []
        var current: [Record] = []
        // Size of `current` if its last record is written without a length.
        var sizeWithLengths = 0
        for r in records {
            let body = r.encodeBody().count
            let lengthBytes = ByteWriter.varintSize(body)
            let full = 1 + lengthBytes + body
            let candidate = overhead + sizeWithLengths + full - lengthBytes
            if current.isEmpty || candidate <= mtu {
                current.append(r)
                sizeWithLengths += full
            } else {
                packets.append(current)
                current = [r]
                sizeWithLengths = full
            }
        }
        if !current.isEmpty { packets.append(current) }
        return packets
    }
}

/// Collects fragments into bundles. Out-of-order, duplicated and missing fragments are fine; a transfer that has
/// not completed within `timeout` seconds of its last fragment is given up. Memory is bounded.
/// The state is `Codable` so a store can keep it across restarts.
public struct Reassembler: Sendable, Codable {
    public struct Key: Sendable, Hashable, Codable {
        public let sender: [UInt8]
        public let transfer: UInt32
        public init(sender: NodeID, transfer: UInt32) {
            self.sender = sender.bytes
            self.transfer = transfer
        }
    }

    public struct Partial: Sendable, Codable {
        public let count: Int
        public var pieces: [Int: [UInt8]]
        public var bytes: Int
        public var lastHeard: Int64
        public var received: Set<Int> { Set(self.pieces.keys) }
    }

    public enum Outcome: Sendable, Hashable {
        /// Still missing fragments; the ack to send back.
        case incomplete(AckEntry)
        /// All fragments arrived: the encoded bundle, and the final ack.
        case complete([UInt8], AckEntry)
        /// A fragment of a transfer already completed (a retransmission after our ack was lost): ack it again.
        case duplicate(AckEntry)
        /// The fragment conflicts with what was collected (different count, or over the limits): dropped.
        case rejected(String)
    }

    public struct Completed: Sendable, Codable {
        public let count: Int
        public let at: Int64
        /// CRC-32C of each fragment's data, in index order: a late fragment is a duplicate of this transfer only if
        /// its bytes are the same, so a new bundle under a reused transfer number is never acknowledged as this one.
        public let pieces: [UInt32]?
    }

    public static let maxCompleted = 4_096
    public var timeout: Int64
    public var maxBytes: Int
    public private(set) var partials: [Key: Partial] = [:]
    /// Transfers completed within the timeout, so late duplicates are acknowledged, not collected again.
    public private(set) var completed: [Key: Completed] = [:]
    public private(set) var totalBytes = 0

    public init(timeout: Int64 = 3_600, maxBytes: Int = 4 * 1_048_576) {
        self.timeout = timeout
        self.maxBytes = maxBytes
    }

    /// Whether `f` belongs to another bundle than the one collected (or completed) under its transfer number: for a
    /// completed transfer a different count or different bytes at its index, for one being collected different
    /// bytes at an index already held (a different count is refused, rule 2). The sender reused the number
    /// (SPEC 8.3 rule 7): what was kept under it is forgotten.
    public func conflicts(_ f: FragmentRecord, from sender: NodeID) -> Bool {
        let key = Key(sender: sender, transfer: f.transfer)
        if let done = self.completed[key] { return !Self.same(done, f) }
        if let p = self.partials[key] { return p.count == f.count && p.pieces[f.index].map { $0 != f.data } ?? false }
        return false
    }

    static func same(_ done: Completed, _ f: FragmentRecord) -> Bool {
        guard done.count == f.count, let pieces = done.pieces, f.index < pieces.count else { return false }
        return pieces[f.index] == CRC32C.checksum(f.data)
    }

    public mutating func add(_ f: FragmentRecord, from sender: NodeID, now: Int64) -> Outcome {
        let key = Key(sender: sender, transfer: f.transfer)
        if let done = self.completed[key] {
            // Acknowledged again only when it is the same fragment: same count, same bytes at that index.
            if Self.same(done, f) { return .duplicate(AckEntry(transfer: f.transfer, received: f.count)) }
            self.completed[key] = nil  // the sender reused the transfer number for a new bundle
        }
        if let p = self.partials[key], p.count == f.count, p.pieces[f.index].map({ $0 != f.data }) ?? false {
            self.drop(key)  // pieces of another bundle under a reused number: start again with this one
        }
        var p = self.partials[key] ?? Partial(count: f.count, pieces: [:], bytes: 0, lastHeard: now)
        guard p.count == f.count, f.index < f.count else { return .rejected("fragment count changed mid-transfer") }
        if p.pieces[f.index] == nil {
            guard p.bytes + f.data.count <= CourierBundle.maxEncodedSize else {
                self.drop(key)
                return .rejected("transfer exceeds the bundle size limit")
            }
            if self.totalBytes + f.data.count > self.maxBytes {
                self.evictOldest(except: key)
                guard self.totalBytes + f.data.count <= self.maxBytes else {
                    return .rejected("reassembly memory full")
                }
            }
            p.pieces[f.index] = f.data
            p.bytes += f.data.count
            self.totalBytes += f.data.count
        }
        p.lastHeard = now
        let ack = AckEntry(transfer: f.transfer, receivedIndices: p.received)
        if p.pieces.count == p.count {
            var out: [UInt8] = []
            out.reserveCapacity(p.bytes)
            for i in 0..<p.count { out.append(contentsOf: p.pieces[i]!) }
            self.partials[key] = p
            self.drop(key)
            self.lastCompleted = LastCompleted(key: key, partial: p, last: f.index)
            self.completed[key] = Completed(count: p.count, at: now, pieces: (0..<p.count).map { CRC32C.checksum(p.pieces[$0]!) })
            if self.completed.count > Self.maxCompleted {
                let oldest = self.completed.min { $0.value.at < $1.value.at }!.key
                self.completed[oldest] = nil
            }
            return .complete(out, ack)
        }
        self.partials[key] = p
        return .incomplete(ack)
    }

    /// The transfer completed last: its pieces, and the index of the fragment that completed it (for `reopen`).
    private var lastCompleted: LastCompleted? = nil
    private struct LastCompleted: Sendable, Codable {
        let key: Key
        let partial: Partial
        let last: Int
    }

    /// Undoes the completion of the transfer completed last (the receiver could not store the bundle, so it does not
    /// acknowledge it): its pieces are kept but the one that completed it, so the sender's retransmission of that
    /// fragment completes it again (the others were acknowledged already and are not sent again).
    public mutating func reopen(sender: NodeID, transfer: UInt32) {
        let key = Key(sender: sender, transfer: transfer)
        guard let l = self.lastCompleted, l.key == key else { return }
        self.lastCompleted = nil
        self.completed[key] = nil
        var reopened = l.partial
        if let piece = reopened.pieces.removeValue(forKey: l.last) { reopened.bytes -= piece.count }
        self.drop(key)
        self.partials[key] = reopened
        self.totalBytes += reopened.bytes
    }

    /// Gives up transfers not heard from within the timeout. Returns the keys dropped.
    @discardableResult
    public mutating func expire(now: Int64) -> [Key] {
        let stale = self.partials.filter { now - $0.value.lastHeard > self.timeout }.map(\.key)
        for k in stale { self.drop(k) }
        self.completed = self.completed.filter { now - $0.value.at <= self.timeout }
        return stale
    }

    private mutating func drop(_ key: Key) {
        if let p = self.partials.removeValue(forKey: key) { self.totalBytes -= p.bytes }
    }

    private mutating func evictOldest(except keep: Key) {
        let order = self.partials.filter { $0.key != keep }.sorted { $0.value.lastHeard < $1.value.lastHeard }
        for (k, _) in order {
            guard self.totalBytes > 0 else { break }
            self.drop(k)
            if self.totalBytes <= self.maxBytes / 2 { break }
        }
    }
}

extension AnnounceRecord {
    /// The announce records that say who a node is over a link of `mtu` bytes (SPEC 9.2), each the only record of
    /// its own announce-form packet: the whole announce when it fits, otherwise parts that each carry the
    /// capabilities and, in this order, the name, the signing key and the agreement key, as many of them as fit
    /// (the last part completes the keys, so a receiver knows the name when it learns the node). A name longer than
    /// 32 bytes is cut at the last whole character that fits.
    public static func parts(_ announce: AnnounceRecord, mtu: Int) -> [AnnounceRecord] {
        var name = announce.name
        if let n = name, n.utf8.count > Self.maxNameBytes {
            var cut = ""
            for c in n where cut.utf8.count + String(c).utf8.count <= Self.maxNameBytes { cut.append(c) }
            name = cut
        }
        let whole = AnnounceRecord(capabilities: announce.capabilities, signingKey: announce.signingKey,
                                   agreementKey: announce.agreementKey, name: name)
        let room = mtu - Packet.announceOverhead - 2  // record header byte and capabilities byte
        func size(_ a: AnnounceRecord) -> Int {
            (a.signingKey?.count ?? 0) + (a.agreementKey?.count ?? 0) + (a.name?.utf8.count ?? 0)
        }
        if size(whole) <= room { return [whole] }
        var parts: [AnnounceRecord] = []
        var current = AnnounceRecord(capabilities: announce.capabilities, signingKey: nil, agreementKey: nil)
        var empty = true
        func add(_ bytes: Int, _ set: (inout AnnounceRecord) -> Void) {
            if !empty && size(current) + bytes > room {
                parts.append(current)
                current = AnnounceRecord(capabilities: announce.capabilities, signingKey: nil, agreementKey: nil)
            }
            set(&current)
            empty = false
        }
        if let n = name { add(n.utf8.count) { $0.name = n } }
        if let s = whole.signingKey { add(s.count) { $0.signingKey = s } }
        if let g = whole.agreementKey { add(g.count) { $0.agreementKey = g } }
        parts.append(current)
        return parts
    }
}
