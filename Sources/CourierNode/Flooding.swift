import CourierMedium
import CourierWire
import Foundation

/// Flooding: rebroadcasts after a random delay, suppressed by copies heard (`floods`); who holds what (`holders`,
/// `heardOf`); directed bundles left out of summaries (`directedSeen`) (SPEC 7).
extension Node {
    struct PendingFlood {
        var due: Double
        var heard = 0
        /// The neighbours whose copies we heard (the first one we got it from, then every copy heard meanwhile): with
        /// their neighbour lists, who else those copies reached (SPEC 8.5 rule 5).
        var from: Set<NodeID> = []
        /// Whether a copy heard asked us to pass it on: it named us a relay, or named none (an older sender, or a
        /// list that did not fit its packet). A relay none asked leaves its rebroadcast out (SPEC 8.5 rule 5).
        var asked = true
        /// An alert: neighbours not yet heard may lack it (see `neighbourTableYoung`).
        var alert = false
        /// Its delay was set by the signal of its first copy (far receivers first, `floodDelay(snr:)`): a copy heard
        /// meanwhile most likely came from a farther receiver, and `suppressionThresholdBySignal` copies are enough to
        /// stay quiet. With the random delay (no signal reported, few neighbours) a copy heard may come from a
        /// receiver nearer the sender, and it takes `suppressionThreshold`.
        var signalOrdered = false
        /// Its rebroadcast was started (`floodsDue`) and has not gone yet (a busy channel, a duty cycle): copies heard
        /// meanwhile still count, and may silence it before its packet is built (`floodsWaiting`).
        var waiting = false
        /// Links on which we already sent it to everyone in range meanwhile (an answer to a neighbour's summary,
        /// rule 4): our rebroadcast is not sent there again. (On a chain a relay answered the next relay's hello
        /// summary, then sent its rebroadcast a second later: that second copy silenced the next relay's own.)
        var sentOn: Set<String> = []

        mutating func copyHeard(from n: NodeID, asked: Bool) {
            self.from.insert(n)
            self.asked = self.asked || asked
        }
    }

    /// Whether a relay's rebroadcast of `id` would add nothing: enough copies heard, or every neighbour is known to
    /// have it (a node whose only neighbour sent it to us, say), or no copy heard asked us to pass it on. An alert is
    /// not silenced by coverage alone while a link's neighbours may not all have been heard yet
    /// (`alertMayMissNeighbours`). The origin always sends.
    func floodSuppressed(_ id: BundleID, _ f: PendingFlood, now: Double) -> Bool {
        guard id.origin != self.me.short else { return false }
        let uncovered = self.floodUncovered(id, heardFrom: f.from, now: now)
        let threshold = f.signalOrdered ? self.config.suppressionThresholdBySignal : self.config.suppressionThreshold
        let mayMiss = self.alertMayMissNeighbours(f, now: now)
        let covered = uncovered < self.config.floodMinUncovered && !mayMiss
        // Not named a relay: the sender chose from what it knew of our neighbours, which may lack the ones we have
        // not heard yet either.
        return f.heard >= threshold || covered || (!f.asked && !mayMiss)
    }

    /// Rebroadcasts started and not yet sent (waiting for a busy channel or the duty cycle), looked at again just
    /// before the composer builds packets: one that copies heard meanwhile made useless is dropped, as Meshtastic's
    /// firmware takes a queued rebroadcast out of its transmit queue when it hears the same packet
    /// (`Router::cancelSending`). Deciding only when the delay ran out, a relay sent whatever it heard while the
    /// channel was busy (SPEC 8.5 rule 5).
    func floodsWaiting(now: Double) {
        guard !self.floods.isEmpty else { return }
        for (id, f) in self.floods.filter({ $0.value.waiting }).sorted(by: { $0.key < $1.key }) {
            let unsent = self.transfers.keys(of: id).filter { $0.target == nil && self.transfers[$0]?.sent.isEmpty == true }
            if unsent.isEmpty {
                self.floods[id] = nil
                continue
            }
            guard self.floodSuppressed(id, f, now: now) else { continue }
            for k in unsent { self.transfers[k] = nil }
            self.floods[id] = nil
            self.stats.suppressed += 1
            self.emit(.event(.suppressed(id)))
        }
    }

    /// A flooded transfer heard in part (SPEC 8.5, flooded bundles, rule 4).
    struct FloodGap {
        var link: String
        var due: Double
    }

    /// A fragment of a flooded transfer that is still incomplete here: if it stays incomplete for a rebroadcast
    /// window after its last fragment (no neighbour's copy completed it meanwhile), we send our summary on that link,
    /// and a neighbour holding the bundle sends it again whole (`handleSummary`). Floods are never acknowledged: a
    /// node that missed one fragment of a large flood otherwise waits for the next summary that happens to be
    /// exchanged (a periodic announce carries one only while the summary fits in its packet).
    func floodFragmentHeard(_ f: FragmentRecord, from: NodeID, link: String, now: Double) {
        let key = Reassembler.Key(sender: from, transfer: f.transfer)
        guard self.floodGaps[key] != nil || self.floodGaps.count < Tuning.maxFloodGaps else { return }
        let due = now + self.receiptPartStep * self.rng.uniform(1, 1.5)
        self.floodGaps[key] = FloodGap(link: link, due: due)
        self.floodGapsDue = min(self.floodGapsDue, due)
    }

    /// Flooded transfers still incomplete when their time is up: our summary asks for what we lack.
    /// (`floodGapsDue` is never later than the earliest gap's time: the gaps are looked at only from then.)
    func askForFloodGaps(now: Double) {
        guard now >= self.floodGapsDue else { return }
        var asked: Set<String> = []
        for (key, g) in self.floodGaps where g.due <= now {
            self.floodGaps[key] = nil
            guard self.reassembler.partials[key] != nil else { continue }
            self.stats.floodGapsAsked += 1
            // One summary answers every gap on a link.
            if asked.insert(g.link).inserted { self.wantSummary(g.link, now: now, 0.1, 1) }
        }
        self.floodGapsDue = self.floodGaps.values.map(\.due).min() ?? .infinity
    }

    /// Whether a neighbour met again (or for the first time) may lack something we would send it: a flooded bundle
    /// we hold that it is not known to have, or a directed bundle with no route stored since it was last heard.
    func mayHoldNews(for n: NodeID, since previous: Double?) -> Bool {
        if let p = previous, self.lastUnroutableAt > p - Tuning.housekeepingInterval { return true }
        // The held floods (from the index, not the store): one it may lack is news.
        for h in self.heldIndex.byID.values where !HeldIndex.isDirected(h) {
            if !self.isHolder(h.id, n) && !self.wasTold(h.id, n) { return true }
        }
        return false
    }

    /// A bundle sent to another neighbour: it counts as a copy heard, the sender has it, and whoever it went to needs
    /// no copy from us.
    func overheard(_ bytes: [UInt8], to next: ShortID, from: NodeID, link: String, now: Double) {
        let b: CourierBundle
        do { b = try CourierBundle(decoding: bytes) } catch {
            self.reject("bundle from \(from.short) to \(next): \(error)")
            return
        }
        if self.floods[b.id] != nil { self.floods[b.id]!.heard += 1 }
        self.noteHolder(b.id, from, now: now)
        if b.kind == .receipt, self.judge(b) == .proven { self.receiptEvidence(b, from: from, link: link, now: now) }
        for k in self.transfers.keys(of: b.id) where k.target?.short == next && self.transfers[k]?.sent.isEmpty == true {
            self.transfers[k] = nil
        }
    }

    /// Remembers a directed bundle (see `directedSeen`).
    func noteDirected(_ id: BundleID) {
        if self.directedSeen.count >= Tuning.maxDirectedSeen { self.directedSeen.removeAll() }
        self.directedSeen.insert(id.digest)
    }

    /// A neighbour holds a bundle.
    func noteHolder(_ id: BundleID, _ n: NodeID, now: Double) {
        guard n != self.me else { return }
        self.holders[id, default: []].insert(n)
        self.heardOf[id] = now
    }

    /// Neighbours known to hold a bundle (its origin always does).
    func isHolder(_ id: BundleID, _ n: NodeID) -> Bool {
        n.short == id.origin || (self.holders[id]?.contains(n) ?? false)
    }

    func afterStoring(_ b: CourierBundle, from: NodeID?, now: Double, local: Bool) {
        switch b.destination {
        case .everyone, .group:
            if let from { self.noteHolder(b.id, from, now: now) }
            guard local || b.hopLimit > 0 else { return }
            // The origin sends at once; relays wait a random time within the rebroadcast window and count copies
            // they hear meanwhile.
            let heardFrom: Set<NodeID> = from.map { [$0] } ?? []
            // Alerts: neighbours that have it say so with their receipts first (sent within `alertReceiptAirtimes`).
            let wait = b.kind == .alert && self.isForMe(b) ? self.maxAirtime * (self.config.alertReceiptAirtimes + 1) : 0
            // A copy heard with its signal's strength (SPEC 8.5 rule 5): the weaker (the farther from its sender), the
            // sooner; a near receiver then hears the far one's copy first and stays quiet.
            // Only among many neighbours (`Tuning.floodSignalMinNeighbours`): on a chain the strong link is the only
            // way on, and waiting in proportion to it slows every hop.
            let crowded = self.config.signalWeightedDelay && self.freshNeighbours(now: now).count >= Tuning.floodSignalMinNeighbours
            let signal = local || from == nil || !crowded ? nil : self.packetSNR
            let delay = local ? 0 : wait + (signal.map { self.floodDelay(snr: $0) } ?? self.floodDelay())
            var pending = PendingFlood(due: now + delay, from: heardFrom, asked: local || from == nil || self.floodRelayAsked)
            pending.signalOrdered = signal != nil
            pending.alert = b.kind == .alert
            self.floods[b.id] = pending
        case .node:
            self.noteDirected(b.id)
            self.routeDirected(b.id, now: now)
            // No route: tell the neighbours what we hold, so one that is (or knows) the destination answers.
            if !self.transfers.hasCustody(b.id) {
                self.lastUnroutableAt = now
                self.wantSummary(nil, now: now, Tuning.unroutableSummaryDelay.min, Tuning.unroutableSummaryDelay.max)
            }
        }
    }

    /// Fresh neighbours a rebroadcast of `id` would reach that nothing says have it: not known holders, and (two-hop
    /// knowledge, SPEC 8.5 rule 5) not listed by a neighbour whose copy we heard as one it hears (that copy reached them). A
    /// neighbour that sent no list (an older node) covers only itself.
    func floodUncovered(_ id: BundleID, heardFrom: Set<NodeID>, now: Double) -> Int {
        var covered = Set<ShortID>()
        if self.config.neighbourLists {
            for n in heardFrom {
                covered.insert(n.short)
                if let h = self.neighbours[n]?.hears { covered.formUnion(h) }
            }
        }
        return self.freshNeighbours(now: now).filter { !self.isHolder(id, $0.id) && !covered.contains($0.id.short) }.count
    }

    /// Whether a link that is up came up less than one announce interval ago (as the channel's allowance stretches
    /// it, `silenceBeforeReturn`): its neighbours may not all have been heard yet (a hello lost to a collision), so
    /// "no neighbour lacks it" is not known there. On valley-chain-12 v03 took v01's alert at 147 s from v02, had
    /// never heard v04 (whose hello had collided), counted nobody uncovered and stayed quiet: the alert reached 2 of
    /// 11 relays in 10 minutes.
    func neighbourTableYoung(now: Double) -> Bool {
        self.linkOrder.contains { name in
            guard let l = self.links[name], l.up else { return false }
            return now - l.upSince < self.silenceBeforeReturn(link: l)
        }
    }

    /// Whether a pending alert may still have neighbours that lack it though none is known to: the neighbour table is
    /// young. (It made an exception for copies heard with their senders' neighbour lists, but a sender's list names
    /// its own neighbours, not ours that we have not heard: with lists on, on the 10% chain of
    /// `YoungNeighbourTableTests` b heard a's list [b], counted nobody uncovered, was named by nobody and stayed
    /// quiet, and c got the alert from a summary 262 s after b.)
    func alertMayMissNeighbours(_ f: PendingFlood, now: Double) -> Bool {
        f.alert && self.neighbourTableYoung(now: now)
    }

    /// Whether a packet asks us to pass on the floods it carries: its neighbour list names us a relay, or it names
    /// no relays (an older sender, a list that did not fit, or relays not in use here).
    func relayAsked(by records: [Record]) -> Bool {
        guard self.config.neighbourLists && self.config.floodRelays else { return true }
        for case .neighbours(let l) in records { if let r = l.relays { return r.contains(self.me.short) } }
        return true
    }

    /// The relays we name in the packets of our floods on `link` (SPEC 8.5 rule 5): enough fresh neighbours there
    /// that every node two hops away (listed by one of them, not one of ours) hears one of them: first those
    /// whose lists we lack (who knows what they reach), then those that alone reach a node two hops away, then
    /// greedily whoever reaches the most not yet reached (OLSR's multipoint relays, RFC 3626 section 8.3.1).
    func floodRelays(link: String, now: Double) -> [ShortID] {
        let n1 = self.freshNeighbours(now: now).filter { $0.link == link }.map(\.id)
        let shorts = Set(n1.map(\.short))
        var selected = Set<ShortID>()
        var reach: [ShortID: Set<ShortID>] = [:]
        for y in n1 {
            guard let h = self.neighbours[y]?.hears else {
                selected.insert(y.short)
                continue
            }
            reach[y.short] = h.subtracting(shorts).subtracting([self.me.short])
        }
        var uncovered = reach.values.reduce(into: Set<ShortID>()) { $0.formUnion($1) }
        for z in uncovered.sorted() {
            let by = reach.filter { $0.value.contains(z) }.map(\.key)
            if by.count == 1 { selected.insert(by[0]) }
        }
        for y in selected { if let r = reach[y] { uncovered.subtract(r) } }
        while !uncovered.isEmpty {
            let best = reach.filter { !selected.contains($0.key) }.max { a, b in
                (a.value.intersection(uncovered).count, b.key) < (b.value.intersection(uncovered).count, a.key)
            }
            guard let (y, r) = best, !r.isDisjoint(with: uncovered) else { break }
            selected.insert(y)
            uncovered.subtract(r)
        }
        return selected.sorted()
    }

    /// A random delay before a rebroadcast: anywhere in the rebroadcast window (`floodWindow`, 20 packet airtimes),
    /// whatever the number of neighbours. (It used to be divided by the number of neighbours not known to have the
    /// bundle, so that those that reach more go first: in a dense mesh, twenty or thirty neighbours each, that put
    /// every relay's rebroadcast within an airtime of the others', before any heard another's copy, and nearly every
    /// relay sent it. Spread over the whole window, the first copies heard silence the rest, SPEC 8.5 rule 5.)
    func floodDelay() -> Double {
        self.config.minFloodDelay + self.rng.uniform(0, 1) * (self.floodWindow - self.config.minFloodDelay)
    }

    /// A rebroadcast's delay from the signal-to-noise ratio its copy was heard with (SPEC 8.5 rule 5; Meshtastic's
    /// managed flooding orders its rebroadcasts the same way): the ratio's place in `Tuning.floodSignalRange`
    /// (weakest 0, strongest 1) of the rebroadcast window, plus a random `Tuning.floodSignalJitter` of it so that
    /// receivers at the same distance do not go together.
    func floodDelay(snr: Double) -> Double {
        let place = Self.signalPlace(snr)
        let jitter = Tuning.floodSignalJitter
        let share = place * (1 - jitter) + self.rng.uniform(0, jitter)
        return self.config.minFloodDelay + share * (self.floodWindow - self.config.minFloodDelay)
    }

    /// A signal-to-noise ratio's place in `Tuning.floodSignalRange`: 0 at the weakest end, 1 at the strongest.
    static func signalPlace(_ snr: Double) -> Double {
        let (lo, hi) = Tuning.floodSignalRange
        return (min(max(snr, lo), hi) - lo) / (hi - lo)
    }

    /// A rebroadcast's window: `floodDelayAirtimes` packet airtimes, and at least `Tuning.floodWindowMinimum` times
    /// the least delay (on a fast link an airtime is nothing, and the neighbours still need time to hear each other).
    var floodWindow: Double {
        max(self.config.minFloodDelay * Tuning.floodWindowMinimum, self.maxAirtime * self.config.floodDelayAirtimes)
    }

    /// A random delay before answering a summary with what it lacks: up to `Tuning.answerDelayAirtimes` packet
    /// airtimes (another holder's copy heard meanwhile cancels ours).
    func answerDelay() -> Double {
        self.config.minFloodDelay + self.rng.uniform(0, 1) * self.maxAirtime * Tuning.answerDelayAirtimes
    }
}

/// What flooding remembers of directed bundles stored with no route; no other part uses it.
struct UnroutableMemory {
    /// When we last stored a directed bundle we had no route for (a neighbour met again may be the way).
    var lastAt: Double = -1e9
}

extension Node {
    var lastUnroutableAt: Double {
        get { self.unroutable.lastAt }
        _modify { yield &self.unroutable.lastAt }
    }
}
