import CourierMedium
import CourierWire
import Foundation

/// The packet composer: fills each packet for a link (acks, announce, summary page, bundle data by class and age) and
/// seals and emits packets while the link is free and within its budget.
extension Node {
    /// Builds and emits packets on a link while it is free and within its airtime budget.
    func pump(_ name: String, now: Double) {
        // (Changed in place: a copy of the link's state taken out and put back at each pump retained and released all it holds.)
        guard let li = self.links.index(forKey: name) else { return }
        let (up, afsk) = self.withLink(at: li) { l -> (Bool, (txDelay: Double, txTail: Double)?) in
            guard l.up else { return (false, nil) }
            if l.info.dutyCycle != nil { l.sent.advance(to: now, window: Self.reckonedWindow) }
            if case .afsk(_, let txDelay, let txTail, _) = l.info.properties.airtime { return (true, (txDelay, txTail)) }
            return (true, nil)
        }
        guard up else { return }
        var guardCount = 0
        // A KISS TNC keys up once for frames handed to it together: on AFSK links send a burst, paying TXDELAY
        // once. Elsewhere (LoRa, serial) one packet, then wait for its airtime.
        var burstMax = 1
        var keyOverhead = 0.0
        if let (txDelay, txTail) = afsk {
            burstMax = Self.afskBurst
            keyOverhead = txDelay + txTail
        }
        var inBurst = 0
        while guardCount < Tuning.maxPacketsPerPump, let link = self.links[name], link.busyUntil <= now || (inBurst > 0 && inBurst < burstMax) {
            guardCount += 1
            // Out of airtime (duty cycle): wait until enough of the window's allowance is left for a full packet
            // (what the modem would refuse, the engine does not hand it). Within the urgent reserve only urgent
            // bundle data goes (SPEC 8.5).
            var urgentOnly = false
            if link.info.dutyCycle != nil {
                let left = Self.tokens(link, at: now)
                if left < Self.packetAllowance(link.info) { return }
                if left <= Self.urgentReserve(link.info) {
                    guard self.urgentDue(name, now: now) else { return }
                    urgentOnly = true
                }
            }
            // Reserved before a packet is composed (composing marks what it carries as sent): without a counter
            // kept in the store (a full disk) nothing is sent on this link, said, until a reservation works.
            if self.counters.isEmpty {
                guard let reserved = self.storing("reserve packet counters", link: name, { try self.store.reservePacketCounters(Tuning.packetCounterBlock) }) else { return }
                self.counters = reserved
            }
            // One durable write per packet (DurableGroups.swift): what it carries, recorded as sent. Emitted only once
            // kept; if the commit fails nothing goes out and what composing took goes back (the link's acks, announce
            // and summary page, the transfers' records), to be sent once storage works again.
            var composed: ([Record], [BundleID], Bool, Bool)? = nil
            let before = self.composingState(name)
            guard self.durably("record a packet before sending it", link: name, { composed = self.compose(name, now: now, urgentOnly: urgentOnly) }) else {
                self.restore(before, link: name)
                return
            }
            self.transfers.endJournal()
            guard let (records, carrying, announce, summaryWithAnnounce) = composed else { return }
            guard let counter = self.counters.first else { return }
            self.counters = self.counters.dropFirst()
            let bytes = self.sealer.seal(records, counter: counter, announceSalt: announce ? UInt32(truncatingIfNeeded: self.rng.next()) : nil)
            var airtime = link.info.properties.airtime(bytes: bytes.count)
            var l2 = self.links[name]!
            if inBurst > 0 {
                airtime = max(0, airtime - keyOverhead)
                l2.busyUntil += airtime
            } else {
                l2.busyUntil = now + airtime
            }
            inBurst += 1
            // (In a burst, the packet starts when the one before it ends.)
            if l2.info.dutyCycle != nil { l2.sent.record(start: l2.busyUntil - airtime, airtime: airtime) }
            self.links[name] = l2
            self.stats.packetsSent += 1
            self.stats.bytesSent += bytes.count
            if announce { self.emit(.event(.announced(link: name, withSummary: summaryWithAnnounce))) }
            self.emit(.send(link: name, packet: bytes, carrying: carrying))
            // The retransmission clock of what is in flight on this link does not run while we transmit (on a
            // half-duplex channel the neighbour cannot answer meanwhile): each timer moves by this packet's airtime.
            // (Not to "when we stop transmitting" plus a whole timeout: under steady traffic, a packet every second,
            // that postponed every retransmission for as long as new messages kept coming.)
            if l2.info.properties.duplex == .half && airtime > 0 {
                for var t in self.transfers.inFlight(on: name) {
                    t.rtoAt += airtime
                    if t.due > now { t.due = max(t.due, t.rtoAt) }
                    self.transfers[t.key] = t
                }
            }
            if airtime > 0 && inBurst >= burstMax { return }
        }
    }

    /// Packets handed to a KISS TNC in one go (one key-up).
    static let afskBurst = 16

    /// The next packet for a link: acks first, then the announce, a summary page, and bundle data by priority.
    /// Returns the records, the bundles with data in them, whether they start with an announce, and whether a
    /// periodic announce's summary rode with it.
    /// `urgentOnly` (a link within its urgent reserve): urgent bundle data and nothing else.
    func compose(_ name: String, now: Double, urgentOnly: Bool = false) -> ([Record], [BundleID], Bool, Bool)? {
        // Turns around a returned neighbour (SPEC 8.5 rule 5): what waits for our turns on this link, and till when.
        // (Before the link's state is copied: ended turns are cleared from it.)
        let turnHolds = self.turnHolds(link: name, now: now)
        guard var l = self.links[name] else { return nil }
        var ackInTurn = false
        let mtu = l.info.properties.mtu
        var records: [Record] = []
        var carrying: [BundleID] = []
        // `size` counts every record with its length prefix; the packet's last record is written without one (SPEC
        // 5.1), so a record fits if it fits as the last one. The fragmenter sizes a record to fill a packet of its
        // own exactly that way: counting the prefix here too refused records within 1-2 bytes of the MTU, and with
        // them every fragment of most bundles over ~18 KB, for ever.
        var size = Packet.overhead
        var announceForm = false
        var summaryWithAnnounce = false
        // Sizes of the records as written: own bundles to a neighbour that reads runs share one record (SPEC 5.11),
        // so a record's cost depends on the one before it.
        func fits(_ r: Record, mtu: Int = mtu) -> Bool {
            size - Record.payloadSize(records, lastWithLength: true) + Record.payloadSize(records + [r]) <= mtu
        }
        func fits(_ rs: [Record]) -> Bool {
            size - Record.payloadSize(records, lastWithLength: true) + Record.payloadSize(records + rs) <= mtu
        }
        func add(_ r: Record) {
            size += Record.payloadSize(records + [r], lastWithLength: true) - Record.payloadSize(records, lastWithLength: true)
            records.append(r)
        }
        // Acks to a returned neighbour two hidden senders contend for (`turnContended`) wait for our turn, and then go
        // (due or not: the next chance is a cycle away) at the head of our turn's packet.
        let turnAcks = l.acks.keys.contains { turnHolds.inTurn($0) }
        if !urgentOnly, let d = l.ackDue, d <= now || turnAcks {
            var heldUntil: Double? = nil
            for (target, entries) in l.acks.sorted(by: { $0.key < $1.key }) {
                if let w = turnHolds.ackHold(target) {
                    heldUntil = min(heldUntil ?? w, w)
                    continue
                }
                let rs = self.ackRecords(to: target, entries)
                if fits(rs) {
                    rs.forEach(add); l.acks[target] = nil; l.partialAcks[target] = nil; l.unackedFragments[target] = nil
                    if turnHolds.inTurn(target) { ackInTurn = true }
                }
            }
            let waiting = l.acks.keys.contains { turnHolds.ackHold($0) == nil }
            l.ackDue = l.acks.isEmpty ? nil : (waiting ? now : heldUntil)
        }
        // A directed transfer about to go again to a neighbour that never acknowledged us: it may not know our keys
        // (it missed our announces) and so cannot read our packets. The retry carries our announce.
        if !urgentOnly, !l.announceDue, now - l.lastAnnounced > Tuning.announceWithRetryAfter, self.transfers.inFlight(on: name).contains(where: { t in
            guard t.key.link == name, now >= t.rtoAt, let target = t.key.target, !t.sent.subtracting(t.acked).isEmpty else { return false }
            return (self.neighbours[target]?.ackedFragments ?? 0) == 0
        }) {
            l.announceDue = true
        }
        // Receipt parts due (SPEC 6.16) go with our announce, brought forward (the next is an interval later).
        let partsWithAnnounce = !urgentOnly && self.receiptPartsRideAnnounce(l, now: now)
        if partsWithAnnounce { l.announceDue = true }
        if l.announceDue && !urgentOnly {
            // The whole announce, or its parts when it does not fit one packet (the last part completes the keys).
            let k = self.config.identity.publicKeys
            let caps: UInt8 = 1 | AnnounceRecord.compact | AnnounceRecord.runs | AnnounceRecord.cuts | AnnounceRecord.bareBlocks | AnnounceRecord.copyBudgets | (l.helloSent ? 0 : AnnounceRecord.hello)
            l.announceParts = AnnounceRecord.parts(
                AnnounceRecord(capabilities: caps, signingKey: k.signing, agreementKey: k.agreement, name: self.config.name), mtu: mtu)
            l.announceDue = false
            l.helloSent = true
            l.lastAnnounced = now
            l.nextAnnounce = self.nextAnnounceTime(&l, now: now)
        }
        if !urgentOnly, let part = l.announceParts.first {
            // One part per packet, in announce form; after acks that leave too little room, in the next packet.
            let a = Record.announce(part)
            size += Packet.announceOverhead - Packet.overhead
            if records.isEmpty || fits(a) {
                add(a)
                announceForm = true
                l.announceParts.removeFirst()
            } else {
                size -= Packet.announceOverhead - Packet.overhead
            }
        }
        if !urgentOnly && !l.pendingSummary.isEmpty {
            let page = l.pendingSummary[0]
            let r = Record.summary(SummaryRecord(isFinal: l.pendingSummary.count == 1, digests: page))
            if fits(r) {
                add(r)
                l.pendingSummary.removeFirst()
                if l.summaryWithAnnounce && announceForm {
                    self.stats.summariesInPeriodicAnnounces += 1
                    summaryWithAnnounce = true
                }
                l.summaryWithAnnounce = false
            }
        }
        if !urgentOnly, let r = self.dictionaryRecord(for: name, withAnnounce: announceForm), fits(r) { add(r); self.dictionaryRecordSent(r, link: name) }
        // With our announce, the neighbours we hear (SPEC 5.13, 8.5 rule 5), in the room left.
        if announceForm, let r = self.neighbourListRecord(link: name, now: now, fits: { fits($0) }) { add(r) }
        // The rests of bundles cut at the end of the packet before (SPEC 5.12) go first; one whose transfer timed out,
        // was acknowledged or cut again is dropped (the whole bundle goes again). Not in an announce-form packet: a rest
        // is a piece of a run, read with an ordinary packet's sender (SPEC 5.12); it waits for the next packet.
        if !l.rests.isEmpty && !announceForm {
            var left: [PendingRest] = []
            for p in l.rests {
                guard let t = self.transfers[p.key], t.number == p.piece.transfer, t.sent.contains(0), !t.acked.contains(0),
                      !urgentOnly || t.priority <= .urgent else { continue }
                if fits(.piece(p.piece)) {
                    add(.piece(p.piece))
                    if !carrying.contains(p.key.bundle) { carrying.append(p.key.bundle) }
                } else {
                    left.append(p)
                }
            }
            l.rests = left
        }
        self.links[name] = l
        // Bundle data: transfers on this link, by class then age.
        // (At most `Tuning.dueTransfersLooked` of them, from the due-time index: not every transfer queued.)
        let candidates = self.transfers.due(on: name, now: now, limit: Tuning.dueTransfersLooked)
        // On a slow link an urgent bundle travels in a packet of its own class: filling the rest of its packet with
        // a bulk transfer would make the alert wait for the whole packet's airtime.
        let slow = l.info.properties.bitsPerSecond.map { $0 < Tuning.slowLinkBitsPerSecond } ?? false
        let smallMTU = self.fragmentMTU(l)
        var urgentAdded = false
        var floodAdded = false
        // Whether this packet carries directed data in our turn around a returned neighbour (`turnWait`).
        var turnPacket = false
        // A packet with an ack to a returned neighbour not contended for, outside our turn, goes short: no bundle data.
        let ackTargets = records.compactMap { r -> ShortID? in if case .ack(let a) = r { a.target } else { nil } }
        let shortAck = turnHolds.ackGoesShort(ackTargets)
        for var t in candidates {
            if slow && urgentAdded && t.priority > .urgent { break }
            if urgentOnly && t.priority > .urgent { break }
            if shortAck { break }
            // A returned neighbour busy with a node we do not hear (`holdForHiddenSender`): its turn first.
            if let target = t.key.target, let until = self.neighbours[target]?.busyWithHiddenUntil, until > now {
                t.due = max(t.due, until)
                self.transfers[t.key] = t
                continue
            }
            // While we take turns around a returned neighbour others we do not hear also waited for (`startTurns`):
            // directed data for it only in our turn, one packet per turn (several transfers' records may share it).
            // While two hidden senders contend for it (`turnContended`), our data for anyone else too (it hears every
            // packet of ours, and one outside our turn falls in another's), and data for it no longer rides a packet
            // of data for others. Holding data for others always (session 16; session 21's recov4) cut v06's
            // recovery but slowed the returns with small backlogs (v09's quiet spell, the triangle's partition heal);
            // held only while contended, none of them is slower than without: docs/journal/session-21-recov5.md.
            if let next = turnHolds.hold(t.key.target, turnPacket: turnPacket) {
                t.due = max(t.due, next)
                self.transfers[t.key] = t
                continue
            }
            let inFlight = t.sent.subtracting(t.acked).count
            // A retransmission timeout: what was sent and not acknowledged goes again.
            if t.key.target != nil && inFlight > 0 && now >= t.rtoAt {
                t.rtoAt = .infinity
                // Lost on the line only if the neighbour was heard after they went (it is there, and did not get them
                // or its acks did not reach us). A neighbour silent since (switched off, cut off by a partition) says
                // nothing of the line: counted, a 20-minute absence cut the line's fragments small for its return
                // (a 242-byte bundle in 4 fragments on a line losing 10% of packets, each of them to get through).
                // Nor while it is in its slow start after a return (`restartWindow`): its neighbours that waited for it
                // send together, and what they lose then is lost to collisions at it, not to the line.
                if let target = t.key.target, let sentAt = t.lastSent, (self.neighbours[target]?.lastHeard[name] ?? -.infinity) >= sentAt,
                   self.restartWindow(target, now: now) == nil, self.turns(target, link: name, now: now) == nil {
                    for i in t.sent.subtracting(t.acked) { self.noteRecordOutcome(link: name, record: t.records[i], arrived: false) }
                }
                t.sent = t.acked
                t.attempts += 1
                if let target = t.key.target, self.restartWindow(target, now: now) != nil { self.neighbours[target]?.restartWindow = Tuning.restartWindow }
                t.retransmitted = true
                self.stats.retransmissions += 1
                if t.attempts > Self.maxSilentRetries, let target = t.key.target,
                   now - (self.neighbours[target]?.lastHeard[name] ?? -1e9) > self.silenceBeforeGivingUp(link: self.links[name]) {
                    // The neighbour stopped answering (nothing at all heard from it for a while, not merely lost
                    // fragments on a noisy line): give up until it is heard again, or probed (`unresponsiveProbe`).
                    self.transfers[t.key] = nil
                    if let target = t.key.target {
                        self.neighbours[target]?.unresponsiveSince = now
                        // What heal probes ask for it for (SPEC 9 rule 8); kept only where they may run.
                        if self.config.healProbes { self.neighbours[target]?.lostWith.insert(t.key.bundle) }
                    }
                    if t.custody, let target = t.key.target { self.reportStalled(t.key.bundle, to: target.short, attempts: t.attempts, now: now) }
                    // A copy given without a route (`replicas`) that never arrived is not a copy given: that neighbour
                    // may have it when it is heard again. (Counted as given, the relay beside one switched off for an
                    // hour had given its two copies, to it and to the relay behind, and never sent the bundle on when
                    // it came back: 3,200 s of the valley drill's recovery.)
                    // Its copy budget (5.14) comes back with it.
                    if !t.custody, let target = t.key.target {
                        self.replicas[t.key.bundle]?.remove(target)
                        if let c = t.copies, self.heldIndex.contains(t.key.bundle) { self.setCopies(t.key.bundle, self.copiesLeft(t.key.bundle) + c) }
                    }
                    continue
                }
                // Cut before the line turned noisy, the records are too big for it (each crosses whole with little
                // chance): with nothing acknowledged after `recutAfter` time-outs, the bundle is cut again to the
                // size the line now takes, under a new transfer number (the receiver drops the old pieces by timeout).
                // A record too big is one whose packet (its overhead counted, as the fragmenter counts it) is over that
                // size: counted without it, a whole bundle of up to the size itself was never cut again, and went
                // alone in a packet 25 bytes over it at every retry (on a line damaging 1% of bytes a 72-byte bundle
                // in a 110-byte frame arrives a third of the time; session 16's CI run sent one 16 times, never heard).
                let cutFor = smallMTU - (t.copies == nil ? 0 : Tuning.copyBudgetRoom)
                if let target = t.key.target, t.acked.isEmpty, t.attempts >= Self.recutAfter,
                   t.records.contains(where: { !Packet.fits($0, used: Packet.overhead, mtu: cutFor) }),
                   let bundle = Self.bundleBytes(t.records),
                   let number = self.takeTransferNumber(for: t.key.bundle) {
                    do {
                        t.records = try Fragmenter.records(bundle: bundle, mtu: cutFor, transfer: number, nextHop: target.short, wantAck: true)
                        t.number = number
                        t.sent = []
                    } catch {
                        self.reject("cannot cut \(t.key.bundle) again for a noisy line: \(error)")
                    }
                }
            }
            var addedAny = false
            // The copy budget it hands on (5.14) goes once in each packet carrying its records (its records were cut
            // with room for it): the packet that completes the bundle at the receiver always says it.
            var budget = self.copiesOnAir(t).map { [$0] } ?? []
            // A neighbour in its slow start after a return: our records in flight to it, all transfers together, within
            // its restart window.
            let restart = t.key.target.flatMap { self.restartWindow($0, now: now) }
            // (Counted in transfers: a transfer under way sends its window, so the receiver's ack for a partial transfer,
            // which waits for the rest of the window, is not waited for fragment by fragment.)
            let heldByRestart = restart.map { w in
                t.sent.subtracting(t.acked).isEmpty && self.transfersInFlight(to: t.key.target!, link: name, except: t.key) >= w
            } ?? false
            for i in 0..<t.records.count where !t.sent.contains(i) && !t.acked.contains(i) && !heldByRestart {
                if t.key.target != nil && t.sent.subtracting(t.acked).count >= self.config.window { break }
                let r = self.onAir(t.records[i], target: t.key.target, ordinaryPacket: !announceForm)
                if !budget.isEmpty, !fits(budget + [r]), records.isEmpty, fits(r) {
                    // Only if its records were cut without room for it (a neighbour's capabilities changed under way):
                    // the copy goes without its budget rather than never.
                    budget = []
                }
                guard fits(budget + [r]) else {
                    // Fill the packet (SPEC 5.12): the bundle's head here, its rest first in the next packet. Not on a
                    // line that loses packets (its fragment size cut down, `fragmentMTU`): a cut bundle arrives only if
                    // both its packets do, which squares the loss there.
                    // Nor in turns around a returned neighbour (`turnWait`): the rest would be a second packet in our turn.
                    if !records.isEmpty, t.records.count == 1, smallMTU >= mtu, l.turnsFor.isEmpty,
                       let c = self.cutToFill(r, target: t.key.target, over: { p in
                           size - Record.payloadSize(records, lastWithLength: true) + Record.payloadSize(records + [.piece(p)]) - min(mtu, smallMTU)
                       }) {
                        add(.piece(c.head))
                        t.sent.insert(i)
                        addedAny = true
                        if var l = self.links[name] {
                            l.rests.removeAll { $0.key == t.key }
                            l.rests.append(PendingRest(key: t.key, piece: c.rest))
                            self.links[name] = l
                        }
                    }
                    break
                }
                // On a noisy line a packet of directed data stays within the size fragments are cut for (a record
                // cut before the line turned noisy still goes, alone).
                if t.key.target != nil, !records.isEmpty, !fits(r, mtu: smallMTU) { break }
                budget.forEach(add)
                budget = []
                add(r)
                t.sent.insert(i)
                addedAny = true
            }
            if addedAny {
                if t.priority == .urgent { urgentAdded = true }
                if t.key.target == nil { floodAdded = true }
                if t.key.target == nil { self.stats.broadcastDataPackets += 1 } else { self.stats.unicastDataPackets += 1 }
                if !carrying.contains(t.key.bundle) { carrying.append(t.key.bundle) }
                if t.firstSent == nil { t.firstSent = now }
                t.lastSent = now
                // Not kept (a full disk): the transfer goes on from memory; after a restart it starts again.
                if let target = t.key.target, let found = self.storing("read a bundle being sent", link: name, { try self.store.bundle(t.key.bundle) }),
                   let q = found {
                    self.neighbours[target]?.sentFragments += 1
                    _ = self.storing("record a transmission", link: name) {
                        try self.store.recordSent(q.id, to: target, transfer: t.number, fragments: t.records.count,
                                                  indices: Array(t.sent).sorted(), nextRetry: Int64(now + self.rto(target, link: l, fragments: t.records.count)), now: Int64(now))
                    }
                }
            }
            if t.key.target == nil {
                // Broadcast: done once every record went out (the change feed says so: `relay outbox`, `queue list`).
                if t.sent.count == t.records.count {
                    self.transfers[t.key] = nil
                    // Sent to everyone in range before our rebroadcast's time (an answer to a summary): that was it.
                    if self.floods[t.key.bundle]?.waiting == false { self.floods[t.key.bundle]!.sentOn.insert(name) }
                    let inRange = self.freshNeighbours(now: now).filter { $0.link == name }.map(\.id.short.description)
                    do {
                        try self.store.recordBroadcast(t.key.bundle, link: name, inRange: inRange, now: Int64(now))
                    } catch {
                        self.rejectStorage("cannot record the broadcast of \(t.key.bundle) in the change feed: \(error)", error)
                    }
                } else { self.transfers[t.key] = t }
            } else {
                if addedAny {
                    t.rtoAt = now + self.rto(t.key.target, link: l, fragments: t.records.count) * pow(2, Double(min(t.attempts, self.backoffCap(t.key.target, link: name, now: now))))
                    // In turns: not acknowledged by our next turn, it goes again then (not after a backed-off time-out).
                    if let target = t.key.target, let next = self.nextTurn(target, link: name, now: now) { t.rtoAt = min(t.rtoAt, next) }
                    if !turnPacket, !(self.links[name]?.turnsFor.isEmpty ?? true) {
                        turnPacket = true
                        self.usedTurn(link: name, now: now)
                    }
                }
                // The window: keep sending while fragments remain unsent and fewer than `window` are in flight;
                // otherwise wait for an ack or the timeout.
                let unsent = (0..<t.records.count).contains { !t.sent.contains($0) && !t.acked.contains($0) }
                t.due = unsent && t.sent.subtracting(t.acked).count < self.config.window ? now : t.rtoAt
                // Held by the neighbour's restart window: until an ack opens it (`openRestartWindow`), or our own
                // time-out; with nothing of ours in flight, at the latest a time-out from now.
                if heldByRestart && !addedAny {
                    t.due = t.rtoAt.isFinite ? t.rtoAt : now + self.rto(t.key.target, link: l, fragments: t.records.count)
                }
                self.transfers[t.key] = t
            }
            if size >= mtu - Tuning.packetFullWithin { break }
        }
        // With a flood, our neighbour list naming the relays that are to pass it on (SPEC 5.13, 8.5 rule 5).
        if floodAdded, !records.contains(where: { if case .neighbours = $0 { true } else { false } }),
           let r = self.neighbourListRecord(link: name, now: now, relays: true, fits: { fits($0) }) {
            add(r)
        }
        // Receipt parts (SPEC 6.16): riding in the room left, or alone when due.
        if !urgentOnly, let r = self.receiptPartsRecord(now: now, room: mtu - size, alone: records.isEmpty || partsWithAnnounce, link: name) { add(r) }
        // A packet going out anyway carries acks for complete transfers that would otherwise wait for their delay,
        // ahead of its other records (as acks always are: a receipt in the same packet must not be read first).
        if !urgentOnly, !records.isEmpty, var l = self.links[name], !l.acks.isEmpty {
            var early: [Record] = []
            for (target, entries) in l.acks.sorted(by: { $0.key < $1.key })
            where (l.partialAcks[target]?.isEmpty ?? true) && turnHolds.ackHold(target) == nil {
                let rs = self.ackRecords(to: target, entries)
                // These go in front, so the record last now stays last: each must fit with its own length prefix.
                if size + rs.reduce(0, { $0 + $1.encodedSize(last: false) }) <= mtu {
                    rs.forEach(add); early += rs; l.acks[target] = nil; l.partialAcks[target] = nil; l.unackedFragments[target] = nil
                    if turnHolds.inTurn(target) { ackInTurn = true }
                }
            }
            records = early + records.dropLast(early.count)
            if l.acks.isEmpty { l.ackDue = nil }
            self.links[name] = l
        }
        // A turn packet carrying acks to the returned neighbour and no directed data uses our turn all the same.
        if ackInTurn, !turnPacket { self.usedTurn(link: name, now: now) }
        return records.isEmpty ? nil : (records, carrying, announceForm, summaryWithAnnounce)
    }
}

/// The packet counters the composer reserved in the store and has not used yet (SPEC 4.8: each counter is durable
/// before a packet carries it, so none is used twice after a restart); no other part uses them.
struct PacketCounters {
    var reserved: Range<UInt32> = 0..<0
}

extension Node {
    var counters: Range<UInt32> {
        get { self.packetCounters.reserved }
        _modify { yield &self.packetCounters.reserved }
    }
}
