import CourierWire
import Foundation

/// Live drills (SPEC 6.17), at the drill's origin: each answer (a receipt part whose holder said its hop count) is
/// kept with when it came and its hops, and in the feed; a refused one (forged, or from a holder whose keys are not
/// known here) is in the feed too (and, like every refused part, logged and counted in `relay status`). The holders'
/// side is in AggregatedReceipts.swift: a relay that reads a drill makes its part with its hop count.
extension Node {
    /// The hop counts a record's parts carry (none without flag 0x01).
    static func partHops(_ r: ReceiptPartsRecord) -> [PartKey: UInt8] {
        var out: [PartKey: UInt8] = [:]
        for p in r.partsWithHops { if let h = p.hops { out[PartKey(id: p.id, holder: p.holder)] = h } }
        return out
    }

    /// A part that checked out. With a hop count it answers one of our drills (only drill parts carry one; a part
    /// saying 255 rode in a record with drill parts but carries none: another alert's, or an older relay's answer,
    /// which `relay drill report` finds among the receipts).
    func drillAnswered(_ id: BundleID, by holder: ShortID, hops: UInt8?, now: Double) {
        guard let hops, hops != ReceiptPartsRecord.unknownHops else { return }
        do {
            try self.store.drillAnswered(id, by: holder, hops: hops, now: Int64(now))
        } catch {
            self.rejectStorage("cannot keep \(holder)'s answer to drill \(id): \(error)", error)
        }
    }

    /// A part refused. When it is for one of our drills (it carries a hop count, or the bundle it names is a drill
    /// still held here) the feed says so under the drill.
    func drillAnswerRefused(_ id: BundleID, claiming holder: ShortID, hops: UInt8?, from: NodeID, known: Bool, now: Double) {
        var drill = hops.map { $0 != ReceiptPartsRecord.unknownHops } ?? false
        if !drill, let found = self.storing("read a bundle a refused receipt part names", { try self.store.bundle(id) }), let q = found {
            do { drill = DrillMark.isDrill(try CourierBundle(decoding: q.data)) } catch {
                self.reject("held bundle \(id) does not decode (\(error)): cannot tell whether a refused receipt part answers a drill")
            }
        }
        guard drill else { return }
        let why = known ? "its tag is not \(holder)'s (forged or damaged), sent by \(from.short)"
                        : "the keys of \(holder) are not known here, sent by \(from.short)"
        do {
            try self.store.drillAnswerRefused(id, claiming: holder, reason: why, now: Int64(now))
        } catch {
            self.rejectStorage("cannot record a refused answer to drill \(id): \(error)", error)
        }
    }
}
