import CourierMedium
import CourierWire
import Foundation

/// Neighbours, announces and hellos: who is in range on which link (`neighbours`), announces being assembled
/// (`partialAnnounces`), and the bounded answers to hellos (SPEC 9 rule 7).
extension Node {
    struct Neighbour {
        var id: NodeID
        var name: String?
        var lastHeard: [String: Double] = [:]
        var srtt: Double? = nil
        var rttvar: Double = 0
        var sentFragments = 0
        var ackedFragments = 0
        /// Stopped acknowledging (gone away without a word): not used as a next hop until heard again.
        var unresponsiveSince: Double? = nil
        /// The capabilities byte of its last announce (0 until heard): bit 3 says it reads compact bundle records.
        var capabilities: UInt8 = 0
        /// The neighbours it hears, from the neighbour list sent with its last announce (SPEC 5.13, 8.5 rule 5); nil until
        /// one is heard (an older node sends none: nothing is known of its neighbours).
        var hears: Set<ShortID>? = nil
        /// The signal its last packet was heard with, when the modem reported one (RSSI dBm, SNR dB).
        var rssi: Double? = nil
        var snr: Double? = nil
        /// Back after silence (`neighbourReturned`): our transfers with records in flight to it on that link are
        /// capped at this many (a slow start, as TCP's restart after idle, RFC 5681 4.1), one more for each ack that
        /// shows progress, back to one at a time-out; nil once it reaches the window (each transfer's own window is
        /// then the only limit) or `Tuning.restartLasts` after the return.
        var restartWindow: Int? = nil
        /// When the slow start ends at the latest (`Tuning.restartLasts` after the return).
        var restartEnds: Double = -.infinity
        /// In its slow start, heard sending to or acknowledging a node we do not hear: our data for it waits until
        /// then (`holdForHiddenSender`).
        var busyWithHiddenUntil: Double = -.infinity
        /// Bundles whose transfers to it were given up with it (`unresponsiveSince`): while one is still held here, the
        /// link probes for it (`healProbesDue`). Emptied when it is heard.
        var lostWith: Set<BundleID> = []
        /// Whom it was heard talking with (its acks' targets, its data's next hops), by short id, with when
        /// (`noteTalksWith`): after a silence, who may hold a backlog for it.
        var talksWith: [ShortID: Double] = [:]
        /// Back after silence: the turns we take with the relays around it we do not hear (`startTurns`).
        var turns: Turns? = nil
    }

    struct PartialAnnounce {
        var signing: [UInt8]?
        var agreement: [UInt8]?
        var name: String?
    }

    /// Neighbours heard within the timeout, for status displays, with the signal of the last packet heard from each
    /// when its modem reported one.
    public func neighbourList(now: Double) -> [(id: NodeID, name: String?, link: String, lastHeard: Double, rssi: Double?, snr: Double?)] {
        self.neighbours.values.compactMap { n in
            guard let (l, t) = n.lastHeard.max(by: { $0.value < $1.value }) else { return nil }
            return (n.id, n.name, l, t, n.rssi, n.snr)
        }.sorted { $0.lastHeard > $1.lastHeard }
    }

    /// Hellos answered per neighbour: at most one announce in `helloAnswerInterval` seconds for each sender.
    public static let helloAnswerInterval: Double = 120

    /// Hellos answered per link: a bucket of this many announces ...
    public static let helloAnswerBurst: Double = 3

    /// ... refilled by one every this many seconds (at most 60 hello answers an hour on a link, whoever says hello).
    public static let helloAnswerRefill: Double = 60

    /// A hello (the first announce after a start) means the sender may have forgotten us: announce back, even if we
    /// announced a moment ago (nodes started together: the sender may have missed it), so its packets and ours can
    /// be read. Hellos arriving together get one announce. Bounded (SPEC 9, rule 7), since a hello can be replayed: once
    /// per `helloAnswerInterval` per sender (more from the same sender are counted and ignored: it heard our answer
    /// or will repeat its hello), and per link by a bucket of `helloAnswerBurst` refilled every
    /// `helloAnswerRefill` s (a hello from a new sender while it is empty waits for it, never lost).
    func answerHello(from sender: ShortID, on link: String, now: Double) {
        guard var l = self.links[link] else { return }
        if let last = l.helloAnswered[sender], now - last < Self.helloAnswerInterval {
            self.stats.hellosLimited += 1
            return
        }
        if l.helloAnswered.count >= Tuning.maxHelloAnswered { l.helloAnswered = l.helloAnswered.filter { now - $0.value < Self.helloAnswerInterval } }
        l.helloAnswered[sender] = now
        if l.announceDue || l.helloAnswerWaiting || l.helloAnswerAt.isFinite {
            // One announce answers every hello heard before it goes out.
            self.links[link] = l
            return
        }
        Self.refillHelloTokens(&l, now: now)
        if l.helloTokens >= 1 {
            l.helloTokens -= 1
            // Where heal probes run (SPEC 9 rule 8), not at once: the neighbours that heard the same hello may not
            // hear each other (a probe's two sides), and answering together they collided at its sender
            // (`Tuning.helloAnswerDelay`). Elsewhere at once, as before (on regional-200 at 1% the delay slowed the
            // first alert: 99% of relays after 227.7 s against 138.8 s).
            if self.healProbeInterval(l.info) != nil {
                l.helloAnswerAt = now + self.probeRNG.uniform(Tuning.helloAnswerDelay.min, Tuning.helloAnswerDelay.max)
            } else {
                l.announceDue = true
            }
            self.stats.helloAnswers += 1
        } else {
            l.helloAnswerWaiting = true
            self.stats.hellosLimited += 1
        }
        self.links[link] = l
    }

    static func refillHelloTokens(_ l: inout LinkState, now: Double) {
        l.helloTokens = min(Self.helloAnswerBurst, l.helloTokens + max(0, now - l.helloRefilled) / Self.helloAnswerRefill)
        l.helloRefilled = now
    }

    /// When the hello answer waiting for a link's bucket may go.
    static func helloAnswerTime(_ l: LinkState) -> Double {
        guard l.helloAnswerWaiting else { return .infinity }
        return l.helloRefilled + max(0, 1 - l.helloTokens) * Self.helloAnswerRefill
    }

    /// Learns keys from an announce; returns the node id once both keys are known.
    func handleAnnounce(_ a: AnnounceRecord, short: ShortID) -> NodeID? {
        var p = self.partialAnnounces[short] ?? PartialAnnounce()
        if let s = a.signingKey { p.signing = s }
        if let g = a.agreementKey { p.agreement = g }
        if let n = a.name { p.name = n }
        self.partialAnnounces[short] = p
        guard let s = p.signing, let g = p.agreement else { return nil }
        let keys: NodePublicKeys
        // Keys already known under this short id are taken as they are (their id hashed once, when first learnt:
        // hashing them again at each announce heard was 1% of a 1,000-relay drill); new keys are checked and hashed.
        if let known = self.knownKeys(short, signing: s, agreement: g) {
            keys = known
        } else {
            do { keys = try NodePublicKeys(signing: s, agreement: g) } catch {
                // Forgotten, so a later announce with good keys is taken.
                self.partialAnnounces[short] = nil
                self.reject("announce from \(short) with keys that are not valid: \(error)")
                return nil
            }
        }
        guard keys.nodeID.short == short else {
            self.reject("announce whose keys do not match its short id \(short)")
            return nil
        }
        let id = keys.nodeID
        if id != self.me && id.short == self.me.short {
            self.reject("another node (\(id)) has our short id \(short): restart one of them with a new identity")
        }
        // A node not on the federation's membership list is known for packets all the same; its bundles are refused.
        self.learn(keys)
        if let name = p.name { self.neighbours[id, default: Neighbour(id: id)].name = name }
        return id
    }

    /// The keys known under `short` with these two halves, if any.
    func knownKeys(_ short: ShortID, signing: [UInt8], agreement: [UInt8]) -> NodePublicKeys? {
        guard let ids = self.directory[short] else { return nil }
        for id in ids {
            if let k = self.keys[id], k.signing == signing, k.agreement == agreement { return k }
        }
        return nil
    }

    /// Our neighbour list (SPEC 5.13), sent with our announces on `link`, and with the relays named (`relays`) with
    /// the floods we send there: the fresh neighbours heard there, most recently heard first when they do not all fit
    /// (`fits`: the room left in the packet; the relays always go). Nil when there is none to send or no room.
    func neighbourListRecord(link: String, now: Double, relays: Bool = false, fits: (Record) -> Bool) -> Record? {
        guard self.sendsNeighbourLists(on: link) else { return nil }
        let named = relays && self.config.floodRelays ? self.floodRelays(link: link, now: now) : nil
        let fresh = self.freshNeighbours(now: now).filter { $0.link == link }.map { n in
            (n.id.short, self.neighbours[n.id]?.lastHeard.values.max() ?? 0)
        }
        var ids = fresh.sorted { ($0.1, $0.0) > ($1.1, $1.0) }.prefix(NeighbourListRecord.maxIDs).map(\.0)
        while !ids.isEmpty {
            let r = Record.neighbours(NeighbourListRecord(ids, relays: named))
            if fits(r) { return r }
            ids.removeLast(max(1, ids.count / 4))
        }
        if let named, !named.isEmpty, case let r = Record.neighbours(NeighbourListRecord([], relays: named)), fits(r) { return r }
        return nil
    }

    /// Whether we send our neighbour list (and name relays) on a link (SPEC 5.13, 8.5 rule 5): with
    /// `NodeConfig.neighbourLists`, where the link's duty-cycle allowance does not stretch announces (no duty cycle, or
    /// 10% at SF9; `allowanceStretch`, as heal probes and copies taken back). Where it does (1% at SF9) the channel
    /// cannot spare the list's 4 bytes a neighbour in every flood's packet (80 with 20 neighbours), and a third of the
    /// receptions collide there, so the relays a copy names are often the ones that lost it: with lists the first
    /// alert of `relay drill simulate scenarios/regional-200.json --until 1000` (release) reached 99% of the relays
    /// after 217.2 s instead of 109.0 s (seed 201: 369.4 s instead of 124.5 s), its announces taking 41% (49%) more
    /// airtime. There the delay by signal chooses who passes a flood on, and no list is sent.
    func sendsNeighbourLists(on link: String) -> Bool {
        guard self.config.neighbourLists, let l = self.links[link] else { return false }
        return Self.allowanceStretch(l.info, interval: self.config.announceInterval) <= 1
    }

    /// Neighbours heard within the timeout on an up link.
    func freshNeighbours(now: Double) -> [(id: NodeID, link: String)] {
        // The fresh ones picked out first, then sorted by id (ids are unique: the same list as all sorted, then picked),
        // compared as two big-endian words (byte by byte, sorting every neighbour at each routing pass was 0.4% of a
        // 1,000-relay drill).
        // (Each neighbour read in place, its two fields that say: a copy of every `Neighbour`, all its tables retained
        // and released, was half of this.)
        // (The up links' timeouts taken once, `LinkFreshness`: each look-up of a link by name copied its whole state,
        // for every link every neighbour was heard on.)
        let links = self.linkFreshness()
        var fresh: [(id: NodeID, link: String)] = []
        var i = self.neighbours.startIndex
        while i != self.neighbours.endIndex {
            let id = self.neighbours.keys[i]
            if id != self.me,
               let l = self.freshLink(unresponsiveSince: self.neighbours.values[i].unresponsiveSince,
                                      lastHeard: self.neighbours.values[i].lastHeard, now: now, links) {
                fresh.append((id, l))
            }
            self.neighbours.formIndex(after: &i)
        }
        fresh.sort { Self.precedes($0.id, $1.id) }
        return fresh
    }

    /// Whether `a`'s bytes come before `b`'s (`lexicographicallyPrecedes`, for two ids of 16 bytes).
    static func precedes(_ a: NodeID, _ b: NodeID) -> Bool {
        a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                let x0 = UInt64(bigEndian: x.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
                let y0 = UInt64(bigEndian: y.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
                if x0 != y0 { return x0 < y0 }
                return UInt64(bigEndian: x.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    < UInt64(bigEndian: y.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        }
    }

    /// The up link a neighbour was heard on most recently, if within the timeout.
    func freshLink(_ id: NodeID, now: Double) -> String? {
        // (Its two fields read in place, not the whole neighbour copied: asked for every destination at each routing pass.)
        guard let i = self.neighbours.index(forKey: id) else { return nil }
        return self.freshLink(unresponsiveSince: self.neighbours.values[i].unresponsiveSince,
                              lastHeard: self.neighbours.values[i].lastHeard, now: now)
    }

    /// `freshLink(id, now:)` with the links' timeouts taken beforehand (`linkFreshness`, unchanged since).
    func freshLink(_ id: NodeID, now: Double, _ links: LinkFreshness) -> String? {
        guard let i = self.neighbours.index(forKey: id) else { return nil }
        return self.freshLink(unresponsiveSince: self.neighbours.values[i].unresponsiveSince,
                              lastHeard: self.neighbours.values[i].lastHeard, now: now, links)
    }

    /// The up links and their neighbour timeouts, now: what `freshLink` asks of each link a neighbour was heard on,
    /// taken once for a pass over many neighbours or destinations (a link's state copied out of `links` by name,
    /// every table it holds retained and released, for each neighbour and link was most of `freshNeighbours`).
    /// Valid while no link goes up or down and no link's properties change.
    func linkFreshness() -> LinkFreshness {
        var f = LinkFreshness()
        for (name, l) in self.links where l.up {
            f.names.append(name)
            f.timeouts.append(self.neighbourTimeout(l.info))
        }
        return f
    }

    /// `freshLink(unresponsiveSince:lastHeard:now:)` with the links' timeouts taken beforehand (`linkFreshness`):
    /// the same answer.
    func freshLink(unresponsiveSince: Double?, lastHeard: [String: Double], now: Double, _ links: LinkFreshness) -> String? {
        self.freshLink(unresponsiveSince: unresponsiveSince, lastHeard: lastHeard, now: now, timeout: links.timeout)
    }

    /// `freshLink` of the neighbour `n`.
    func freshLink(_ n: Neighbour, now: Double) -> String? {
        self.freshLink(unresponsiveSince: n.unresponsiveSince, lastHeard: n.lastHeard, now: now)
    }

    /// `freshLink` of a neighbour with these two fields.
    func freshLink(unresponsiveSince: Double?, lastHeard: [String: Double], now: Double) -> String? {
        self.freshLink(unresponsiveSince: unresponsiveSince, lastHeard: lastHeard, now: now) { name in
            guard let l = self.links[name], l.up else { return nil }
            return self.neighbourTimeout(l.info)
        }
    }

    /// The one body of both `freshLink(unresponsiveSince:lastHeard:now:)`s: `timeout` gives an up link's neighbour
    /// timeout (nil: the link is not up).
    private func freshLink(unresponsiveSince: Double?, lastHeard: [String: Double], now: Double,
                           timeout: (String) -> Double?) -> String? {
        guard unresponsiveSince.map({ now - $0 >= Self.unresponsiveProbe }) ?? true else { return nil }
        // The most recent fresh one, in one pass (no filtered copy of the dictionary: this runs for every
        // neighbour at every routing decision).
        var best: (link: String, at: Double)? = nil
        for (name, at) in lastHeard {
            guard let t = timeout(name), now - at < t else { continue }
            if best.map({ $0.at < at }) ?? true { best = (name, at) }
        }
        return best?.link
    }
}

extension Node {
    /// A packet heard from a neighbour: it is marked heard on the link (its capabilities and name from the announce);
    /// a contact (heard again after the neighbour timeout) may bring routes back and calls for our announce.
    /// A neighbour back after silence (given up on, or heard again after `silenceBeforeGivingUp`: a partition healed
    /// or its relay switched on again, long before the neighbour timeout) gets what waits for it now: the held bundles
    /// are routed again at once, and its transfers here go after a short random delay with their backoff forgotten
    /// (`neighbourReturned`).
    /// Returns when it was heard before on this link, and whether it returned: a contact or a neighbour given up on,
    /// to whom our summary may be news (`handle` sends it after the packet's records). What a contact alone calls for
    /// (the `neighbourHeard` event, our announce, a reroute) is done here, so the caller needs no separate flag.
    func heard(_ from: NodeID, on link: String, packet: Packet, now: Double) -> (previous: Double?, returned: Bool) {
        // The neighbour read and changed in place: a copy taken out and put back (at every packet heard) shared its
        // tables with the one left in the dictionary, so the first change copied `lastHeard` whole.
        var previous: Double? = nil
        var givenUp = false
        func look(_ n: inout Neighbour) {
            previous = n.lastHeard[link]
            givenUp = n.unresponsiveSince != nil
        }
        // (Through the dictionary's modify accessor: its getter copies the whole neighbour out.)
        if let i = self.neighbours.index(forKey: from) { look(&self.neighbours.values[i]) }
        let wasAway = (previous.map { p in now - p > (self.links[link].map { self.neighbourTimeout($0.info) } ?? self.config.neighbourTimeout) } ?? true)
        // A lost neighbour our heal probes asked for (SPEC 9 rule 8): its answer ends the silence, however short.
        let probed = self.links[link]?.probedFor.remove(from) != nil
        let wasSilent = givenUp || probed || previous.map { now - $0 > self.silenceBeforeReturn(link: self.links[link]) } ?? false
        func update(_ n: inout Neighbour) -> String? {
            n.lastHeard[link] = now
            n.unresponsiveSince = nil
            n.lostWith = []
            for case .announce(let a) in packet.records { n.capabilities = a.capabilities }
            for case .neighbours(let l) in packet.records where self.config.neighbourLists { n.hears = Set(l.ids) }
            if n.name == nil, let k = self.partialAnnounces[from.short]?.name { n.name = k }
            return n.name
        }
        let name = update(&self.neighbours[from, default: Neighbour(id: from)])
        let contact = wasAway && from != self.me
        if (contact || wasSilent) && from != self.me {
            self.rerouteDue = true
            self.neighbourReturned(from, link: link, now: now, givenUp: givenUp)
        }
        // Our summary goes to a contact, or to a neighbour we had given up on (it was away: a partition, a relay
        // switched off); not to every neighbour merely quiet for a few minutes (in a quiet mesh that is most packets:
        // a summary for each took the triangle drill from 85 summary packets to 227).
        let returned = (contact || givenUp) && from != self.me
        if contact {
            self.rerouteDue = true
            self.emit(.event(.neighbourHeard(from, name: name, link: link)))
            // A contact: tell them who we are if they may not know.
            if var l = self.links[link] {
                if self.contactAnnounceWanted(l, now: now) { l.announceDue = true }
                self.links[link] = l
            }
        }
        return (previous, returned)
    }
}

extension Node {
    /// Keeps a neighbour's keys, name and when it was heard in the store (`relay peers`; a restart knows them before
    /// the next announce), when its announce says something new: keys not kept since the start, another name, or
    /// `Tuning.peerHeardKeptEvery` since it was last kept.
    func keepPeer(_ k: NodePublicKeys, link: String, now: Double) {
        let name = self.partialAnnounces[k.nodeID.short]?.name
        guard self.peersKept.isNew(k.nodeID, name: name, now: now) else { return }
        if self.storing("remember a neighbour's keys", link: link, { try self.store.rememberPeer(k, name: name, now: Int64(now)) }) != nil {
            self.peersKept.kept(k.nodeID, name: name, now: now)
        }
    }
}

/// The neighbours' keys kept in the store by this engine (`keepPeer`), so an announce that says nothing new is not
/// written again: a relay hears its neighbours' announces many times an hour. No other part uses it.
struct PeersKept {
    /// For each neighbour: the name kept with its keys, and when.
    var kept: [NodeID: (name: String?, at: Double)] = [:]

    func isNew(_ id: NodeID, name: String?, now: Double) -> Bool {
        guard let k = self.kept[id] else { return true }
        return (name != nil && name != k.name) || now - k.at >= Tuning.peerHeardKeptEvery
    }

    mutating func kept(_ id: NodeID, name: String?, now: Double) {
        let previous = self.kept[id]?.name
        self.kept[id] = (name ?? previous, now)
    }

    /// Forgets what would be kept again anyway (kept `Tuning.peerHeardKeptEvery` ago or more).
    mutating func prune(now: Double) {
        self.kept = self.kept.filter { now - $0.value.at < Tuning.peerHeardKeptEvery }
    }
}

extension Node {
    /// How long a neighbour must have said nothing on a link for its next packet to count as a return
    /// (`neighbourReturned`): the silence before giving up on it, and at least one announce interval as stretched by
    /// the channel's allowance (`allowanceStretch`, the same for every node on the channel). On a 1% LoRa channel
    /// neighbours announce about every 21 minutes and are often silent for longer than the two minutes of
    /// `silenceBeforeGivingUp`: taken as returns there, every packet heard reset the backoff of the transfers to its
    /// sender and rerouted the held bundles, and the retransmissions that followed on the crowded channel spent the
    /// hour's allowance (regional-200: its first alert reached 82 of 199 relays within 10 minutes against 193).
    func silenceBeforeReturn(link: LinkState?) -> Double {
        let interval = link.map { self.config.announceInterval * Self.allowanceStretch($0.info, interval: self.config.announceInterval) }
        return max(self.silenceBeforeGivingUp(link: link), interval ?? 0)
    }
}

extension Node {
    /// Turns for the relays around a returned one (hidden terminals). A neighbour in its slow start after a return
    /// (`restartWindow`) was waited for by every relay in range of it, and those on its other side do not hear us:
    /// listen-before-talk cannot keep us apart, and whatever we send it while one of them does is lost at it with
    /// theirs (in the valley drill v05 and v07 sent their hour's backlog to v06 together, nearly every packet
    /// colliding there, and each packet v06 sent set both off again at once). So, as 802.11's virtual carrier sense
    /// but from the records its packets carry anyway: its data for a node we do not hear (whose ack follows) or its
    /// ack to such a node (whose next packet follows) holds our data for it for `hiddenTurn`, the node we do not hear
    /// keeping its turn while it has something to send. Only towards a neighbour in its slow start: elsewhere the
    /// holds delayed rebroadcasts and direct traffic on crowded channels (branch wip-heal-nav).
    func holdForHiddenSender(_ packet: Packet, from: NodeID, link: String, now: Double) {
        guard self.config.restartSlowly, self.restartWindow(from, now: now) != nil,
              let l = self.links[link], l.info.properties.duplex == .half else { return }
        let busy = packet.records.contains { r in
            switch r {
            case .ack(let a): return a.target != self.me.short && !self.hearsDirectly(a.target, on: link, now: now)
            case .bundle(let b): return b.nextHop.map { $0 != self.me.short && !self.hearsDirectly($0, on: link, now: now) } ?? false
            case .fragment(let f): return f.nextHop.map { $0 != self.me.short && !self.hearsDirectly($0, on: link, now: now) } ?? false
            default: return false
            }
        }
        guard busy else { return }
        self.neighbours[from]?.busyWithHiddenUntil = now + self.hiddenTurn(l.info)
    }

    /// Whether we hear a node ourselves on a link (heard within the neighbour timeout), by its short id.
    func hearsDirectly(_ short: ShortID, on link: String, now: Double) -> Bool {
        guard let l = self.links[link] else { return false }
        let timeout = self.neighbourTimeout(l.info)
        return (self.directory[short] ?? []).contains { id in
            self.neighbours[id]?.lastHeard[link].map { now - $0 < timeout } ?? false
        }
    }

    /// How long our data for a neighbour busy with a hidden node waits: that node's ack or next packet (a full
    /// packet's airtime after the longest ack delay, a partial transfer's 4) and the answer to it.
    func hiddenTurn(_ info: LinkInfo) -> Double {
        self.config.ackDelay * Tuning.hiddenTurnAckDelays + 2 * info.properties.airtime(bytes: info.properties.mtu)
    }
}

extension Node {
    /// Heal probes (SPEC 9 rule 8), contact discovery with its airtime priced. A relay that holds bundles waiting for
    /// a neighbour it lost (given up on with them, or silent while our transfers to it time out) does not wait for the
    /// neighbour to speak, a backed-off retry, the 5-minute probe of one given up on or the next announce (15
    /// minutes or more) to learn that a partition healed: every `healProbeInterval` (jittered) while it holds them, its
    /// announce goes with the hello bit (SPEC 9 rules 6, 7: every neighbour that hears it announces back, once per 2
    /// minutes per sender). The lost neighbour's answer is the heal found: what waited for it goes at once
    /// (`heard`, `neighbourReturned`). The neighbours that never left answer too, within rule 7's bounds.
    func healProbesDue(_ l: inout LinkState, now: Double) {
        guard now >= l.nextHealProbe else { return }
        guard let every = self.healProbeInterval(l.info) else {
            // None on this link; looked at again with housekeeping (the operator may change its duty cycle).
            l.healProbing = false
            l.nextHealProbe = now + Tuning.housekeepingInterval
            return
        }
        let lost = self.lostNeighbours(on: l.info.name, silentFor: every, now: now)
        l.healProbing = !lost.isEmpty
        guard !lost.isEmpty else {
            l.nextHealProbe = now + every
            return
        }
        l.helloSent = false
        l.announceDue = true
        l.probedFor.formUnion(lost)
        self.stats.healProbes += 1
        // Jittered: relays cut off together (the partition's one side, hidden from each other) drift apart.
        l.nextHealProbe = now + every * self.probeRNG.uniform(1 - Tuning.healProbeJitter, 1 + Tuning.healProbeJitter)
    }

    /// Seconds between heal probes on a link (`NodeConfig.healProbes` on): an announce's airtime (all its parts at a small MTU) over
    /// `Tuning.healProbeShare` of the duty cycle's allowance, at least `Tuning.healProbeLeastInterval`. Nil, no heal
    /// probes: on a link without a duty cycle (no allowance to price them by), where the allowance stretches announces
    /// (SPEC 9 rule 6 (a) above 1: at 1% on SF9 the channel cannot spare them; as SPEC 5.14 rule 7), or where the
    /// interval would not be sooner than `unresponsiveProbe` (the probe of a neighbour given up on comes first anyway).
    func healProbeInterval(_ info: LinkInfo) -> Double? {
        guard self.config.healProbes, let d = info.dutyCycle, d > 0, Self.allowanceStretch(info, interval: self.config.announceInterval) <= 1 else { return nil }
        let k = self.config.identity.publicKeys
        let announce = AnnounceRecord(capabilities: 0xFF, signingKey: k.signing, agreementKey: k.agreement, name: self.config.name)
        let airtime = AnnounceRecord.parts(announce, mtu: info.properties.mtu).reduce(0.0) { sum, part in
            sum + info.properties.airtime(bytes: Packet.announceOverhead + Record.announce(part).encodedSize(last: true))
        }
        let every = max(Tuning.healProbeLeastInterval, airtime / (Tuning.healProbeShare * d))
        return every < Self.unresponsiveProbe ? every : nil
    }

    /// Neighbours lost on a link for which we hold bundles: silent there for `silentFor` or more (and not longer than
    /// the neighbour timeout: then it is no neighbour), and either given up on with bundles still held here
    /// (`lostWith`) or owed a transfer whose records timed out.
    func lostNeighbours(on link: String, silentFor: Double, now: Double) -> Set<NodeID> {
        guard let l = self.links[link] else { return [] }
        let timeout = self.neighbourTimeout(l.info)
        func silent(_ id: NodeID) -> Bool {
            guard id != self.me, let heard = self.neighbours[id]?.lastHeard[link] else { return false }
            return now - heard >= silentFor && now - heard < timeout
        }
        var lost: Set<NodeID> = []
        for (id, n) in self.neighbours where n.unresponsiveSince != nil && !n.lostWith.isEmpty {
            let held = n.lostWith.filter { self.heldIndex.contains($0) }
            if held.count != n.lostWith.count { self.neighbours[id]?.lostWith = held }
            if !held.isEmpty && silent(id) { lost.insert(id) }
        }
        for t in self.transfers.inFlight(on: link) where t.attempts > 0 {
            if let target = t.key.target, silent(target) { lost.insert(target) }
        }
        return lost
    }
}

/// The up links and their neighbour timeouts, taken at one moment (`Node.linkFreshness`): a node has a link or
/// two, so a name is found by comparing it with each.
struct LinkFreshness {
    var names: [String] = []
    var timeouts: [Double] = []

    /// The neighbour timeout of up link `name`; nil when it is not an up link.
    func timeout(_ name: String) -> Double? {
        for i in self.names.indices where self.names[i] == name { return self.timeouts[i] }
        return nil
    }
}
