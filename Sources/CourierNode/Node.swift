import CourierMedium
import struct CourierStore.Transmission
import typealias CourierStore.HeldBundle
import enum CourierStore.StoreError
import CourierWire
import Foundation

/// The relay engine, a state machine without network or clock I/O: inputs (`receive` a packet, `tick` with the time,
/// `submit`/`adopt` a bundle, `linkUp`/`linkDown`, `channelBusy`) in; outputs (`NodeOutput`: packets to send,
/// deliveries, events) out, and `nextWakeup` says when it next wants a tick. The runtime drives it with real links
/// and the real clock; the simulator with lossy in-memory links and a virtual clock. It keeps durable state in the
/// store (queue, custody, transmission state, inbox, reassembly, counters) and soft state in memory, which it
/// rebuilds after a restart.
///
/// This file is the facade: the state, the inputs and their order of work. Each concern lives in a part of its own
/// file (ARCHITECTURE.md lists them): Links, ReplayGuard, Neighbours, KeyBook, OriginJudgement, Intake, Flooding,
/// Summaries, Routing, Receipts, Transfers, Acks, Airtime, Composer, Memory, BundleMaker.
public final class Node {
    public internal(set) var config: NodeConfig
    public let store: any NodeStorage
    public var me: NodeID { self.config.identity.nodeID }

    var neighbours: [NodeID: Neighbour] = [:]
    /// Nodes' keys (KeyBook.swift), which every part reading a bundle or a packet looks up.
    var keyBook = KeyBook()
    /// The trust list (`config.trust`) indexed for judging bundles (OriginJudgement.swift); set with it.
    var membership: Membership?
    var keys: [NodeID: NodePublicKeys] { self.keyBook.keys }
    var directory: [ShortID: [NodeID]] { self.keyBook.directory }
    var partialAnnounces: [ShortID: PartialAnnounce] = [:]
    var links: [String: LinkState] = [:]
    var linkOrder: [String] = []
    /// Transfers under way, indexed by due time, bundle and number (TransferTable.swift).
    var transfers = TransferTable()
    /// The transfers part's numbering (Transfers.swift).
    var transferNumbering = TransferNumbering()
    /// The replay guard's packet-counter windows (ReplayGuard.swift).
    var replayGuard = ReplayGuardState()
    /// Neighbours' keys kept in the store by this engine, and when (Neighbours.swift).
    var peersKept = PeersKept()
    var floods: [BundleID: PendingFlood] = [:]
    /// Floods stored with no hop left (SPEC 6.10): a later copy with hops left gives them its hop limit
    /// (`handleBundleBytes`); only these are looked up in the store when a copy is heard again.
    var spentFloods: Set<BundleID> = []
    /// While a packet's records are read: whether it asks us to pass on the floods it carries (SPEC 8.5 rule 5).
    var floodRelayAsked = true
    /// While a packet's records are read: its signal-to-noise ratio as the radio reported it (dB), nil when unknown
    /// (Flooding.swift: a flood heard weakly is passed on sooner).
    var packetSNR: Double? = nil
    /// Flooded transfers heard in part: when to ask for the rest with our summary, if still incomplete (Flooding.swift).
    var floodGaps: [Reassembler.Key: FloodGap] = [:]
    var floodGapsDue: Double = .infinity
    /// Summary pages heard from each neighbour (Summaries.swift).
    var heardSummaries = HeardSummaries()
    /// Neighbours known to hold each bundle: we heard them send it, send or pass on a receipt for it (or another
    /// node pass on their receipt), list it in a summary, or acknowledge it. Kept while we hold the bundle (ten
    /// minutes for one we do not: its copy may still reach us).
    var holders: [BundleID: Set<NodeID>] = [:]
    /// When each entry of `holders` last grew.
    var heardOf: [BundleID: Double] = [:]
    /// Neighbours in range when we sent a summary listing a bundle we hold (had they lacked it, they would have
    /// asked): a contact with them does not call for our summary again.
    /// (Kept as the place in the held index up to which each neighbour was told, `toldUpTo`: HeldIndex.swift.)
    var toldUpTo: [NodeID: Int] = [:]
    /// Bundles (by digest) a neighbour's summary or a receipt showed exist and we lack: we ask with our summary.
    /// After a receipt, up to five times (with our announce, in case the holder cannot read us) while we still lack
    /// it; after a summary, once (it also lists directed bundles that will not come to us). Not again for an hour.
    var pulls: [UInt32: Pull] = [:]
    /// For bundles we lack: the nodes whose receipts for them we heard passed on.
    var receiptOrigins: [BundleID: Set<ShortID>] = [:]
    /// Digests of directed bundles we made, passed on or had delivered here: left out of the "seen" part of our
    /// summaries (custody and acks move those; a summary listing them only makes neighbours that never saw them
    /// answer with theirs).
    var directedSeen: Set<UInt32> = []
    /// Flooding's memory of directed bundles it could not route (Flooding.swift).
    var unroutable = UnroutableMemory()
    var receipts: [ShortID: (ids: [BundleID], due: Double)] = [:]
    /// Receipt parts carried and taken (AggregatedReceipts.swift).
    var receiptParts = ReceiptPartsState()
    var routes: [ShortID: (via: NodeID, hops: Int, at: Double)] = [:]
    /// Neighbours given a copy of a directed bundle we could not route (Routing.swift: within its copy budget).
    var replicas: [BundleID: Set<NodeID>] = [:]
    /// The neighbour each held directed bundle came from, and when (split horizon, Routing.swift: not handed back to
    /// it along a route, unless it is the destination or the route is newer than the bundle's arrival).
    var cameFrom: [BundleID: (via: NodeID, at: Double)] = [:]
    /// Directed bundles handed back to the neighbour they came from, how many times (`Tuning.handBacksPerBundle`);
    /// kept after they leave (they may come back), cleared past `Tuning.maxHandBacksCounted`.
    var handBacks: [BundleID: Int] = [:]
    /// Directed bundles known to have reached their destination (handed to it by this relay, or named in a receipt
    /// from it): handed back to us, such a bundle is a duplicate (the sender's copy is one too many), not retaken
    /// (Intake.swift). Cleared past `Tuning.maxDirectedSeen`.
    var arrived: Set<BundleID> = []
    /// Copy budgets of held directed bundles (SPEC 5.14, binary spray-and-wait): the copies this relay may still hold
    /// and hand on, its own included; a bundle not listed has the whole `Tuning.copyBudget`. Kept in the store too.
    var copyBudgets: [BundleID: Int] = [:]
    /// Held directed bundles whose last copy took one more from a neighbour that gave it again (Routing.swift,
    /// `takeCopies`): once per bundle, so a copy sent again (its acknowledgement lost) adds nothing.
    var copyTakenBack: Set<BundleID> = []
    /// The copy budgets a packet being applied carries, by transfer number (its copy-budgets records, 5.14).
    var arrivingCopies: [UInt32: Int] = [:]
    var reassembler: Reassembler
    /// Packet counters reserved for the composer (Composer.swift).
    var packetCounters = PacketCounters()
    /// Heads of cut bundles waiting for their rest (CutBundles.swift).
    var runHeads: [RunHeadKey: RunHead] = [:]
    var rng: SplitMix64
    /// The heal probes' own draws (their jitter, the delay of hello answers where they run, SPEC 9 rules 7-8): apart
    /// from `rng`, so that turning them on does not reshuffle every other random choice of the run.
    var probeRNG: SplitMix64
    var lastHousekeeping: Double = -1e9
    /// When the tables were last pruned (Memory.swift).
    var pruning = PruneClock()
    /// A link came up or a neighbour came into range: directed bundles in our custody that wait for a next hop look
    /// for one at the next tick, not at the next housekeeping (a gateway whose broker connection was back in
    /// seconds would otherwise hold them a minute).
    var rerouteDue = false
    var quiet: Bool
    /// Transmission paused by the runtime while storage fails (see `pauseTransmission`); not kept in the store.
    var transmissionPaused = false
    var sealer: PacketSealer
    var opener: PacketOpener
    /// The keys `sealer` and `opener` use now (SPEC 3.7): changed by `config.keyRotation` at its moment.
    var networkKeys: (send: NetworkKey, accept: [NetworkKey])
    let compressor: BodyCompressor
    /// Work shared with the other engines of the process (a simulator's), or nil (a relay's).
    let shared: SharedWork?
    var outputs: [NodeOutput] = []
    /// Local bundles the engine already started (so one stored by another process is adopted once).
    var knownLocal: Set<BundleID> = []
    /// The change feed's newest entry when the engine started, read before it indexed the held bundles: a bundle
    /// another process stores (`relay send`, `relay import`) is in `heldIndex`, or in the feed after this position (to
    /// be adopted), or both (adopted then: `adopt` routes it at once, as the index would at the next walk). A runtime
    /// reads the feed on from here. It read the feed's end itself, after the engine's start, and a message
    /// `relay send` stored in between was in neither: queued, never sent, until the relay restarted.
    public internal(set) var feedPosition: Int64 = 0
    /// The key book's requests, answers and keys arrived (KeyBook.swift); the keys themselves are `keys` and
    /// `directory` above, which every part reading a bundle or a packet looks up.
    var keyExchange = KeyExchangeState()
    /// Federation dictionaries: what to tell or ask the neighbours, what we wait for (Dictionaries.swift).
    var dictionaryState = DictionaryState()
    /// Bundles already reported refused (OriginJudgement.swift).
    var refusedReported = ReportedOnce()
    /// Origin signatures already verified here (OriginJudgement.swift): not verified again.
    var verifiedSignatures = VerifiedSignatures()
    /// Every bundle held, in memory (HeldIndex.swift): what summaries, routing and pruning read instead of the store.
    var heldIndex = HeldIndex()
    /// The index could not be kept in step (a read failed): built again from the store at the next housekeeping.
    var heldIndexStale = false
    /// Where routing held bundles stands (`routeHeld`): a walk stopped at its per-tick bound or for room goes on at the next tick.
    var routeWalk = RouteWalk()

    public internal(set) var stats = Stats()
    public struct Stats: Sendable, Equatable {
        public var packetsSent = 0
        public var bytesSent = 0
        public var packetsReceived = 0
        public var rejected = 0
        public var suppressed = 0
        /// Flooded transfers left incomplete that asked for the rest with a summary (SPEC 8.5, flooded bundles, rule 4).
        public var floodGapsAsked = 0
        public var retransmissions = 0
        /// Packets with bundle data sent to everyone in range, and to one neighbour.
        public var broadcastDataPackets = 0
        public var unicastDataPackets = 0
        /// Periodic announces that carried the node's summary (packets that went out anyway).
        public var summariesInPeriodicAnnounces = 0
        /// Announces sent in answer to hellos, and hellos not answered at once (SPEC 9 rule 7).
        public var helloAnswers = 0
        public var hellosLimited = 0
        /// Heal probes sent (hellos for lost neighbours, SPEC 9 rule 8).
        public var healProbes = 0
    }

    /// `shared`: work shared with other engines of this process (`SharedWork`; a simulator's), nil for a relay.
    public init(config: NodeConfig, store: any NodeStorage, links: [LinkInfo], now: Double, seed: UInt64? = nil,
                compressor: BodyCompressor = BodyCompressor(), shared: SharedWork? = nil) throws(StoreError) {
        self.config = config
        self.store = store
        self.compressor = compressor
        self.shared = shared
        self.networkKeys = config.keyRotation.keys(current: config.networkKey, at: now)
        self.sealer = PacketSealer(networkKey: self.networkKeys.send, sender: config.identity.nodeID, open: config.openMode)
        self.opener = PacketOpener(networkKeys: self.networkKeys.accept, acceptOpen: config.openMode)
        self.opener.recent = shared?.opened
        self.rng = SplitMix64(seed: seed ?? UInt64(config.identity.nodeID.short.rawValue))
        self.probeRNG = SplitMix64(seed: (seed ?? UInt64(config.identity.nodeID.short.rawValue)) ^ 0x9E37_79B9_7F4A_7C15)
        self.reassembler = Reassembler(timeout: Int64(config.reassemblyTimeout))
        self.quiet = try store.isQuiet()
        for l in links {
            self.links[l.name] = LinkState(info: l)
            self.linkOrder.append(l.name)
        }
        self.membership = Membership(config.trust)
        self.learn(config.identity.publicKeys)
        if case .members(let members) = config.trust { for k in members { self.learn(k) } }
        // Keys heard before a restart, and those put on the trust list by hand.
        for p in try store.peers() { self.learn(p.keys) }
        self.replayGuard.windows = try store.replayWindows()
        // Half-received transfers survive a restart (directed bundles in custody look for a route at the first tick).
        // A transfer whose pieces are all there (kept by a version that saved every copy, or not dropped for a full
        // disk) is not taken as complete: its bundle may never have been stored. It waits, without the piece that
        // completed it, for that piece's resend (stored and acknowledged then, or acknowledged as a duplicate), or is
        // dropped from the store at its timeout.
        for (sender, f, t) in try store.savedFragments() {
            if case .complete = self.reassembler.add(f, from: sender, now: t) { self.reassembler.reopen(sender: sender, transfer: f.transfer) }
        }
        self.shelveDictionaries(now: now)
        // The feed's position first, then what is held: a bundle another process stores meanwhile is in one or both.
        self.feedPosition = try store.lastEventSeq()
        // What is held, indexed once (one query): the hot paths read the index, not the bundle table.
        self.heldIndex = HeldIndex(try store.held(limit: Tuning.heldLimit))
        self.copyBudgets = try store.copyBudgets()
    }

    func emit(_ o: NodeOutput) { self.outputs.append(o) }

    func drain() -> [NodeOutput] {
        defer { self.outputs.removeAll() }
        return self.outputs
    }

    public var isQuiet: Bool { self.quiet }

    /// Changes the groups delivered to the local inbox (configuration reloaded while running).
    public func setGroups(_ groups: Set<GroupID>) { self.config.groups = groups }

    /// Changes who bundles are accepted from (the trust list edited while running); learns the listed keys.
    /// The network key and its rotation as the files now say (the operator scheduled, received or retired a key,
    /// SPEC 3.7); applied at once if the moment has come. The event saying so comes with the next outputs.
    public func setNetworkKey(_ current: NetworkKey, rotation: KeyRotation, now: Double) {
        self.config.networkKey = current
        self.config.keyRotation = rotation
        self.applyKeyRotation(now: now)
    }

    /// The fingerprints of the network key packets are sealed under and of every key accepted (SPEC 3.7).
    public var networkKeyFingerprints: (sending: String, accepting: [String]) {
        (self.networkKeys.send.fingerprint, self.networkKeys.accept.map(\.fingerprint))
    }

    public func setTrust(_ policy: TrustPolicy) {
        self.config.trust = policy
        self.membership = Membership(policy)
        if case .members(let members) = policy { for k in members { self.learn(k) } }
        // Keys added to the trust list while running (`relay peers add CODE`) are known at once, whatever the policy:
        // bundles kept unread from those nodes are read at the next tick.
        self.refreshKeys()
    }

    /// Quiet mode: receive and store, transmit nothing, until lifted; then resume with what is held.
    public func setQuiet(_ on: Bool, now: Double) throws(StoreError) -> [NodeOutput] {
        try self.store.setQuiet(on)
        self.quiet = on
        return on ? [] : self.tick(now: now)
    }

    /// Makes, stores and starts sending a bundle from this node. Throws `StoreError.quotaFull` when it cannot be
    /// queued (nothing else is dropped).
    public func submit(
        kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions? = nil, now: Double
    ) throws -> (BundleID, [NodeOutput]) {
        let id = try self.make(kind: kind, destination: destination, content: content, options: options, now: now)
        return (id, self.tick(now: now))
    }

    func make(kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions?, now: Double) throws -> BundleID {
        var options = options
        // A neighbour it is addressed to that reads the bare block form (capability bit 6, SPEC 11.11) may get it:
        // 4 bytes less a bundle with a dictionary. Only the recipient reads the body; relays between pass it unread.
        if case .node(let n) = destination,
           self.neighbours.values.contains(where: { $0.id.short == n && $0.capabilities & AnnounceRecord.bareBlocks != 0 }) {
            var o = options ?? BundleOptions(kind: kind)
            o.bareBlocks = true
            options = o
        }
        let (b, evicted) = try BundleMaker(identity: self.config.identity, groups: self.config.groups, store: self.store, compressor: self.compressor)
            .makeReporting(kind: kind, destination: destination, content: content, options: options, now: now)
        for id in evicted { self.unhold(id) }
        self.indexHeld(b)
        self.knownLocal.insert(b.id)
        self.afterStoring(b, from: nil, now: now, local: true)
        if self.isForMe(b) { try self.deliverLocally(b, now: now) }
        return b.id
    }

    /// Starts sending a bundle that another process (the `relay send` command) stored in this node's store.
    public func adopt(_ id: BundleID, now: Double, imported: Bool = false) -> [NodeOutput] {
        guard !self.knownLocal.contains(id), let found = self.storing("read a submitted bundle", { try self.store.bundle(id) }),
              let q = found, q.isLocal || imported else { return [] }
        let b: CourierBundle
        do { b = try CourierBundle(decoding: q.data) } catch {
            self.damagedInStore(id, error, now: now)
            return self.drain()
        }
        self.knownLocal.insert(id)
        self.heldIndex.insert(HeldBundle(q, expires: Int64(b.expires)))
        self.afterStoring(b, from: nil, now: now, local: q.isLocal)
        self.adoptedDictionary(b)
        return self.tick(now: now)
    }

    /// Adopts several bundles at once and ticks once, so the first packet can carry all of them.
    public func adopt(_ ids: [(id: BundleID, imported: Bool)], now: Double) -> [NodeOutput] {
        var any = false
        for (id, imported) in ids {
            guard !self.knownLocal.contains(id), let found = self.storing("read a submitted bundle", { try self.store.bundle(id) }),
                  let q = found, q.isLocal || imported else { continue }
            let b: CourierBundle
            do { b = try CourierBundle(decoding: q.data) } catch {
                self.damagedInStore(id, error, now: now)
                continue
            }
            self.knownLocal.insert(id)
            self.heldIndex.insert(HeldBundle(q, expires: Int64(b.expires)))
            self.afterStoring(b, from: nil, now: now, local: q.isLocal)
            self.adoptedDictionary(b)
            any = true
        }
        return any ? self.tick(now: now) : self.drain()
    }

    func isForMe(_ b: CourierBundle) -> Bool {
        switch b.destination {
        case .node(let n): return n == self.me.short
        case .group(let g): return self.config.groups.contains(g)
        case .everyone: return true
        }
    }

    /// A packet received on a link. `snr` and `rssi`: its signal-to-noise ratio (dB) and strength (dBm) when the radio
    /// reports them (an RNode does with each packet; the drill simulator's channel model gives the ratio), nil
    /// otherwise. With `NodeConfig.signalWeightedDelay`, a flood heard weakly (far away) is passed on sooner (SPEC 8.5
    /// rule 5); the sender's entry keeps the last signal for status displays (`neighbourList`).
    public func receive(_ bytes: [UInt8], on link: String, now: Double, snr: Double? = nil, rssi: Double? = nil) -> [NodeOutput] {
        self.stats.packetsReceived += 1
        let packet: Packet
        do {
            packet = try self.opener.open(bytes, candidates: { self.directory[$0] ?? [] })
        } catch {
            if case .unknownSender(let who) = error {
                self.emit(.event(.packetRefused(link: link, reason: .unknownSender, detail: "from \(who): keys not known yet")))
                // A neighbour we cannot read (we missed its announces): our next announce carries the hello bit, so
                // neighbours announce back. At most once a minute per link.
                if var l = self.links[link], now - l.lastHelloRequest > Tuning.helloRequestInterval {
                    l.lastHelloRequest = now
                    l.helloSent = false
                    l.announceDue = true
                    self.links[link] = l
                    self.outputs += self.tick(now: now)
                }
            } else {
                self.stats.rejected += 1
                self.emit(.event(.packetRefused(link: link, reason: .authentication, detail: "\(error)")))
            }
            return self.drain()
        }
        // What the packet brings is kept in one transaction (DurableGroups.swift); if that fails, nothing of it is
        // acknowledged and the sender sends it again.
        let before = self.receivedState()
        var sender: NodeID? = nil
        // The signal is this packet's only (not the tick's that follows, nor bundles read later from the store).
        self.packetSNR = snr
        let kept = self.durably("keep what a received packet brought", link: link, { sender = self.apply(packet, on: link, now: now) })
        self.packetSNR = nil
        if !kept {
            self.restore(before, keepingFragmentsOf: packet, from: sender, now: now)
        }
        guard let sender else { return self.drain() }
        if snr != nil || rssi != nil, self.neighbours[sender] != nil {
            self.neighbours[sender]!.snr = snr
            self.neighbours[sender]!.rssi = rssi
        }
        self.outputs += self.tick(now: now)
        return self.drain()
    }

    /// The records of an opened packet, in order (inside the packet's durable group). Its sender, or nil when the
    /// packet was refused (unknown sender, replayed counter): no tick follows.
    func apply(_ packet: Packet, on link: String, now: Double) -> NodeID? {
        var sender = packet.sender
        // Announces first: they may teach the sender's keys. A hello (the first announce after a start) means the
        // sender may have forgotten us: announce back, so its packets and ours can be read.
        for case .announce(let a) in packet.records {
            if let id = self.handleAnnounce(a, short: packet.header.sender) {
                sender = id
                // Not kept (a full disk): known in memory, kept from a later announce. Kept again only when the
                // announce says something new (PeersKept, Neighbours.swift).
                if let k = self.keys[id] { self.keepPeer(k, link: link, now: now) }
            }
            if a.capabilities & AnnounceRecord.hello != 0 { self.answerHello(from: packet.header.sender, on: link, now: now) }
        }
        if sender == nil { sender = self.directory[packet.header.sender]?.count == 1 ? self.directory[packet.header.sender]![0] : nil }
        guard let from = sender else {
            self.emit(.event(.packetRefused(link: link, reason: .unknownSender, detail: "from \(packet.header.sender): keys not known yet")))
            return nil
        }
        guard self.admitCounter(packet.header.counter, from: from, link: link) else { return nil }
        let (previous, returned) = self.heard(from, on: link, packet: packet, now: now)
        self.holdForHiddenSender(packet, from: from, link: link, now: now)
        self.noteTalksWith(packet, from: from, link: link, now: now)
        self.floodRelayAsked = self.relayAsked(by: packet.records)
        defer { self.floodRelayAsked = true }
        // Copy budgets (5.14) of the transfers addressed to us in this packet, wherever the record stands in it.
        self.arrivingCopies = [:]
        for case .copyBudgets(let c) in packet.records { for e in c.entries { self.arrivingCopies[e.transfer] = e.copies } }
        defer { self.arrivingCopies = [:] }
        for r in packet.records {
            switch r {
            case .ack(let a) where a.target == self.me.short: self.handleAck(a, from: from, link: link, now: now)
            case .summary(let s): self.handleSummary(s, from: from, link: link, now: now)
            case .dictionaries(let d): self.handleDictionaries(d, from: from, link: link, now: now)
            case .receiptParts(let r): self.handleReceiptParts(r, from: from, link: link, now: now)
            case .piece(let p): self.handlePiece(p, from: from, link: link, now: now)
            case .bundle(let b):
                if let next = b.nextHop, next != self.me.short {
                    self.overheard(b.bundle, to: next, from: from, link: link, now: now)
                    continue
                }
                // Acknowledged only once stored (or settled otherwise): unacknowledged, the sender keeps it and retries.
                let settled = self.handleBundleBytes(b.bundle, from: from, link: link, now: now,
                                                     copies: b.nextHop == self.me.short ? b.transfer.flatMap { self.arrivingCopies[$0] } : nil,
                                                     handedToUs: b.nextHop == self.me.short)
                if settled, let t = b.transfer, b.nextHop == self.me.short { self.queueAck(AckEntry(transfer: t, received: 1), to: from.short, link: link, now: now) }
            case .fragment(let f): self.handleFragment(f, from: from, link: link, now: now)
            default: break
            }
        }
        // A contact, or a neighbour back after silence (after what this packet told us): send our summary if we may
        // hold news for them (a partition healed long before the neighbour timeout: floods held on either side).
        if returned && self.mayHoldNews(for: from, since: previous) {
            self.wantSummary(link, now: now, Tuning.contactSummaryDelay.min, Tuning.contactSummaryDelay.max)
        }
        return from
    }

    func reject(_ why: String) {
        self.stats.rejected += 1
        self.emit(.event(.rejected(why)))
    }

    /// The relay is stopping: what waits only in memory is made durable now. Receipts still being aggregated are
    /// made and stored (sent at the next start) instead of lost, so origins learn of what was delivered just before.
    /// Returns the events (a receipt that could not be stored is reported).
    public func stopping(now: Double) -> [NodeOutput] {
        self.flushReceiptParts(now: now)
        self.makeReceipts(now: now, all: true)
        return self.drain().filter {
            switch $0 {
            case .send, .event(.announced): return false
            default: return true
            }
        }
    }

    public func tick(now: Double) -> [NodeOutput] {
        self.applyKeyRotation(now: now)
        if now - self.lastHousekeeping >= Tuning.housekeepingInterval { self.housekeeping(now: now) }
        if self.rerouteDue || self.routeWalk.pending {
            self.rerouteDue = false
            self.routeHeld(now: now, fromStart: false)
        }
        if !self.keyExchange.arrived.isEmpty { self.readWaiting(now: now) }
        self.dictionaryTick(now: now)
        self.askForFloodGaps(now: now)
        self.floodsDue(now: now)
        self.floodsWaiting(now: now)
        self.pullsDue(now: now)
        self.makeReceipts(now: now)
        self.announcesDue(now: now)
        if !self.quiet && !self.transmissionPaused {
            for name in self.linkOrder { self.pump(name, now: now) }
        }
        return self.drain()
    }

    /// Once a minute (`Tuning.housekeepingInterval`): expiry, identity renewal, key requests repeated, transfers
    /// half-received timed out, held bundles routed again, soft tables pruned.
    func housekeeping(now: Double) {
        self.lastHousekeeping = now
        if self.heldIndexStale { self.rebuildHeldIndex() }
        self.expireBundles(now: now)
        if self.config.floodIdentity { self.renewIdentity(now: now) }
        // Origins of bundles still kept unread: ask again (at most once per `keyRequestInterval`).
        // (`since` is whole seconds: kept at or before the floor of `now - keyRequestInterval`.)
        do {
            for origin in try self.store.waitingOrigins(keptBy: Int64((now - self.config.keyRequestInterval).rounded(.down))) {
                self.requestKeys(of: origin, now: now)
            }
        } catch {
            self.rejectStorage("cannot read the bundles waiting for keys: \(error)", error)
        }
        for k in self.reassembler.expire(now: Int64(now)) {
            // Left (a full disk): dropped again when read back at the next start and timed out.
            if let s = NodeID(bytes: k.sender) {
                _ = self.storing("drop the pieces of an expired transfer") { try self.store.dropTransfer(from: s, transfer: k.transfer) }
            }
        }
        // Directed bundles in our custody with no transfer under way (no route yet, or the next hop stopped
        // answering): look for a next hop again.
        // From the index (HeldIndex.swift: `routeHeld`); each bundle is read whole only when routing can do
        // something for it.
        self.routeHeld(now: now, fromStart: true)
        for (d, p) in self.pulls where p.due == .infinity && now - p.since > Tuning.pullForgottenAfter { self.pulls[d] = nil }
        if self.receiptOrigins.count > Tuning.maxReceiptOrigins { self.receiptOrigins.removeAll() }
        // Who holds what is kept while we hold it (`told` leaves with the bundle: `unhold`).
        if !self.heldIndexStale {
            for id in Array(self.holders.keys) where !self.heldIndex.contains(id) && self.floods[id] == nil && now - (self.heardOf[id] ?? 0) > Tuning.holdersKeptFor {
                self.holders[id] = nil
                self.heardOf[id] = nil
            }
        }
        self.pruneTables(now: now)
    }

    /// Floods whose delay ran out: sent on every link up, unless enough copies were heard (Flooding.swift). A
    /// rebroadcast started stays in `floods` (`waiting`) until its first packet goes: copies heard while it waits
    /// for a busy channel still count (`floodsWaiting`).
    func floodsDue(now: Double) {
        // (Most ticks none is due: the floods are not sorted then, as they were at every tick.)
        guard self.floods.values.contains(where: { $0.due <= now }) else { return }
        for (id, f) in self.floods.sorted(by: { ($0.value.due, $0.key) < ($1.value.due, $1.key) }) where f.due <= now {
            self.floods[id] = nil
            if self.floodSuppressed(id, f, now: now) {
                self.stats.suppressed += 1
                self.emit(.event(.suppressed(id)))
                continue
            }
            // Unreadable: this rebroadcast is not made (a summary later offers it).
            guard let found = self.storing("read a bundle to flood it", { try self.store.bundle(id) }) else { continue }
            guard let q = found else {
                // Gone from the store meanwhile (taken out by another process): gone from the index too.
                self.unhold(id)
                continue
            }
            var started = false
            for name in self.linkOrder where self.links[name]?.up == true && !f.sentOn.contains(name) {
                started = self.startTransfer(q, link: name, target: nil, custody: false, now: now) || started
            }
            if started && id.origin != self.me.short {
                var waiting = f
                waiting.due = .infinity
                waiting.waiting = true
                self.floods[id] = waiting
            }
            // Our receipt for it, if still waiting, goes out with it (in the same packet where the link allows it).
            if self.receipts[id.origin]?.ids.contains(id) == true { self.receipts[id.origin]!.due = now }
        }
    }

    /// Bundles a summary or receipt showed missing, asked for again with our summary (Summaries.swift).
    func pullsDue(now: Double) {
        // (Most ticks none is due: no filtered copy of the pulls made then, as it was at every tick.)
        guard self.pulls.values.contains(where: { $0.due <= now }) else { return }
        let duePulls = self.pulls.filter { $0.value.due <= now }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }
        // Unreadable: asked for as if not seen (at worst a copy of what we have comes).
        let seen = duePulls.isEmpty ? [] : Set(self.storing("read the bundles seen", { try self.store.seenDigests(limit: Tuning.seenDigestsLimit) }) ?? [])
        for (d, p) in duePulls {
            // Shown by a summary, asked for and still lacking: asked again, backed off, while its holder is heard.
            if !p.fromReceipt, p.tries >= Tuning.pullTriesAfterSummary, !seen.contains(d), now - p.since < Tuning.pullReaskFor,
               var l = self.links[p.link], l.up {
                let late = Double(p.tries - Tuning.pullTriesAfterSummary)
                let wait = min(Tuning.pullReaskMaxWait, Tuning.pullReaskAfterSummary * pow(2, late))
                // A summary sent since (for any reason) asked for it: the wait runs from there. A holder not heard
                // now is not asked (nothing is sent; looked at again a wait later).
                if now - l.lastSummary < wait {
                    self.pulls[d]!.due = l.lastSummary + wait
                    continue
                }
                if p.shownBy.flatMap({ self.freshLink($0, now: now) }) != p.link {
                    self.pulls[d]!.due = now + wait
                    continue
                }
                l.summaryDue = now
                self.links[p.link] = l
                self.pulls[d]!.due = now + min(Tuning.pullReaskMaxWait, Tuning.pullReaskAfterSummary * pow(2, late + 1))
                self.pulls[d]!.tries += 1
                continue
            }
            guard !seen.contains(d), p.tries < (p.fromReceipt ? Tuning.pullTriesAfterReceipt : Tuning.pullTriesAfterSummary), var l = self.links[p.link], l.up else {
                self.pulls[d]!.due = .infinity
                continue
            }
            if now - l.lastSummary < self.summaryGap(l) {
                self.pulls[d]!.due = l.lastSummary + self.summaryGap(l)
                continue
            }
            l.summaryDue = now
            if p.fromReceipt && now - l.lastAnnounced > self.config.summaryInterval { l.announceDue = true }
            self.links[p.link] = l
            self.pulls[d]!.due = now + Tuning.pullRetry * pow(2, Double(p.tries))
            self.pulls[d]!.tries += 1
        }
    }

    /// Each link's hello retries, hello answers, periodic announces (with our summary when it fits) and summaries
    /// due (Neighbours.swift, ChannelBudget.swift, Summaries.swift).
    func announcesDue(now: Double) {
        for name in self.linkOrder {
            // Most ticks nothing is due: the link's moments read in place, its whole state (every table it holds
            // retained and released) copied out and put back only when one has come.
            guard let i = self.links.index(forKey: name), self.announceWorkMayBeDue(i, now: now) else { continue }
            var l = self.links.values[i]
            // Nobody answered the hello on this link (it may have collided): say it again, up to 3 times.
            if now >= l.nextHelloRetry {
                let answered = self.neighbours.values.contains { ($0.lastHeard[name] ?? -1) >= l.upSince && $0.id != self.me }
                if answered || l.helloRetries >= Tuning.helloRetries {
                    l.nextHelloRetry = .infinity
                } else {
                    l.helloRetries += 1
                    l.helloSent = false
                    l.announceDue = true
                    l.summaryDue = now
                    l.nextHelloRetry = now + self.rng.uniform(Tuning.helloRetryDelay.min, Tuning.helloRetryDelay.max) * Double(1 << l.helloRetries)
                }
            }
            self.healProbesDue(&l, now: now)
            if now >= l.helloAnswerAt {
                l.helloAnswerAt = .infinity
                l.announceDue = true
            }
            if l.helloAnswerWaiting && now >= Self.helloAnswerTime(l) {
                Self.refillHelloTokens(&l, now: now)
                l.helloTokens = max(0, l.helloTokens - 1)
                l.helloAnswerWaiting = false
                l.announceDue = true
                self.stats.helloAnswers += 1
            }
            if now >= l.nextAnnounce {
                l.announceDue = true
                // A periodic announce carries our summary when all of it fits in the same packet: neighbours that
                // lack something answer, at no cost while all are in step (an alert's straggler finds it here).
                if self.config.summaryInAnnounces, l.pendingSummary.isEmpty, self.summaryMayFitOnePage(mtu: l.info.properties.mtu) {
                    let pages = self.summaryPages(mtu: l.info.properties.mtu, now: now)
                    let k = self.config.identity.publicKeys
                    let a = Record.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement, name: self.config.name))
                    if pages.count == 1, Packet.announceOverhead + a.encodedSize(last: false)
                        + Record.summary(SummaryRecord(isFinal: true, digests: pages[0])).encodedSize(last: true) + Tuning.announceSummaryRoom <= l.info.properties.mtu {
                        l.pendingSummary = pages
                        l.summaryWithAnnounce = true
                        l.lastSummary = now
                        if l.summaryDue.map({ $0 <= now + Tuning.summaryCoveredWithin }) == true { l.summaryDue = nil }
                        for n in self.freshNeighbours(now: now) where n.link == name { self.tellAll(n.id) }
                    }
                }
            }
            if let due = l.summaryDue, due <= now, now - l.lastSummary >= self.summaryGap(l) {
                // Neighbours in range are told what we hold: they answer if they lack something.
                for n in self.freshNeighbours(now: now) where n.link == name { self.tellAll(n.id) }
                l.summaryDue = nil
                l.lastSummary = now
                l.pendingSummary = self.summaryPages(mtu: l.info.properties.mtu, now: now)
            }
            self.links[name] = l
        }
    }

    /// Whether the link at `i` is up and anything `announcesDue` looks at there may have come by `now` (a hello to repeat, heal
    /// probes, a hello's answer, the periodic announce, a summary): when not, it changes nothing there. (True more often
    /// than needed, never less: the hello answer's and the summary's other conditions are left to `announcesDue`.)
    func announceWorkMayBeDue(_ i: Dictionary<String, LinkState>.Index, now: Double) -> Bool {
        self.withLink(at: i) { l in
            l.up && (now >= l.nextHelloRetry || now >= l.nextHealProbe || now >= l.helloAnswerAt || l.helloAnswerWaiting
                || now >= l.nextAnnounce || (l.summaryDue.map { $0 <= now } ?? false))
        }
    }

    /// `body` given the state of the link at `i` where the dictionary keeps it, through its modify accessor: the
    /// getter (`links[name]`, `links.values[i]`) copies the whole state out, every table it holds retained and
    /// released, for each field read. `body` must not touch `links` otherwise.
    @inline(__always)
    func withLink<R>(at i: Dictionary<String, LinkState>.Index, _ body: (inout LinkState) -> R) -> R {
        body(&self.links.values[i])
    }

    /// When the engine next wants a tick.
    public func nextWakeup(now: Double) -> Double {
        var t = now + 60
        // A scheduled key switch, and the end of the replaced key's grace (SPEC 3.7).
        let r = self.config.keyRotation
        for moment in [r.switchAt, r.switchAt + KeyRotation.replacedKeyAcceptedFor, r.previousUntil] where moment > now {
            t = min(t, moment)
        }
        for f in self.floods.values { t = min(t, f.due) }
        // Held bundles left to route past the per-tick bound: at once (while a link has room for them).
        if self.routeWalk.pending && self.roomToRoute() { t = min(t, now) }
        for p in self.pulls.values { t = min(t, p.due) }
        for r in self.receipts.values { t = min(t, r.due) }
        // Receipt parts, acks, transfers and a due announce go out only in a packet: while the link is busy (another
        // station's carrier reported by `channelBusy`, or our own packet on the air by the engine's own reckoning of
        // its airtime) they wake the engine when the first link is free, not every millisecond meanwhile (the drill
        // simulator spent most of its time in such ticks); in quiet mode (nothing is sent) not at all: lifting it
        // ticks.
        let sending = !self.quiet
        t = min(t, self.floodGapsDue)
        // A link out of its duty-cycle budget sends nothing until it refills: what waits to go on it (an announce, a
        // summary, acks, transfers already due) wakes the engine then, not every millisecond meanwhile.
        // (Within the urgent reserve, SPEC 8.5, until it refills past the reserve; an urgent transfer due, once
        // the bucket is above empty.)
        var refilled: [String: Double] = [:]
        // When the first link is free and within its budget (with no link up, never: `linkUp` ticks).
        var free = Double.infinity
        // The up links' `busyUntil`, for the transfers' loop below (looking each link up again by name copied its whole
        // state out, every table it holds retained and released).
        var upLinks: [(name: String, busyUntil: Double)] = []
        for (name, l) in self.links where l.up {
            upLinks.append((name, l.busyUntil))
            var ready = -Double.infinity
            if l.info.dutyCycle != nil {
                let at = self.airtimeReady(l, urgent: self.urgentDue(name, now: now), now: now)
                if at > now {
                    ready = at
                    refilled[name] = ready
                }
            }
            free = min(free, max(ready, l.busyUntil, now))
            // An announce already due waits for the link like the rest (the next announce is set once it is sent).
            let announceAt = l.announceDue && !self.transmissionPaused ? Double.infinity : l.nextAnnounce
            t = min(t, max(ready, min(announceAt, l.nextHelloRetry, Self.helloAnswerTime(l), l.helloAnswerAt, l.healProbing ? l.nextHealProbe : .infinity)))
            if let s = l.summaryDue { t = min(t, max(ready, s, l.lastSummary + self.summaryGap(l))) }
            if let a = l.ackDue, sending { t = min(t, max(ready, a, l.busyUntil)) }
            if l.busyUntil > now { t = min(t, max(ready, l.busyUntil)) }
            if ready.isFinite { t = min(t, ready) }
        }
        if sending {
            t = min(t, max(self.receiptPartsDue, free))
            // (Not on a link that is down: its transfers wait for it to come up, and `linkUp` ticks.)
            for name in self.transfers.links {
                guard let busyUntil = upLinks.first(where: { $0.name == name })?.busyUntil else { continue }
                if let due = self.transfers.earliestDue(on: name) {
                    t = min(t, max(refilled[name] ?? -.infinity, busyUntil, due))
                }
            }
        }
        return max(t, now + 0.001)
    }

}
