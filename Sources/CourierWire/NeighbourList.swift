/// A neighbour-list record (type 9, SPEC 5.13 and 8.5 rule 5): the short ids of the neighbours the sender hears, sent
/// with its announce and with the floods it sends. A receiver learns which of its own neighbours a copy of a flood
/// from that sender reached (two-hop knowledge), so it can leave out a rebroadcast that would reach nobody new. With
/// flag R (0x01) it also names the relays: the neighbours the sender asks to pass on the floods in the same packet
/// (chosen so that every node two hops away hears one of them: the multipoint relays of OLSR, RFC 3626 section 8). A
/// node older than the record skips it (5.1): to it, and of a sender that sends none, nothing is known, and it
/// rebroadcasts as before.
///
///     without R: id u32, 0 to `maxIDs` of them, in ascending order, no repeats (to the end of the record body)
///     with R:    relays u8 (r), then r relay ids in ascending order, then the other ids in ascending order
///
/// The list may leave out neighbours (it is cut to `maxIDs`, or to the room left in the packet; never a relay): a
/// receiver takes a listed neighbour as one the sender hears, never an unlisted one as one it does not.
public struct NeighbourListRecord: Sendable, Hashable {
    /// The type code (SPEC 5.13: older nodes skip it).
    public static let type: UInt8 = 9
    /// Flag R: the relays are named (first, after their count).
    public static let relaysFlag: UInt8 = 0x01
    /// Flags reserved (a record with one set is skipped, 5.1).
    public static let reservedFlags: UInt8 = 0x06
    /// At most this many ids (252 bytes).
    public static let maxIDs = 63

    /// Every id listed (the relays too), in ascending order, no repeats.
    public private(set) var ids: [ShortID]
    /// The relays (a subset of `ids`), in ascending order; nil without flag R.
    public private(set) var relays: [ShortID]?

    /// The ids given, sorted, repeats removed, cut to the first `maxIDs` (the relays first, then the others as given:
    /// the caller lists the ones it wants kept first). `relays` that are not among `ids` are listed too.
    public init(_ ids: [ShortID], relays: [ShortID]? = nil) {
        var seen = Set<ShortID>()
        var kept: [ShortID] = []
        for i in (relays ?? []) + ids where kept.count < Self.maxIDs && seen.insert(i).inserted { kept.append(i) }
        self.ids = kept.sorted()
        self.relays = relays.map { r in Set(r).intersection(seen).sorted() }
    }

    public var flags: UInt8 { self.relays == nil ? 0 : Self.relaysFlag }

    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: 1 + self.ids.count * 4)
        if let relays = self.relays {
            w.u8(UInt8(relays.count))
            let r = Set(relays)
            for i in relays { w.u32(i.rawValue) }
            for i in self.ids where !r.contains(i) { w.u32(i.rawValue) }
        } else {
            for i in self.ids { w.u32(i.rawValue) }
        }
        return w.bytes
    }

    /// Total: the list, or a typed error (a length not a multiple of 4, more than `maxIDs` ids, ids not in ascending
    /// order within their group or repeated, more relays than ids). `withRelays`: flag R was set.
    public static func decode(_ body: ArraySlice<UInt8>, withRelays: Bool = false) throws(WireError) -> NeighbourListRecord {
        var r = ByteReader(body)
        let relayCount = withRelays ? Int(try r.u8("neighbours.relays")) : 0
        let rest = r.remaining
        guard rest % 4 == 0 else {
            throw .invalidValue(field: "neighbours", reason: "length not a multiple of 4")
        }
        guard rest / 4 <= Self.maxIDs else {
            throw .tooLarge(field: "neighbours", size: rest / 4, limit: Self.maxIDs)
        }
        guard relayCount <= rest / 4 else {
            throw .invalidValue(field: "neighbours.relays", reason: "more relays than ids")
        }
        var relays: [ShortID] = []
        var others: [ShortID] = []
        while !r.isAtEnd {
            let id = ShortID(try r.u32("neighbours.id"))
            if relays.count < relayCount {
                if let last = relays.last, !(last < id) { throw .invalidValue(field: "neighbours.id", reason: "not in ascending order") }
                relays.append(id)
            } else {
                if let last = others.last, !(last < id) { throw .invalidValue(field: "neighbours.id", reason: "not in ascending order") }
                others.append(id)
            }
        }
        guard Set(relays).isDisjoint(with: others) else {
            throw .invalidValue(field: "neighbours.id", reason: "a relay listed twice")
        }
        return NeighbourListRecord(ids: (relays + others).sorted(), relays: withRelays ? relays : nil)
    }

    private init(ids: [ShortID], relays: [ShortID]?) {
        self.ids = ids
        self.relays = relays
    }
}
