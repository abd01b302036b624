import CourierMedium
import enum CourierStore.Acceptance
import typealias CourierStore.ExpiredBundle
import enum CourierStore.StoreError
import CourierWire
import Foundation

/// Bundle intake: a bundle received from a link, an archive or the key book's waiting list is decoded, judged, stored
/// (custody for a directed one) or delivered and receipted; expiry of what is held.
extension Node {
    /// A bundle received from a neighbour. Returns whether it is settled here (stored, delivered, already here, or
    /// refused and reported) and may be acknowledged; false when it could not be stored (a full disk): then it is
    /// not acknowledged, and the sender keeps it and tries again.
    /// `copies`: the copy budget the sender gave with it (SPEC 5.14); nil: none said (an older sender), the whole
    /// `Tuning.copyBudget`. `handedToUs`: it came in a transfer addressed to us (a next hop: custody moves on our
    /// acknowledgement).
    @discardableResult
    func handleBundleBytes(_ bytes: [UInt8], from: NodeID, link: String, now: Double, copies: Int? = nil, handedToUs: Bool = false) -> Bool {
        let b: CourierBundle
        do { b = try CourierBundle(decoding: bytes) } catch {
            self.reject("bundle from \(from.short): \(error)")
            return true
        }
        let nowMinutes = UInt64(CourierTime.minutes(unixSeconds: Int64(now)))
        if b.expires <= nowMinutes { return self.expiredOnArrival(b, from: from, link: link, handedToUs: handedToUs, now: now) }
        // A copy of a flood we are about to rebroadcast: one more neighbour has it; a repair someone else just
        // sent need not be sent again.
        if self.floods[b.id] != nil { self.floods[b.id]!.heard += 1; self.floods[b.id]!.copyHeard(from: from, asked: self.floodRelayAsked) }
        self.noteHolder(b.id, from, now: now)
        // Only a receipt its origin signed says anything (a forged one would suppress copies and pulls).
        if b.kind == .receipt, self.judge(b) == .proven { self.receiptEvidence(b, from: from, link: link, now: now) }
        // (Also one due and waiting for a busy channel: the copy just heard went out meanwhile. A rebroadcast
        // waiting so is for `floodsWaiting` to judge, by the copies heard.)
        for k in self.transfers.keys(of: b.id) where k.link == link && k.target == nil {
            if let t = self.transfers[k], t.sent.isEmpty && (t.due > now || self.floods[b.id]?.waiting != true) { self.transfers[k] = nil }
        }
        // Unreadable (an I/O error): not settled, so not acknowledged; the sender keeps it and tries again.
        guard let seen = self.storing("look up a received bundle", link: link, { try self.store.hasSeen(b.id) }) else { return false }
        // A directed bundle for another node handed to us again after we passed it on (a route that turned back, the
        // last copy of a budget moving on): its sender lets its copy go on our acknowledgement, so we take custody
        // again rather than acknowledge a duplicate and let the bundle vanish (SPEC 8.5, directed bundles, rule 2).
        // One still held here stays a duplicate (the store says which), and so does one known to have reached its
        // destination (`arrived`: the sender's copy is one too many). With no hop left it is given up on, reported
        // (`giveUpHopLimit`): each hand-on lowers the hop limit (Transfers.swift), so a loop of routes ends, and not
        // in silence. Routing does not hand it back to the neighbour it came from (split horizon, `onwardHop`).
        let handedBack = seen && handedToUs && Self.isDirectedBundle(b) && !self.isForMe(b) && !self.arrived.contains(b.id)
        if handedBack, b.hopLimit == 0 {
            guard let held = self.storing("look up a bundle handed back", link: link, { try self.store.bundle(b.id) }) else { return false }
            if held == nil { return self.giveUpHopLimit(b, from: from, link: link, now: now) }
        }
        let again = handedBack && b.hopLimit > 0
        if seen && !again {
            self.emit(.event(.duplicate(b.id)))
            // A copy of a directed bundle we hold, given by a neighbour that did not know we had it: its budget is ours
            // now (SPEC 5.14 rule 7).
            if let copies, Self.isDirectedBundle(b) { self.takeCopies(b.id, copies, link: link, now: now) }
            // A flood held with no hop left takes this copy's hop limit if it has some (SPEC 6.10). Kept at the first
            // copy's, a relay whose first copy came the long way round passed on nothing, not even to a neighbour whose
            // summary showed it lacked the bundle: on regional-200 (seed 200) r072's six neighbours held the alert with no
            // hop left, and r072 never got it. A flood with hops left is passed on already: it is left as it came.
            if !Self.isDirectedBundle(b), b.hopLimit > 0, self.spentFloods.contains(b.id), let first = bytes.first,
               self.storing("raise a held flood's hop limit", link: link, { try self.store.raiseHopLimit(b.id, first: first) }) != nil {
                self.spentFloods.remove(b.id)
            }
            return true
        }
        if let why = self.distrust(b) {
            self.reject(why)
            self.refuse(b, why: why, from: from.short.description, now: now)
            return true
        }
        // Route learning: the origin is reachable through the neighbour it came from.
        // (Alerts start at the highest hop limit, 6.10, when their hop limit is still above the default: an older
        // origin's, or a live drill's, start at 8.)
        let start = b.kind == .alert && b.hopLimit > self.config.hopLimit ? CourierBundle.maxHopLimit : self.config.hopLimit
        let hops = Int(start) - Int(b.hopLimit)
        if b.origin != self.me.short, (self.routes[b.origin].map { $0.hops >= hops || now - $0.at > self.config.neighbourTimeout } ?? true) {
            self.routes[b.origin] = (from, max(hops, 0), now)
        }
        switch self.accept(b, from: from.short, source: from.short.description, now: now, again: again) {
        case .stored:
            if let copies, case .node = b.destination { self.setCopies(b.id, copies) }
            if Self.isDirectedBundle(b) { self.cameFrom[b.id] = (from, now) }
            if b.hopLimit == 0, !Self.isDirectedBundle(b) { self.spentFloods.insert(b.id) }
            self.afterStoring(b, from: from, now: now, local: false)
            return true
        case .notStored: return false
        case .duplicate:
            // Handed back while still held here: a duplicate after all.
            if again { self.emit(.event(.duplicate(b.id))) }
            return true
        case .delivered, .waiting, .failed: return true
        }
    }

    /// A bundle whose lifetime passed before it reached us (SPEC 6.14 step 2): dropped, not stored, and acknowledged
    /// (nobody can use it now: its sender may let it go), but not in silence: the log and the feed (`expired`, with
    /// the neighbour), `relay status`'s expired total; a directed one handed to us (custody would have moved) is given
    /// up on and its origin told (failure notice, reason 1 expired), as if it had expired in our queue. Once per bundle
    /// (it is seen after). Returns whether it is settled (false: not recorded, a full disk; not acknowledged).
    func expiredOnArrival(_ b: CourierBundle, from: NodeID, link: String, handedToUs: Bool, now: Double) -> Bool {
        let directedTo: ShortID? = if case .node(let d) = b.destination, handedToUs { d } else { nil }
        let detail = "lifetime passed before it arrived (from \(from.short))"
        guard let recorded = self.storing("record a bundle that arrived expired", link: link, {
            try self.store.expiredOnArrival(b, detail: detail, from: from.short.description, now: Int64(now))
        }) else { return false }
        guard recorded else { return true }
        if let d = directedTo {
            self.emit(.event(.gaveUp(b.id, reason: "expired: its lifetime passed before it reached \(d) (it arrived here from \(from.short) already expired)")))
            self.notifyFailure(b.id, kind: b.kind, .expired, now: now)
        } else {
            self.emit(.event(.expired(b.id)))
        }
        return true
    }

    /// A directed bundle handed back to us with no hop left, after we had passed it on: the loop of routes it went
    /// round ends here. Acknowledged (settled: its sender lets its copy go), so given up on and reported: the log and
    /// the feed (`gave-up`), `relay status` (out of hops), and its origin gets a failure notice (reason 5, out of
    /// hops, SPEC 6.8). Returns whether it is settled (false: not recorded, a full disk; not
    /// acknowledged, so its sender keeps it).
    func giveUpHopLimit(_ b: CourierBundle, from: NodeID, link: String, now: Double) -> Bool {
        let why = "out of hops: handed back to this relay with hop limit 0 after it had passed it on (a loop of routes)"
        guard self.storing("record a bundle given up on", link: link, {
            try self.store.gaveUpHopLimit(b, reason: why, from: from.short.description, now: Int64(now))
        }) != nil else { return false }
        self.emit(.event(.gaveUp(b.id, reason: why)))
        self.notifyFailure(b.id, kind: b.kind, .outOfHops, now: now)
        return true
    }

    enum Acceptance: Equatable {
        /// Delivered here and not stored (a directed bundle for this node: custody ends with us).
        case delivered
        /// Stored to pass on (and delivered here too when `delivered`).
        case stored(delivered: Bool)
        case duplicate
        /// For this node, not readable yet (its origin's keys are unknown): kept until they arrive, keys asked for.
        case waiting(String)
        /// Given up on (unreadable with the keys known, refused for lack of room): reported.
        case failed(String)
        /// Not written to the store (a full disk, a database error): reported; a link does not acknowledge it.
        case notStored(String)
    }

    /// A trusted bundle this node has not seen, from a link or from an archive: the receipts it carries, delivery
    /// if it is for this node, storage (custody for a directed bundle) to pass it on otherwise.
    /// `again`: seen here before and handed back to us (`handleBundleBytes`): stored unless still held.
    func accept(_ b: CourierBundle, from: ShortID?, source: String, now: Double, again: Bool = false) -> Acceptance {
        let proof = self.judge(b)
        // Signed by an origin whose keys are not known here: what this node would deliver or flood on is kept unread
        // (not delivered as proven, not passed on, not dropped) and the keys are asked for (9.1 rule 6); a directed
        // bundle for another node is carried on (its destination checks it).
        var passingThrough = false
        if case .node = b.destination, !self.isForMe(b) { passingThrough = true }
        if proof == .keysUnknown, !passingThrough {
            return self.holdForKeys(b, source: source, now: now)
        }
        // Only a receipt its origin signature proves releases anything (a forged one would delete queued messages).
        if b.kind == .receipt, proof == .proven { self.handleReceipt(b, now: now) }
        // Identity bundles teach every node they pass (relays too) the origin's keys; a forged one goes no further.
        if b.kind == .identity, let why = self.takeIdentity(b, now: now) {
            self.reject(why)
            return .failed(why)
        }
        if b.kind == .dictionary, !passingThrough, let why = self.takeDictionary(b, proof: proof, now: now) {
            // Refused (the feed and `relay status` count it) and not passed on: no relay uses a dictionary it cannot check.
            self.reject(why)
            self.refuse(b, why: why, from: source, now: now)
            return .failed(why)
        }
        let forMe = self.isForMe(b)
        if case .node = b.destination, forMe {
            // For us: custody ends here. Read, it goes to the inbox and the receipt travels back to the origin;
            // unreadable for want of the origin's keys, it is kept (no receipt) until they arrive.
            self.noteDirected(b.id)
            return self.readDirected(b, source: source, now: now)
        }
        do {
            let directed: Bool
            if case .node = b.destination { directed = true } else { directed = false }
            let (results, evicted) = try self.store.insertReporting([b], now: Int64(now), local: false, custody: directed, from: source,
                                                                    classes: [self.admittedClass(b, proof: proof)], again: again)
            self.unindexHeld(evicted)
            for e in evicted {
                // The feed has it (and the store's log); a directed bundle in our custody is given up on: tell its origin.
                guard case .node = e.destination, e.custody else { continue }
                self.emit(.event(.gaveUp(e.id, reason: "evicted: the queue is full of more urgent bundles")))
                if !e.isLocal { self.notifyFailure(e.id, kind: e.kind, .evicted, now: now) }
            }
            switch results[0] {
            case .stored: self.indexHeld(b)
            case .refused:
                // No room (the feed says so): the hop was acknowledged, so the origin is told.
                let why = "refused: our queue is full"
                self.emit(.event(.gaveUp(b.id, reason: why)))
                if directed { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
                return .failed(why)
            case .duplicate, .expired: return .duplicate
            }
        } catch {
            self.rejectStorage("cannot store \(b.id), not acknowledged (kept by its sender): \(error)", error)
            return .notStored("cannot store: \(error)")
        }
        if let from { self.emit(.event(.bundleStored(b.id, from: from))) }
        guard forMe else { return .stored(delivered: false) }
        var delivered = false
        do {
            try self.deliverLocally(b, now: now)
            delivered = true
        } catch let e as StoreError {
            // A full inbox (recorded in the feed and counted): the flood still goes on to the others.
            self.rejectStorage("\(b.id) stored and passed on, but not put in the inbox: \(e)", e)
        } catch WireError.unknownDictionary(let id) {
            // Compressed with a dictionary we lack: passed on, and kept for our inbox until the dictionary arrives.
            _ = self.keepForDictionary(b, id: id, source: source, now: now)
        } catch {
            // Not readable here (end-to-end encrypted to a group): carried on unread.
        }
        if b.kind == .alert, !self.queueReceiptPart(for: b.id, drill: DrillMark.isDrill(b), now: now) {
            self.queueReceipt(for: b.id, now: now, within: self.config.minFloodDelay + self.rng.uniform(0, 1) * self.maxAirtime * self.config.alertReceiptAirtimes)
        }
        return .stored(delivered: delivered)
    }

    typealias Reading = BundleJudge.Reading

    /// The content of a bundle for this node: decrypted with each candidate origin key (2.3) and decompressed.
    func read(_ b: CourierBundle) -> Reading { self.bundleJudge.read(b, compressor: self.compressor) }

    /// A directed bundle for this node: delivered and receipted, kept unread until its origin's keys arrive, or
    /// given up on (reported in the feed and to its origin).
    func readDirected(_ b: CourierBundle, source: String?, now: Double) -> Acceptance {
        if b.kind == .identity {
            // Read already (`takeIdentity`); nothing for the inbox, no receipt.
            do { try self.store.markSeen(b) } catch { self.rejectStorage("cannot record \(b.id): \(error)", error) }
            return .delivered
        }
        switch self.read(b) {
        case .content(let content):
            do { try self.deliver(b, content: content, now: now) } catch .inboxFull(let limit) {
                // Refused (the feed, the log and `relay status` say so) and the origin is told: nothing unread is
                // dropped to make room, and the sender does not retry into a full inbox.
                let why = "refused: the inbox is full of unread messages (\(limit) bytes, inbox-mb)"
                do { try self.store.markSeen(b) } catch { self.rejectStorage("cannot record \(b.id): \(error)", error) }
                self.emit(.event(.gaveUp(b.id, reason: why)))
                self.notifyFailure(b.id, kind: b.kind, .refused, now: now)
                return .failed(why)
            } catch {
                self.rejectStorage("cannot deliver \(b.id), not acknowledged (kept by its sender): \(error)", error)
                return .notStored("cannot deliver: \(error)")
            }
            if b.kind == .failure { self.handleFailure(b, content: content, now: now) }
            if b.kind != .receipt && b.kind != .failure { self.queueReceipt(for: b.id, now: now) }
            return .delivered
        case .needKeys:
            let why = "end-to-end encrypted by \(b.origin), whose keys are not known here yet: kept until they arrive (asked for them)"
            return self.keepUntilKeys(b, why: why, source: source, now: now)
        case .needDictionary(let id):
            return self.keepForDictionary(b, id: id, source: source, now: now)
        case .unreadable(let why):
            do { try self.store.gaveUp(b, reason: "unreadable: \(why)", from: source, now: Int64(now)) } catch {
                self.rejectStorage("cannot record \(b.id): \(error)", error)
            }
            self.emit(.event(.gaveUp(b.id, reason: "unreadable: \(why)")))
            self.notifyFailure(b.id, kind: b.kind, .unreadable, now: now)
            return .failed(why)
        }
    }

    /// Puts a bundle for this node in the inbox (unless a critical extension we do not know forbids it), reading it
    /// first. Identity bundles never go to the inbox.
    func deliverLocally(_ b: CourierBundle, now: Double) throws {
        guard b.kind != .identity else { return }
        switch self.read(b) {
        case .content(let content): try self.deliver(b, content: content, now: now)
        case .needKeys: throw WireError.decryptionFailed
        case .needDictionary(let id): throw WireError.unknownDictionary(id)
        case .unreadable: throw WireError.decryptionFailed
        }
    }

    func deliver(_ b: CourierBundle, content: [UInt8], now: Double) throws(StoreError) {
        if b.extensions.contains(where: { $0.isCritical }) || b.kind == .identity { return }
        let proven = self.judge(b) == .proven
        if try self.store.deliver(b, content: content, now: Int64(now), proven: proven), let m = try self.store.inboxMessage(b.id) {
            self.emit(.delivered(m))
            if b.kind == .aidOffer, let ref = b.reference, ref.origin == self.me.short {
                self.emit(.event(.offerForRequest(request: ref, offer: b.id)))
            }
        }
    }

    /// Removes what expired; reports what was given up on (directed bundles in our custody, bundles kept unread)
    /// and tells their origins.
    func expireBundles(now: Double) {
        let expired: [ExpiredBundle]
        do { expired = try self.store.expireBundles(now: Int64(now)) } catch {
            self.rejectStorage("cannot expire bundles: \(error)", error)
            return
        }
        self.unindexHeld(expired)
        for e in expired {
            if e.unread {
                self.emit(.event(.gaveUp(e.id, reason: "unreadable: its lifetime passed and what it needs never arrived (the keys of its origin \(e.id.origin), or the dictionary it names)")))
                if case .node = e.destination { self.notifyFailure(e.id, kind: e.kind, .unreadable, now: now) }
            } else if case .node(let d) = e.destination, e.custody {
                self.emit(.event(.gaveUp(e.id, reason: "expired: its lifetime passed before it reached \(d)")))
                if !e.isLocal { self.notifyFailure(e.id, kind: e.kind, .expired, now: now) }
            } else {
                self.emit(.event(.expired(e.id)))
            }
        }
    }
}

extension Node {
    /// Whether a bundle goes to one node (custody, routes) rather than to everyone or a group (a flood).
    static func isDirectedBundle(_ b: CourierBundle) -> Bool {
        if case .node = b.destination { return true }
        return false
    }
}
