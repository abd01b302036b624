import CourierMedium
import CourierWire
import Foundation

/// Acks: the acks a receiver owes, batched per link and neighbour (`LinkState.acks`, `partialAcks`,
/// `unackedFragments`), at least one per window of fragments (SPEC 8.5 rule 1).
extension Node {
    /// The ack records for `target`'s transfers: toward a neighbour that announced capability bit 4, the entries of
    /// whole-bundle records (`received = 1`, no bitmap) in the ranges form (SPEC 5.5, flag W) and the others in an
    /// ordinary record; otherwise one ordinary record.
    func ackRecords(to target: ShortID, _ entries: [UInt32: AckEntry]) -> [Record] {
        let all = entries.keys.sorted().map { entries[$0]! }
        guard self.readsRanges(target) else { return [.ack(AckRecord(target: target, entries: all))] }
        let whole = all.filter { $0.received == 1 && $0.bitmap.isEmpty }
        let other = all.filter { !($0.received == 1 && $0.bitmap.isEmpty) }
        var out: [Record] = []
        if !whole.isEmpty { out.append(.ack(AckRecord(target: target, entries: whole, ranges: true))) }
        if !other.isEmpty { out.append(.ack(AckRecord(target: target, entries: other))) }
        return out
    }

    /// Whether every neighbour with this short id announced capability bit 4 (runs and ranges acks).
    func readsRanges(_ target: ShortID) -> Bool {
        let same = self.neighbours.values.filter { $0.id.short == target }
        return !same.isEmpty && same.allSatisfy { $0.capabilities & AnnounceRecord.runs != 0 }
    }

    /// Complete transfers of a neighbour that reads ranges acks wait this many ack delays (0.6 s by default; SPEC 8.5):
    /// one ranges record then answers for every bundle of a burst, and the sender's timeout (at least 1 s + 4 ack
    /// delays) is not reached.
    static let rangesAckDelayFactor = 3.0

    func queueAck(_ e: AckEntry, to: ShortID, link: String, now: Double, complete: Bool = true) {
        guard var l = self.links[link] else { return }
        l.acks[to, default: [:]][e.transfer] = e
        if complete { l.partialAcks[to]?.remove(e.transfer) } else { l.partialAcks[to, default: []].insert(e.transfer) }
        // Complete transfers are acknowledged quickly; partial ones after a pause, so one ack covers a window.
        let delay = complete ? self.config.ackDelay * (self.readsRanges(to) ? Self.rangesAckDelayFactor : 1) : self.config.ackDelay * 4
        var windowFull = false
        if complete {
            l.unackedFragments[to]?[e.transfer] = nil
        } else {
            let n = (l.unackedFragments[to]?[e.transfer] ?? 0) + 1
            l.unackedFragments[to, default: [:]][e.transfer] = n
            windowFull = n >= self.config.window
        }
        if windowFull {
            // A window of fragments since the last ack: acknowledge now, whatever else is on its way.
            l.ackDue = now
        } else if !complete && l.info.properties.duplex == .half && l.info.properties.bitsPerSecond != nil {
            // Half-duplex radio: more of the window is probably still coming in the same transmission; answering
            // now would collide with it. Re-armed by every fragment.
            let p = l.info.properties
            l.ackDue = max(l.ackDue ?? 0, now + p.airtime(bytes: p.mtu) + delay)
        } else {
            l.ackDue = min(l.ackDue ?? .infinity, now + delay)
        }
        self.links[link] = l
    }
}
