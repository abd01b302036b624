/// A neighbour-list record (type 9, SPEC 5.12 and 8.5 rule 5): the short ids of the neighbours the sender hears, sent with
/// its announce. A receiver learns which of its own neighbours a copy of a flood from that sender reached (two-hop
/// knowledge), so it can leave out a rebroadcast that would reach nobody new (8.5 rule 5). A node older than the record skips
/// it (5.1): to it, and of a sender that sends none, nothing is known, and it rebroadcasts as before.
///
///     id u32, 0 to `maxIDs` of them, in ascending order, no repeats (to the end of the record body)
///
/// The list may leave out neighbours (it is cut to `maxIDs`, or to the room left in the packet): a receiver takes a
/// listed neighbour as one the sender hears, never an unlisted one as one it does not.
public struct NeighbourListRecord: Sendable, Hashable {
    /// The type code (SPEC 5.12: older nodes skip it).
    public static let type: UInt8 = 9
    /// Flags: none defined; all three reserved (a record with one set is skipped, 5.1).
    public static let reservedFlags: UInt8 = 0x07
    /// At most this many ids (252 bytes).
    public static let maxIDs = 63

    /// In ascending order, no repeats.
    public private(set) var ids: [ShortID]

    /// The ids given, sorted, repeats removed, cut to the first `maxIDs` of `ids` as given (the caller lists the
    /// ones it wants kept first).
    public init(_ ids: [ShortID]) {
        var seen = Set<ShortID>()
        var kept: [ShortID] = []
        for i in ids where kept.count < Self.maxIDs && seen.insert(i).inserted { kept.append(i) }
        self.ids = kept.sorted()
    }

    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: self.ids.count * 4)
        for i in self.ids { w.u32(i.rawValue) }
        return w.bytes
    }

    /// Total: the list, or a typed error (a length not a multiple of 4, more than `maxIDs` ids, ids not in ascending
    /// order or repeated).
    public static func decode(_ body: ArraySlice<UInt8>) throws(WireError) -> NeighbourListRecord {
        guard body.count % 4 == 0 else {
            throw .invalidValue(field: "neighbours", reason: "length not a multiple of 4")
        }
        guard body.count / 4 <= Self.maxIDs else {
            throw .tooLarge(field: "neighbours", size: body.count / 4, limit: Self.maxIDs)
        }
        var r = ByteReader(body)
        var ids: [ShortID] = []
        while !r.isAtEnd {
            let id = ShortID(try r.u32("neighbours.id"))
            if let last = ids.last, !(last < id) {
                throw .invalidValue(field: "neighbours.id", reason: "not in ascending order")
            }
            ids.append(id)
        }
        return NeighbourListRecord(sorted: ids)
    }

    private init(sorted: [ShortID]) { self.ids = sorted }
}
