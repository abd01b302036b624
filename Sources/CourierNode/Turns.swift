import CourierMedium
import CourierWire
import Foundation

/// Turns around a returned neighbour (SPEC 8.5 rule 5, turns): the relays that waited for a neighbour and cannot hear each
/// other (hidden terminals) send it their backlog in turns of one exchange each, in an order all of them compute alike.
///
/// Why: in the valley drill v05 and v07 (which do not hear each other) both heard v06 come back in the same packet,
/// both sent it their hour's backlog within the same 2 s, and nearly every packet of both collided at v06; each
/// retry backed off (18, 29, 57 s...) and v06's backlog took 265-305 s to cross instead of tens of seconds.
/// Listen-before-talk cannot keep them apart, and a random delay only spreads their first packets. But each knows
/// whom the returned neighbour talked with before it went silent (the acks and next hops of the packets it overheard
/// from it) and whom of those it does not hear itself: those and itself, in the order of their short ids, take turns
/// of one packet and its answer each, counted from 2 s after the end of the packet that showed the neighbour back
/// (heard by all of them at the same moment). Directed data for it goes only in our turn; while two hidden senders
/// contend for it (`turnContended`), our data for anyone else and our acks to it too, in one packet (the neighbour
/// hears every packet of ours: one outside our turn lands in another taker's).
/// A record sent in its turn and not acknowledged goes again in its next turn, not after a time-out grown by backoff,
/// and is not counted as lost on the line (it was a collision, if anything).
extension Node {
    struct Turns {
        /// The link, and the moment the returned neighbour's first packet ended (turn 0 starts then).
        var link: String
        var origin: Double
        /// One turn: a full packet to the neighbour and its answer (`turnLength`).
        var length: Double
        /// Our place among the takers, and how many take turns.
        var rank: Int
        var takers: Int
        /// Turns end then (`Tuning.turnsLast` after the return).
        var ends: Double
        /// The cycle whose turn we used for a packet (one packet to the neighbour per turn).
        var usedCycle: Int = -1
        /// Heard sending data to a relay we do not hear: its ack follows, and our packet waits for it.
        var holdUntil: Double = -.infinity
        /// Heard acking a relay we do not hear: another taker is sending it data, and our packets outside our turn
        /// would fall in that taker's turn, at it (`turnContended`; until `Tuning.turnContendedCycles` cycles on).
        var contendedUntil: Double = -.infinity
        /// How many of its packets carried acks (to anyone, us too) since the return: every taker hears the same ones,
        /// so all of them count alike (`Tuning.turnContendedAnswers`).
        var answersTotal = 0
    }

    /// The length of one turn on a link: two full packets' airtime (our packet, and the answer that may carry the
    /// returned neighbour's own data with its ack) and `Tuning.turnAnswerAllowance` for the ack delay. Only link
    /// properties and constants: every relay on the channel computes the same.
    static func turnLength(_ info: LinkInfo) -> Double {
        2 * info.properties.airtime(bytes: info.properties.mtu) + Tuning.turnAnswerAllowance
    }

    /// Remembers whom a neighbour talks with (its acks' targets and its bundles' and fragments' next hops): after a
    /// silence these are the relays that may hold a backlog for it and that we may not hear.
    func noteTalksWith(_ packet: Packet, from: NodeID, link: String, now: Double) {
        guard var n = self.neighbours[from] else { return }
        let inTurns = self.turns(from, link: link, now: now) != nil
        // An answer due to it from a relay we do not hear waits for this packet too (that relay hears it): the hold
        // runs on from its end.
        var answerDue = inTurns && (n.turns?.holdUntil ?? -.infinity) > now
        var contended = false
        for r in packet.records {
            let to: ShortID?
            switch r {
            case .ack(let a): to = a.target
            case .bundle(let b): to = b.nextHop
            case .fragment(let f): to = f.nextHop
            default: to = nil
            }
            guard let t = to, t != from.short else { continue }
            // A last copy for `t` waiting for a way on may go to this neighbour now (SPEC 5.14 rule 4, `focusHop`).
            if self.routeWalk.focusWaiting.contains(t), n.talksWith[t].map({ now - $0 >= Tuning.talkPartnersKeptFor }) ?? true {
                self.routeWalk.settled = nil
                self.rerouteDue = true
            }
            n.talksWith[t] = now
            // In turns: its data for a relay we do not hear is answered by an ack we would collide with at it.
            if inTurns, t != self.me.short, !self.hearsDirectly(t, on: link, now: now) {
                if !self.isAck(r) { answerDue = true }
                // Its ack to such a relay: that relay is sending it data (another taker contends with us for it).
                if self.isAck(r) { contended = true }
            }
        }
        if answerDue, let info = self.links[link]?.info {
            n.turns?.holdUntil = now + Tuning.turnAnswerAllowance + info.properties.airtime(bytes: Tuning.turnAckBytes)
        }
        if inTurns, packet.records.contains(where: { r in if case .ack(let a) = r { a.target != from.short } else { false } }) {
            n.turns?.answersTotal += 1
        }
        if contended, let t = n.turns {
            n.turns?.contendedUntil = now + Tuning.turnContendedCycles * t.length * Double(t.takers)
        }
        if n.talksWith.count > Tuning.talkPartnersKept {
            // The most recent ones.
            let kept = n.talksWith.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(Tuning.talkPartnersKept)
            n.talksWith = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
        self.neighbours[from] = n
    }

    /// A neighbour back after silence (`neighbourReturned`): turns start if it talked with relays we do not hear
    /// (at most `Tuning.maxTurnTakers` with us), on a half-duplex link, unless we were the one away (our link up for
    /// less than the silence that makes a return: the relays around us take no turns for us then).
    func startTurns(_ id: NodeID, link: String, now: Double) {
        guard self.config.turnsAfterReturn, let l = self.links[link], l.info.properties.duplex == .half,
              let n = self.neighbours[id] else { return }
        // We were the one away (our link came up since): the relays around the neighbour did not wait for it.
        guard now - l.upSince >= self.silenceBeforeReturn(link: l) else {
            self.neighbours[id]?.turns = nil
            return
        }
        var others = Set(n.talksWith.filter { now - $0.value < Tuning.talkPartnersKeptFor }.keys)
        if let hears = n.hears { others.formUnion(hears) }
        let hidden = others.filter { $0 != self.me.short && $0 != id.short && !self.hearsDirectly($0, on: link, now: now) }
        let takers = (hidden + [self.me.short]).sorted()
        guard takers.count >= 2, takers.count <= Tuning.maxTurnTakers, let rank = takers.firstIndex(of: self.me.short) else {
            self.neighbours[id]?.turns = nil
            return
        }
        self.neighbours[id]?.turns = Turns(link: link, origin: now + Tuning.turnsStartAfter, length: Self.turnLength(l.info), rank: rank,
                                           takers: takers.count, ends: now + Tuning.turnsLast)
        self.links[link]?.turnsFor.insert(id)
    }

    /// Turns towards a neighbour on a link while they last (nil after, or if none).
    func turns(_ id: NodeID, link: String, now: Double) -> Turns? {
        guard let t = self.neighbours[id]?.turns, t.link == link else { return nil }
        guard now < t.ends else {
            self.neighbours[id]?.turns = nil
            self.links[link]?.turnsFor.remove(id)
            return nil
        }
        return t
    }

    /// Whether we may start a packet to a neighbour now (nil), or when our next turn opens. A packet starts only in the
    /// first `Tuning.turnOpenShare` of our turn (a modem's listen-before-talk may still hold it a little), and one per
    /// turn.
    func turnWait(_ id: NodeID, link: String, now: Double) -> Double? {
        guard let t = self.turns(id, link: link, now: now) else { return nil }
        let cycle = t.length * Double(t.takers)
        let since = max(0, now - t.origin)
        let index = Int((since / cycle).rounded(.down))
        let mine = Double(t.rank) * t.length
        let start = t.origin + Double(index) * cycle + mine
        let closes = start + t.length * Tuning.turnOpenShare
        if now >= start && t.usedCycle != index {
            let earliest = max(now, t.holdUntil)
            if earliest < closes { return earliest > now ? earliest : nil }
        }
        return start > now ? start : start + cycle
    }

    /// A packet of directed data went in our turn: the turn is used for each returned neighbour on the link.
    func usedTurn(link: String, now: Double) {
        for id in self.links[link]?.turnsFor ?? [] { self.usedTurn(id, link: link, now: now) }
    }

    /// The start of our turn after the current one (a record sent now and not acknowledged by then goes again then).
    func nextTurn(_ id: NodeID, link: String, now: Double) -> Double? {
        guard let t = self.turns(id, link: link, now: now) else { return nil }
        let cycle = t.length * Double(t.takers)
        let since = max(0, now - t.origin)
        let index = Int((since / cycle).rounded(.down))
        let mine = t.origin + Double(index) * cycle + Double(t.rank) * t.length
        return mine > now ? mine : mine + cycle
    }

    func isAck(_ r: Record) -> Bool { if case .ack = r { true } else { false } }

    /// What waits for our turns on a link (`turnHolds`): directed data for a returned neighbour; and, while two hidden
    /// senders contend for it, our acks to it and our directed data for anyone else.
    struct TurnHolds {
        /// The returned neighbours we take turns for on the link, and when our turn for each opens next (absent: we are
        /// in it now).
        var takingFor: Set<NodeID> = []
        var opens: [NodeID: Double] = [:]
        /// Those of them two hidden senders contend for (`Node.turnContended`: it is still acking another taker, with
        /// a backlog). Only these hold our acks to them and our data for others.
        var contended: Set<NodeID> = []
        /// An ack to a returned neighbour waits for our turn only if it opens by then (`Tuning.turnAckHoldTurns` turns
        /// from now); otherwise it goes at once (held longer, it would come after the neighbour's retry).
        var ackHoldLimit: Double = .infinity

        /// When a packet with directed data for this neighbour (nil: a broadcast) may start: nil now. `turnPacket`: the
        /// packet already carries data in our turn (or, outside any contended neighbour's turns, data for others).
        /// For a returned neighbour, in our turn for it (not contended: it may ride a packet already going, as before).
        /// For anyone else, in one of our turns for a contended neighbour (it hears every packet of ours; with several,
        /// holding it for all of them at once would hold it until turns end); not held if none is contended.
        func hold(_ target: NodeID?, turnPacket: Bool) -> Double? {
            guard let target, !self.takingFor.isEmpty else { return nil }
            if self.takingFor.contains(target) {
                if turnPacket && !self.contended.contains(target) { return nil }
                return self.opens[target]
            }
            guard !turnPacket, !self.contended.isEmpty else { return nil }
            return self.contended.contains { self.opens[$0] == nil } ? nil : self.contended.compactMap { self.opens[$0] }.min()
        }

        /// When an ack to this short id may go: in our turn if it names a contended returned neighbour we take turns
        /// for and that opens by `ackHoldLimit` (nil: now).
        func ackHold(_ target: ShortID) -> Double? {
            self.contended.filter { $0.short == target }.compactMap { self.opens[$0] }.min().flatMap { $0 <= self.ackHoldLimit ? $0 : nil }
        }

        /// Whether we are in our turn for a contended returned neighbour with this short id (acks to it go then, due or
        /// not, and use the turn).
        func inTurn(_ target: ShortID) -> Bool {
            self.contended.contains { $0.short == target && self.opens[$0] == nil }
        }

        /// Whether a packet with acks to these short ids goes short (no bundle data): one names a returned neighbour
        /// not contended for, outside our turn for it (the ack is not held; kept short, it ends before the taker
        /// whose turn it is starts its packet).
        func ackGoesShort(_ targets: [ShortID]) -> Bool {
            targets.contains { s in self.takingFor.contains { $0.short == s && !self.contended.contains($0) && self.opens[$0] != nil } }
        }
    }

    /// While we take turns on a link: when our turn for each returned neighbour opens, and which of them are contended
    /// for (none: no turns, nothing held). Data for a returned neighbour waits for our turn for it. While two hidden
    /// senders contend for it (`turnContended`), every packet of ours with directed data (for anyone: the returned
    /// neighbour hears them all) or with an ack to it waits for our turn too: outside it such a packet falls in another
    /// taker's, and the two collide at the neighbour (session 20's trace of the valley drill: 13 of 22 packets lost at
    /// the returned relay collided with a taker's ack to it or its data for the relay beyond, sent outside its turn).
    /// With nothing contended (a small backlog, one sender) they go as before: held, they waited for turns they did
    /// not need (docs/journal/session-21-recov4.md, session-21-recov5.md).
    func turnHolds(link: String, now: Double) -> TurnHolds {
        var h = TurnHolds()
        for id in (self.links[link]?.turnsFor ?? []).sorted(by: { $0.short < $1.short }) {
            guard let t = self.turns(id, link: link, now: now) else { continue }
            h.takingFor.insert(id)
            if let w = self.turnWait(id, link: link, now: now) { h.opens[id] = w }
            if self.turnContended(t, now: now) {
                h.contended.insert(id)
                h.ackHoldLimit = min(h.ackHoldLimit, now + Tuning.turnAckHoldTurns * t.length)
            }
        }
        return h
    }

    /// Whether two hidden senders contend for a returned neighbour: it acked a relay we do not hear within the last
    /// `Tuning.turnContendedCycles` cycles (that relay is still sending it data), and it has answered at least
    /// `Tuning.turnContendedAnswers` packets since the return (a backlog, not a few copies). Only what the neighbour
    /// sends decides, and all takers hear it: they hold, or not, alike. (Deciding by our own data queued for it held
    /// one side and not the other, and lost copies on the triangle drill: docs/journal/session-21-recov5.md.)
    func turnContended(_ t: Turns, now: Double) -> Bool {
        t.contendedUntil > now && t.answersTotal >= Tuning.turnContendedAnswers
    }

    /// A packet to the neighbour went in this turn.
    func usedTurn(_ id: NodeID, link: String, now: Double) {
        guard let t = self.turns(id, link: link, now: now) else { return }
        let cycle = t.length * Double(t.takers)
        self.neighbours[id]?.turns?.usedCycle = Int((max(0, now - t.origin) / cycle).rounded(.down))
    }
}
