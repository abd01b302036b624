import CourierMedium
import struct CourierStore.QueuedBundle
import CourierWire
import Foundation

/// Transfers and ARQ: each bundle being sent on a link, to everyone or to one neighbour (`transfers`); acks,
/// retransmission time-outs (RFC 6298 estimates per neighbour), backoff, giving up, transfer numbers
/// (`transferNumbers`) and the fragment size of a noisy line (SPEC 8).
extension Node {
    struct TransferKey: Hashable {
        let link: String
        let target: NodeID?
        let bundle: BundleID
    }

    struct Transfer {
        let key: TransferKey
        var number: UInt32
        let priority: PriorityClass
        let order: Int
        var records: [Record]
        var sent: Set<Int> = []
        var acked: Set<Int> = []
        var firstSent: Double? = nil
        /// When records of it last went out (directed transfers): a time-out counts against the line only if the
        /// neighbour was heard after that (`noteRecordOutcome`).
        var lastSent: Double? = nil
        var due: Double = 0
        /// When the fragments in flight count as lost (directed transfers); the window keeps sending until then.
        var rtoAt: Double = .infinity
        /// Retransmission timeouts since the last ack that showed progress: the backoff exponent, and (with the
        /// neighbour silent) the count that gives up on it. Reset by progress: on a noisy line, losses are not
        /// absence, and a transfer that moves must not creep towards giving up (SPEC 8.5 rule 5).
        var attempts = 0
        /// Sent again after a timeout at least once: no round-trip samples from it (Karn).
        var retransmitted = false
        /// Custody moves to the target when it has everything (a directed bundle towards its destination).
        let custody: Bool
        /// The copy budget this transfer hands on (SPEC 5.14): a copy given without a route, or custody moving along a
        /// route to a relay that is not the destination; written in a copy-budgets record beside its records toward
        /// a neighbour that announced capability bit 7. Nil: none (a flood, the destination itself).
        var copies: Int? = nil
    }

    /// Starts sending a bundle on a link, to one neighbour (acknowledged) or to all in range. A `delay` lets other
    /// holders answer first: overhearing one of them send it to the same neighbour cancels ours. `copies`: the copy
    /// budget it hands on (SPEC 5.14); its records are cut `Tuning.copyBudgetRoom` bytes smaller, so each packet of
    /// them has room for the copy-budgets record. Returns whether it started.
    @discardableResult
    func startTransfer(_ q: QueuedBundle, link: String, target: NodeID?, custody: Bool, now: Double, delay: Double = 0, copies: Int? = nil) -> Bool {
        let key = TransferKey(link: link, target: target, bundle: q.id)
        guard self.transfers[key] == nil, let l = self.links[link] else { return false }
        let copies = target == nil ? nil : copies
        var data = q.data
        // Relays spend one hop; the origin's copy goes out as made.
        if !q.isLocal, !data.isEmpty {
            let hop = data[0] >> 4
            guard hop > 0 || target != nil else { return false }
            data[0] = (hop > 0 ? hop - 1 : 0) << 4 | data[0] & 0x0F
        }
        guard let number = self.takeTransferNumber(for: q.id) else { return false }
        let records: [Record]
        do {
            records = try Fragmenter.records(
                bundle: data, mtu: target == nil ? l.info.properties.mtu : self.fragmentMTU(l) - (copies == nil ? 0 : Tuning.copyBudgetRoom),
                transfer: number, nextHop: target?.short, wantAck: target != nil)
        } catch {
            self.reject("cannot cut \(q.id) into fragments for \(link), not sent there: \(error)")
            return false
        }
        self.transferOrder += 1
        self.transfers[key] = Transfer(
            key: key, number: number, priority: q.priority, order: self.transferOrder, records: records,
            due: now + delay, custody: custody, copies: copies)
        return true
    }

    /// The copy-budgets record (SPEC 5.14) to send beside a record of transfer `t` now: when it hands on a budget,
    /// to a neighbour whose latest announce set capability bit 7 (an older one would skip it, 11.12).
    func copiesOnAir(_ t: Transfer) -> Record? {
        guard let copies = t.copies, let target = t.key.target,
              (self.neighbours[target]?.capabilities ?? 0) & AnnounceRecord.copyBudgets != 0 else { return nil }
        return .copyBudgets(CopyBudgetsRecord([CopyBudgetsRecord.Entry(transfer: t.number, copies: copies)]))
    }

    /// A transfer's record as it goes now: a bundle record in the compact form (SPEC 5.3) toward a neighbour whose
    /// latest announce set capability bit 3, in the ordinary form otherwise (so a neighbour that went back to an older
    /// version gets its retries whole, 11.7). The record leaves the compact form by itself when the bundle does not
    /// allow it (not ours, or not addressed to that neighbour). In an announce-form packet (`ordinaryPacket` false)
    /// always the ordinary form: a compact record and a run are read with the ordinary form's sender (SPEC 5.3, 5.11),
    /// which an announce-form packet does not have, so every receiver refused the whole packet as malformed.
    func onAir(_ r: Record, target: NodeID?, ordinaryPacket: Bool = true) -> Record {
        guard case .bundle(var b) = r, let target else { return r }
        let caps = ordinaryPacket ? self.neighbours[target]?.capabilities ?? 0 : 0
        b.compactFrom = caps & AnnounceRecord.compact != 0 ? self.me.short : nil
        // Capability bit 4 (with bit 3): in a bundle run (SPEC 5.11) when the bundle allows the compact form.
        b.inRun = caps & AnnounceRecord.runs != 0
        return .bundle(b)
    }

    func handleAck(_ a: AckRecord, from: NodeID, link: String, now: Double) {
        for e in a.entries {
            guard let found = self.transfers.named(link: link, target: from, number: e.transfer) else { continue }
            let key = found.key
            var t = found
            let before = t.acked.count
            for i in 0..<t.records.count where e.has(i) && !t.acked.contains(i) {
                t.acked.insert(i)
                if t.sent.contains(i) { self.noteRecordOutcome(link: link, record: t.records[i], arrived: true) }
            }
            if t.acked.count > before {
                var n = self.neighbours[from] ?? Neighbour(id: from)
                n.ackedFragments += t.acked.count - before
                if let first = t.firstSent, !t.retransmitted {
                    let sample = now - first
                    if let s = n.srtt {
                        n.rttvar = (1 - Tuning.rttBeta) * n.rttvar + Tuning.rttBeta * abs(s - sample)
                        n.srtt = (1 - Tuning.rttAlpha) * s + Tuning.rttAlpha * sample
                    } else {
                        n.srtt = sample
                        n.rttvar = sample / 2
                    }
                }
                self.neighbours[from] = n
                self.openRestartWindow(from, by: t.acked.count - before, link: link, now: now)
            }
            // Not kept (a full disk): after a restart the acknowledged fragments are sent again, nothing is lost.
            if let found = self.storing("read an acknowledged bundle", link: link, { try self.store.bundle(key.bundle) }), let q = found {
                if t.acked.count == t.records.count, q.destination == .node(from.short) { self.noteArrived(q.id) }
                _ = self.storing("record an acknowledgement", link: link) {
                    try self.store.recordAck(q.id, from: from, ack: AckEntry(transfer: e.transfer, receivedIndices: t.acked), now: Int64(now))
                }
            }
            if t.acked.count > before { t.attempts = 0 }
            if t.acked.count == t.records.count {
                self.transfers[key] = nil
                self.noteHolder(key.bundle, from, now: now)
                // Custody moves on once the store says so; if it cannot (a full disk), we keep custody and the
                // bundle is routed again (the next hop takes a second copy as a duplicate).
                if t.custody, self.storing("release custody", link: link, { try self.store.releaseCustody(key.bundle, to: from, now: Int64(now)) }) != nil {
                    self.emit(.event(.custodyReleased(key.bundle, to: from.short)))
                    self.unhold(key.bundle)
                }
            } else {
                // Resend what the ack shows missing below the highest fragment it acknowledges, now; fragments
                // above it may still be on their way.
                let hi = t.acked.max() ?? -1
                t.sent = t.sent.filter { t.acked.contains($0) || $0 > hi }
                t.due = now
                self.transfers[key] = t
            }
        }
    }

    /// Timeouts without progress before a silent neighbour is given up on.
    static let maxSilentRetries = 5

    /// Backoff exponents: the timeout doubles at each retry up to 2^2 while the neighbour is heard (it is there;
    /// the line loses frames, and waiting longer only lengthens the queue), up to 2^6 when it is silent. At 2^3 a
    /// fragment that a noisy line lost went again only every 20-27 s once its first timeouts had passed: on a serial
    /// line damaging 1% of bytes (a 69-byte packet arrives half the time) one fragment in about 2,000 was lost 11
    /// times in a row and not taken within 5 minutes (session 17). At 2^2, twice as many tries fit the same time.
    static let backoffCapHeard = 2

    static let backoffCapSilent = 6

    /// A neighbour given up on is tried again after this many seconds even if not heard (a probe: it may be back in
    /// range without having said anything).
    static let unresponsiveProbe: Double = 300

    /// A neighbour heard again after silence (`heard`: given up on, or nothing from it for `silenceBeforeGivingUp`):
    /// the transfers to it on that link waiting for a retransmission time-out go now, each after its own random
    /// `Tuning.returnedNeighbourDelay` (the neighbours that waited for the same relay do not all send at once, nor
    /// into the packets it may still be sending), with their backoff forgotten (it is there: the next time-out is
    /// an ordinary one, not the one grown while it was away).
    func neighbourReturned(_ id: NodeID, link: String, now: Double, givenUp: Bool = false) {
        // In the order they started (the in-flight set's order differs from run to run; the delays are drawn in turn).
        for var t in self.transfers.inFlight(on: link).filter({ $0.key.target == id }).sorted(by: { $0.order < $1.order }) {
            let at = now + self.rng.uniform(Tuning.returnedNeighbourDelay.min, Tuning.returnedNeighbourDelay.max)
            t.attempts = 0
            t.rtoAt = min(t.rtoAt, at)
            t.due = min(t.due, at)
            self.transfers[t.key] = t
        }
        self.startTurns(id, link: link, now: now)
        if self.config.restartSlowly && givenUp {
            self.neighbours[id]?.restartWindow = Tuning.restartWindow
            self.neighbours[id]?.restartEnds = now + Tuning.restartLasts
        }
    }

    /// A neighbour's restart window (`Neighbour.restartWindow`) while its slow start lasts; nil after.
    func restartWindow(_ id: NodeID, now: Double) -> Int? {
        guard let n = self.neighbours[id], let w = n.restartWindow else { return nil }
        guard now < n.restartEnds else {
            self.neighbours[id]?.restartWindow = nil
            return nil
        }
        return w
    }

    /// Our transfers to `target` on `link` with records in flight, other than `except`.
    func transfersInFlight(to target: NodeID, link: String, except: TransferKey) -> Int {
        self.transfers.inFlight(on: link).reduce(0) { n, t in
            t.key.target == target && t.key != except && !t.sent.subtracting(t.acked).isEmpty ? n + 1 : n
        }
    }

    /// The slow start after a return (`Neighbour.restartWindow`): an ack that shows progress opens it by one transfer;
    /// at the transfer window it ends. Transfers to that neighbour that waited for room go now.
    func openRestartWindow(_ id: NodeID, by acked: Int, link: String, now: Double) {
        guard let w = self.restartWindow(id, now: now), acked > 0 else { return }
        let grown = w + 1
        self.neighbours[id]?.restartWindow = grown >= self.config.window ? nil : grown
        for var t in self.transfers.values where t.key.target == id && t.key.link == link && t.due > now && !t.rtoAt.isFinite {
            t.due = now
            self.transfers[t.key] = t
        }
    }

    func backoffCap(_ target: NodeID?, link: String, now: Double) -> Int {
        guard let t = target, let heard = self.neighbours[t]?.lastHeard[link] else { return Self.backoffCapSilent }
        return now - heard <= self.silenceBeforeGivingUp(link: self.links[link]) ? Self.backoffCapHeard : Self.backoffCapSilent
    }

    /// How long a neighbour must have been silent (no packet at all) before it is given up on: 2 minutes, or 8 full
    /// frames' timeouts on a slow link.
    func silenceBeforeGivingUp(link: LinkState?) -> Double {
        guard let l = link else { return Tuning.minSilenceBeforeGivingUp }
        let p = l.info.properties
        return max(Tuning.minSilenceBeforeGivingUp, (p.airtime(bytes: p.mtu) * Double(self.config.window + 2) + self.config.ackDelay * 4 + 1) * 8)
    }

    /// Counts a directed record acknowledged or timed out on a link (for `fragmentMTU`).
    func noteRecordOutcome(link: String, record: Record, arrived: Bool) {
        guard var l = self.links[link] else { return }
        let size = Double(Packet.overhead + record.encodedSize(last: true))
        let w = Tuning.noisyLineAverageWeight
        l.recordSuccess = l.recordOutcomes == 0 ? (arrived ? 1 : 0) : l.recordSuccess * (1 - w) + (arrived ? w : 0)
        l.recordBytes = l.recordOutcomes == 0 ? size : l.recordBytes * (1 - w) + size * w
        l.recordOutcomes += 1
        self.links[link] = l
    }

    /// Bytes a directed record and its ack cost beyond the record's data: packet header and tag, record header and
    /// next hop, transfer number and index, and a link's framing (serial: 7 bytes).
    static let fragmentOverhead = 45.0

    /// Fragments are never cut smaller than to fit packets of this many bytes.
    static let smallestFragmentMTU = 96

    /// Retransmission time-outs, with nothing acknowledged, after which a transfer cut for a cleaner line is cut again.
    static let recutAfter = 2

    /// A transfer number never used by this node before (SPEC 8.2): from the block reserved in the store.
    func takeTransferNumber(for id: BundleID) -> UInt32? {
        if self.transferNumbers.isEmpty {
            do { self.transferNumbers = try self.store.reserveTransferNumbers(Tuning.transferNumberBlock) } catch {
                self.rejectStorage("cannot reserve transfer numbers, \(id) not sent now: \(error)", error)
                return nil
            }
        }
        let number = UInt32(truncatingIfNeeded: self.transferNumbers.lowerBound & 0x3FFF)
        self.transferNumbers = self.transferNumbers.dropFirst()
        return number
    }

    /// The bundle a transfer's records carry: the whole record's, or the fragments' data in order.
    static func bundleBytes(_ records: [Record]) -> [UInt8]? {
        if records.count == 1, case .bundle(let b) = records[0] { return b.bundle }
        var pieces: [(Int, [UInt8])] = []
        for case .fragment(let f) in records { pieces.append((f.index, f.data)) }
        guard pieces.count == records.count, !pieces.isEmpty else { return nil }
        return pieces.sorted { $0.0 < $1.0 }.flatMap(\.1)
    }

    /// The packet size new directed transfers on a link are cut for (SPEC 8.5 rule 5): the link's MTU, unless at
    /// least 16 recent records show a noisy line (fewer than 9 in 10 acknowledged). Then, from the loss per byte
    /// that implies (a record and its ack both have to arrive: survival = (1 - e)^bytes), the size that carries the
    /// most data per byte sent, (h + sqrt(h^2 + 4h/e)) / 2 for h bytes of overhead: on a line with 1% of bytes
    /// damaged about 96 bytes instead of 255 (a 255-byte frame arrives whole 7% of the time, a 96-byte one 37%).
    func fragmentMTU(_ l: LinkState) -> Int {
        let mtu = l.info.properties.mtu
        guard l.recordOutcomes >= Tuning.noisyLineSamples, l.recordSuccess < Tuning.noisyLineSuccess else { return mtu }
        let e = -log(max(0.01, l.recordSuccess)) / (l.recordBytes + Self.fragmentOverhead)
        let h = Self.fragmentOverhead
        let best = (h + (h * h + 4 * h / e).squareRoot()) / 2
        return max(min(Self.smallestFragmentMTU, mtu), min(mtu, Int(best)))
    }

    func rto(_ target: NodeID?, link: LinkState, fragments: Int) -> Double {
        let p = link.info.properties
        let base = p.airtime(bytes: p.mtu) * Double(min(fragments, self.config.window) + 2) + self.config.ackDelay * 4 + 1
        if let t = target, let n = self.neighbours[t], let s = n.srtt { return max(base, s + Tuning.rttVarianceFactor * n.rttvar) }
        return base
    }
}

/// How the transfers part numbers what it starts; no other part uses it.
struct TransferNumbering {
    /// Transfers started so far: a transfer's place in the composer's order among bundles of one class and age.
    var started = 0
    /// Transfer numbers reserved in the store (absolute; a transfer uses the value modulo 2^14): never reused after
    /// a restart, so a receiver's memory of a completed transfer cannot answer for a new bundle (SPEC 8.2).
    var reserved: Range<Int64> = 0..<0
}

extension Node {
    var transferOrder: Int {
        get { self.transferNumbering.started }
        _modify { yield &self.transferNumbering.started }
    }

    var transferNumbers: Range<Int64> {
        get { self.transferNumbering.reserved }
        _modify { yield &self.transferNumbering.reserved }
    }
}
