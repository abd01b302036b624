/// The content of a receipt bundle (SPEC 6.8): the ids of the bundles its origin received, each as origin (u32),
/// created (u24) and sequence (varint).
public enum ReceiptContent {
    public static func encode(_ ids: [BundleID]) -> [UInt8] {
        var w = ByteWriter(capacity: ids.count * 9)
        for id in ids {
            w.u32(id.origin.rawValue)
            w.u24(id.created)
            w.varint(id.sequence)
        }
        return w.bytes
    }

    /// The ids, in order, up to the first entry that does not decode (the rest of a damaged receipt is ignored).
    public static func decode(_ content: [UInt8]) -> [BundleID] {
        var r = ByteReader(content)
        var out: [BundleID] = []
        while !r.isAtEnd {
            guard let o = try? r.u32("origin"), let c = try? r.u24("created"), let s = try? r.varint32("sequence"),
                  let id = try? BundleID(origin: ShortID(o), created: c, sequence: s)
            else { break }
            out.append(id)
        }
        return out
    }
}
