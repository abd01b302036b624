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

    /// The ids, in order. Total: content that does not parse as whole entries is malformed (SPEC 6.8: not delivered)
    /// and throws, naming the entry and the field where it ends or goes wrong; no id of a malformed receipt is
    /// returned (none is acted on). Empty content decodes to no ids.
    public static func decode(_ content: [UInt8]) throws(WireError) -> [BundleID] {
        var r = ByteReader(content)
        var out: [BundleID] = []
        while !r.isAtEnd {
            do {
                let o = try r.u32("origin")
                let c = try r.u24("created")
                let s = try r.varint32("sequence")
                out.append(try BundleID(origin: ShortID(o), created: c, sequence: s))
            } catch {
                throw error.within("receipt entry \(out.count + 1)")
            }
        }
        return out
    }
}
