/// A copy-budgets record (type 10, SPEC 5.14): how many copies of a directed bundle the receiver of a transfer may
/// still make (binary spray-and-wait, Spyropoulos et al. 2005). It rides in the packet beside the bundle record or
/// fragment it is for, naming that transfer by its number (a transfer number names one bundle of one sender, 8.2), and
/// is read by the one neighbour the transfer is addressed to. The budget is per hop and not signed: it is not part of
/// the bundle (whose header the origin signs), so each holder says it afresh for the copy it hands on. A node older
/// than the record skips it (5.8), and so holds the bundle with no budget, as before (11.12).
///
///     entry, one or more, to the end of the record body:
///       transfer   varint (u32)   a transfer of the packet's sender addressed to the receiver
///       copies     varint         1 .. 65,535: the copies the receiver may hold and hand on, its own included
public struct CopyBudgetsRecord: Sendable, Hashable {
    /// The type code (SPEC 5.14: older nodes skip it, 5.8).
    public static let type: UInt8 = 10
    /// Flags reserved (a record with one set is skipped, 5.1).
    public static let reservedFlags: UInt8 = 0x07
    /// The largest budget written.
    public static let maxCopies = 65_535

    public struct Entry: Sendable, Hashable {
        public var transfer: UInt32
        public var copies: Int
        public init(transfer: UInt32, copies: Int) {
            self.transfer = transfer
            self.copies = copies
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }

    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: 4 * self.entries.count)
        for e in self.entries {
            w.varint(e.transfer)
            w.varint(min(max(e.copies, 1), Self.maxCopies))
        }
        return w.bytes
    }

    /// Total: the entries, or a typed error (none, a transfer past 2^32 - 1, a budget of 0 or above `maxCopies`,
    /// truncated).
    public static func decode(_ body: ArraySlice<UInt8>) throws(WireError) -> CopyBudgetsRecord {
        var r = ByteReader(body)
        var entries: [Entry] = []
        while !r.isAtEnd {
            let t = try r.varint32("copyBudgets.transfer")
            let n = try r.varintInt("copyBudgets.copies", max: Self.maxCopies)
            guard n >= 1 else { throw .invalidValue(field: "copyBudgets.copies", reason: "a budget is at least 1") }
            entries.append(Entry(transfer: t, copies: n))
        }
        guard !entries.isEmpty else { throw .truncated(field: "copyBudgets.entries") }
        return CopyBudgetsRecord(entries)
    }
}
