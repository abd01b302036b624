import CourierMedium
import CourierStore
import CourierWire
import Crypto
import Foundation

/// Aggregated receipts for flooded bundles (alerts), SPEC 6.16: each node that gets one makes its part (its tag over
/// "I have bundle B", keyed with the origin), and the parts travel back to the origin in receipt-parts records,
/// merged by the relays on the way (a node takes the parts of neighbours farther from the origin than itself) and
/// sent in packets going out anyway or, when due, in one packet of their own. No acks: hearing a node nearer the
/// origin carry a part (or the origin confirm it) settles it; a part not settled is sent again, a few times.
extension Node {
    struct PartKey: Hashable {
        let id: BundleID
        let holder: ShortID
    }

    /// The parts this node carries towards one origin (for the origin itself: those it got and has yet to confirm).
    struct CarriedParts {
        var tags: [PartKey: [UInt8]] = [:]
        /// Hop counts of drill answers (SPEC 6.17), as their holders said them: records with them set flag 0x01.
        var hops: [PartKey: UInt8] = [:]
        /// In arrival order (the record lists them so).
        var order: [PartKey] = []
        /// Sent at least once since they came (piggybacked or on their own).
        var sent: Set<PartKey> = []
        /// When they go in a packet of their own.
        var due: Double
        /// Sends on their own so far.
        var attempts = 0
        /// Every part was sent: `due` is when they go again unless a nearer node is heard carrying them first.
        var waitingForCarry = false
        /// When this node's own part goes on its own (its level's time, `queueReceiptPart`): parts merged from
        /// nodes farther out wait for it too, so the node sends once with everything from beyond.
        var levelDue: Double = 0
    }

    /// Sends on their own before a node gives its parts up (its own then go as a signed receipt, SPEC 6.8).
    static let receiptPartAttempts = 4

    /// The hop count beyond which nodes all wait the shortest time.
    static let receiptPartLevels = 4

    /// This node's distance in hops from an origin (0: itself; `UInt8.max`: unknown), from the route the origin's
    /// bundles taught.
    func hops(to origin: ShortID) -> UInt8 {
        if origin == self.me.short { return 0 }
        guard let r = self.routes[origin] else { return UInt8.max }
        return UInt8(min(r.hops + 1, Int(UInt8.max) - 1))
    }

    /// The key this node shares with an origin for receipt tags, if the origin's keys are known here.
    func receiptKey(holder: NodeID, origin: NodeID) -> SymmetricKey? {
        let other = holder == self.me ? origin : holder
        guard let k = self.keys[other] else { return nil }
        return ReceiptPartsRecord.key(mine: self.config.identity, theirs: k, holder: holder, origin: origin)
    }

    /// One full gathering step: the time a flood takes to cross one more hop (its rebroadcast window).
    var receiptPartStep: Double { self.floodWindow }

    /// A flooded bundle this node got and read: its part goes back to the origin, after the nodes farther out had
    /// time to send theirs (nearer nodes wait longer, so each sends once with everything from beyond). Returns false
    /// when the origin's keys are not known here (no tag can be made): a signed receipt goes instead.
    func queueReceiptPart(for id: BundleID, drill: Bool = false, now: Double) -> Bool {
        guard id.origin != self.me.short,
              let origin = (self.directory[id.origin] ?? []).first(where: { self.keys[$0] != nil }),
              let key = self.receiptKey(holder: self.me, origin: origin) else { return false }
        let levels = Double(Self.receiptPartLevels)
        let h = Double(min(Int(self.hops(to: id.origin)), Self.receiptPartLevels))
        let wait = self.receiptPartStep * (levels - h + 1) * self.rng.uniform(1, 1.25)
        let mine = PartKey(id: id, holder: self.me.short)
        self.carry([(mine, ReceiptPartsRecord.tag(id, holder: self.me.short, key: key))],
                   origin: id.origin, due: now + wait, hops: drill ? [mine: self.hops(to: id.origin)] : [:])
        if var c = self.carried[id.origin] {
            c.levelDue = max(c.levelDue, now + wait)
            self.carried[id.origin] = c
        }
        return true
    }

    /// Parts carried for one origin at most (a flood of made-up parts from a hostile member stops there).
    static let maxCarriedParts = 2_048

    func carry(_ parts: [(PartKey, [UInt8])], origin: ShortID, due: Double, hops: [PartKey: UInt8] = [:]) {
        guard self.carried[origin] != nil || self.carried.count < Tuning.maxReceiptOrigins else { return }
        var c = self.carried[origin] ?? CarriedParts(due: due)
        var added = false
        for (k, tag) in parts where c.tags[k] == nil && c.order.count < Self.maxCarriedParts {
            c.tags[k] = tag
            c.hops[k] = hops[k]
            c.order.append(k)
            added = true
        }
        if added {
            // Parts all sent already: the wait for a nearer node to carry them ends; the new ones go when due.
            c.due = c.waitingForCarry ? due : max(c.due, due)
            c.waitingForCarry = false
            c.attempts = 0
        }
        self.carried[origin] = c
    }

    /// A receipt-parts record heard from a neighbour.
    func handleReceiptParts(_ r: ReceiptPartsRecord, from: NodeID, link: String, now: Double) {
        let parts = r.parts
        // The sender and the holders that are our neighbours have these bundles: they need no copy from us.
        for p in parts {
            self.noteHolder(p.id, from, now: now)
            for n in self.directory[p.holder] ?? [] where self.neighbours[n] != nil { self.noteHolder(p.id, n, now: now) }
        }
        self.pullFloodsShownByParts(r, from: from, link: link, now: now)
        if r.origin == self.me.short {
            self.takeReceiptParts(r, from: from, now: now)
            return
        }
        let mine = self.hops(to: r.origin)
        if r.hops <= mine {
            // Nearer the origin (or the origin confirming): what it carries is on its way; we need not send it. As
            // near as we are: it carries those it lists on too, so we leave them to it (our own part excepted: it is
            // not carrying that on, nodes as near as itself being none of its sources).
            guard var c = self.carried[r.origin] else { return }
            for p in parts where r.hops < mine || p.holder != self.me.short {
                let k = PartKey(id: p.id, holder: p.holder)
                c.tags[k] = nil
                c.sent.remove(k)
            }
            c.order.removeAll { c.tags[$0] == nil }
            c.hops = c.hops.filter { c.tags[$0.key] != nil }
            self.carried[r.origin] = c.order.isEmpty && c.levelDue <= now ? nil : c
        } else if r.hops > mine {
            // Farther out: we carry them on, after a short gathering time (siblings' parts come meanwhile).
            let gather = self.config.minFloodDelay + self.receiptPartStep * self.rng.uniform(0.3, 0.6)
            self.carry(parts.map { (PartKey(id: $0.id, holder: $0.holder), $0.tag) }, origin: r.origin,
                       due: max(now + gather, self.carried[r.origin]?.levelDue ?? 0), hops: Self.partHops(r))
        }
    }

    /// A neighbour's own part (SPEC 6.16: it holds that alert) for an alert we never had: we ask for it with our summary
    /// after `pullDelay` (the flood usually brings it meanwhile), as for the neighbour's own receipt
    /// (`receiptEvidence`; SPEC 8.5 rule 5: a neighbour covered by a copy it lost learns of the bundle from a receipt
    /// part and asks for it). Without it a relay whose one neighbour's rebroadcast was lost heard the parts and never
    /// asked: periodic announces carry the summary only while it fits, so nothing else told either side
    /// (`courier-bench mesh --seeds 1 --neighbour-lists`: the day's alert at 64,860 s never reached n34, a relay whose
    /// only neighbour passed it on once, in the 7 hours left of the run). Only its own parts, as only its own receipt
    /// (or receipts from two nodes) counts there: a part it carries on says that a relay farther out holds the alert,
    /// not that the neighbour does.
    func pullFloodsShownByParts(_ r: ReceiptPartsRecord, from: NodeID, link: String, now: Double) {
        guard r.origin != self.me.short else { return }
        var asked = Set<BundleID>()
        for p in r.parts where p.holder == from.short && !self.heldIndex.contains(p.id) && self.pulls[p.id.digest] == nil
            && asked.insert(p.id).inserted {
            // Unreadable: nothing asked for now (a summary later asks).
            guard let seen = self.storing("look up a bundle receipt parts list", link: link, { try self.store.hasSeen(p.id) }), !seen else { continue }
            self.pulls[p.id.digest] = Pull(link: link, due: now + self.config.pullDelay * self.rng.uniform(1, 1.5), since: now)
        }
    }

    /// Parts for our own bundles: each holder's tag is checked with the key we share with it; a forged or unknown
    /// one is refused (logged). New ones are receipts (events, and the inbox keeps them for `relay outbox`); all are
    /// confirmed with a record of our own, so their carriers stop sending them.
    func takeReceiptParts(_ r: ReceiptPartsRecord, from: NodeID, now: Double) {
        var fresh: [(id: BundleID, holder: ShortID, tag: [UInt8], hops: UInt8?)] = []
        var confirm: [(PartKey, [UInt8])] = []
        for p in r.partsWithHops {
            let k = PartKey(id: p.id, holder: p.holder)
            let holders = (self.directory[p.holder] ?? []).filter { self.keys[$0] != nil }
            let valid = holders.contains { h in
                self.receiptKey(holder: h, origin: self.me).map { ReceiptPartsRecord.verify(p.id, holder: p.holder, tag: p.tag, key: $0) } ?? false
            }
            guard valid else {
                self.drillAnswerRefused(p.id, claiming: p.holder, hops: p.hops, from: from, known: !holders.isEmpty, now: now)
                self.reject("receipt part for \(p.id) claiming \(p.holder), from \(from.short): "
                            + (holders.isEmpty ? "the keys of \(p.holder) are not known here" : "its tag is not \(p.holder)'s (forged or damaged): refused"))
                continue
            }
            confirm.append((k, p.tag))
            self.drillAnswered(p.id, by: p.holder, hops: p.hops, now: now)
            if self.receiptsHeld.count >= Tuning.maxReceiptOrigins * Tuning.receiptsHeldPerOrigin { self.receiptsHeld.removeAll() }
            if self.receiptsHeld.insert(k).inserted { fresh.append(p) }
        }
        if !confirm.isEmpty {
            // Confirmed after a short while, so one record answers every neighbour that sends meanwhile.
            self.carry(confirm, origin: self.me.short, due: now + self.config.minFloodDelay + self.receiptPartStep * self.rng.uniform(1, 1.5))
        }
        guard !fresh.isEmpty else { return }
        for p in fresh { self.emit(.event(.receipt(p.id, by: p.holder))) }
        // Kept in the inbox as a receipt this node made for itself: its content is the record of the parts checked.
        let content = ReceiptPartsRecord(origin: self.me.short, hops: 0, parts: fresh.map { ($0.id, $0.holder, $0.tag) }).encodeBody()
        do {
            let seq = try self.store.nextSequence()
            let b = try CourierBundle.make(
                kind: .receipt, destination: .node(self.me.short), content: content, origin: self.config.identity,
                created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: seq, options: BundleOptions(kind: .receipt),
                compressor: self.compressor)
            self.noteDirected(b.id)
            _ = try self.store.deliver(b, content: content, now: Int64(now), proven: true)
        } catch {
            self.reject("receipts for \(fresh.count) parts of our bundles shown but not kept in the inbox: \(error)")
        }
    }

    /// The receipt-parts record for a packet on a link: with `alone` (nothing else in the packet) the parts of one
    /// origin that are due; otherwise, riding along, parts not sent yet. Nil when none are, or none fit `room`.
    func receiptPartsRecord(now: Double, room: Int, alone: Bool, link: String? = nil) -> Record? {
        for origin in self.carried.keys.sorted() {
            guard var c = self.carried[origin] else { continue }
            // Parts travel towards their origin: on a relay with several links, only on the link its route takes
            // (sent on another, nobody nearer the origin hears them). With no route known, on any.
            if let link, origin != self.me.short, let toward = self.nextHop(for: origin, now: now)?.1, toward != link { continue }
            if c.order.isEmpty {
                if c.levelDue <= now { self.carried[origin] = nil }
                continue
            }
            let due = c.due <= now
            guard alone ? due : c.order.contains(where: { !c.sent.contains($0) }) else { continue }
            let hops = self.hops(to: origin)
            var chosen: [PartKey] = []
            // Header and length (3), origin and hops (5); a bundle's group: created, sequence, count; a part 12.
            var size = 3 + 5
            var perBundle: Set<BundleID> = []
            for k in c.order where alone || !c.sent.contains(k) {
                let extra = (perBundle.contains(k.id) ? 0 : 3 + ByteWriter.varintSize(Int(k.id.sequence)) + 2) + 4 + ReceiptPartsRecord.tagSize
                    + (c.hops.isEmpty ? 0 : 1)
                if size + extra > room { break }
                size += extra
                perBundle.insert(k.id)
                chosen.append(k)
            }
            guard !chosen.isEmpty else { continue }
            let r = ReceiptPartsRecord(origin: origin, hops: hops, partsWithHops: chosen.map { ($0.id, $0.holder, c.tags[$0]!, c.hops[$0]) })
            for k in chosen { c.sent.insert(k) }
            let allSent = c.order.allSatisfy { c.sent.contains($0) }
            if origin == self.me.short {
                // Confirmations go once; a carrier that missed one sends again and is confirmed again.
                for k in chosen { c.tags[k] = nil; c.hops[k] = nil }
                c.order.removeAll { c.tags[$0] == nil }
            } else if alone {
                c.attempts += 1
                if c.attempts >= Self.receiptPartAttempts {
                    self.giveUpParts(&c, origin: origin, now: now)
                } else {
                    // Sent again unless someone nearer the origin is heard carrying them meanwhile.
                    c.due = now + self.receiptPartStep * self.rng.uniform(Tuning.receiptPartRetrySteps.min, Tuning.receiptPartRetrySteps.max) * pow(2, Double(c.attempts - 1))
                    c.waitingForCarry = allSent
                }
            } else if allSent {
                // All out, riding on other packets: a nearer node carries them on when its own parts are due (one
                // level later, `queueReceiptPart`); sent on their own only if it is not heard doing so by then.
                let levels = Double(Self.receiptPartLevels)
                let h = Double(min(Int(hops), Self.receiptPartLevels))
                c.due = now + self.receiptPartStep * ((levels - h + Tuning.carryWaitExtraLevels) * Tuning.carryWaitStepsPerLevel
                                                    + self.rng.uniform(Tuning.carryWaitJitterSteps.min, Tuning.carryWaitJitterSteps.max))
                c.waitingForCarry = true
            }
            self.carried[origin] = c.order.isEmpty && c.levelDue <= now ? nil : c
            return .receiptParts(r)
        }
        return nil
    }

    /// Parts sent `receiptPartAttempts` times and never heard carried on: our own part goes as a signed receipt
    /// (custody and acks take it to the origin); parts of others are given up and logged (their holders send them
    /// again while they hear nothing nearer the origin carry them).
    func giveUpParts(_ c: inout CarriedParts, origin: ShortID, now: Double) {
        let others = c.order.filter { $0.holder != self.me.short }
        for k in c.order where k.holder == self.me.short { self.queueReceipt(for: k.id, now: now) }
        if !others.isEmpty {
            self.reject("gave up carrying \(others.count) receipt parts to \(origin): nothing nearer it was heard carrying them after \(c.attempts) sends")
        }
        c = CarriedParts(due: .infinity)
    }

    /// The relay is stopping: our own parts not yet heard carried on go as signed receipts (stored with the other
    /// receipts being aggregated); parts of others are dropped (their holders send them again).
    func flushReceiptParts(now: Double) {
        for (origin, c) in self.carried where origin != self.me.short {
            for k in c.order where k.holder == self.me.short { self.queueReceipt(for: k.id, now: now) }
        }
        self.carried = [:]
    }

    /// Parts that fit in one packet with an announce.
    static let partsWithAnnounce = 10

    /// Whether parts now due go with this node's announce, brought forward: the next periodic announce is then an
    /// interval later, so over time they cost no packet of their own, only their bytes. Parts that fit with an
    /// announce and fall due less than a quarter interval after the last one wait until then (announcing more
    /// often would cost packets); more than fit go on their own. Only on slow half-duplex radio links (below 100
    /// kbit/s): elsewhere a packet costs little and the parts go when due.
    func receiptPartsRideAnnounce(_ l: LinkState, now: Double) -> Bool {
        let p = l.info.properties
        guard p.duplex == .half, p.bitsPerSecond.map({ $0 < Tuning.slowLinkBitsPerSecond }) ?? false else { return false }
        guard !l.announceDue, l.announceParts.isEmpty else { return false }
        let due = self.carried.filter { !$0.value.order.isEmpty && $0.value.due <= now }
        guard !due.isEmpty, due.values.allSatisfy({ $0.order.count <= Self.partsWithAnnounce }) else { return false }
        let allowed = l.lastAnnounced + self.config.announceInterval * Tuning.partsAnnounceSpacing
        if now >= allowed { return true }
        for origin in due.keys { self.carried[origin]!.due = allowed }
        return false
    }

    /// When the next parts are due (for `nextWakeup`).
    /// (A loop: the filtered copy and the array of times it made were two arrays at every wake-up asked for.)
    var receiptPartsDue: Double {
        var due = Double.infinity
        for c in self.carried.values where !c.order.isEmpty { due = min(due, c.due) }
        return due
    }
}

/// What the aggregated-receipts part keeps; no other part uses it.
struct ReceiptPartsState {
    /// Receipt parts carried towards each origin (SPEC 6.16).
    var carried: [ShortID: Node.CarriedParts] = [:]
    /// Parts for our own bundles already taken (cleared past `Tuning.maxReceiptOrigins` × 8).
    var held: Set<Node.PartKey> = []
}

extension Node {
    var carried: [ShortID: CarriedParts] {
        get { self.receiptParts.carried }
        _modify { yield &self.receiptParts.carried }
    }

    var receiptsHeld: Set<PartKey> {
        get { self.receiptParts.held }
        _modify { yield &self.receiptParts.held }
    }
}
