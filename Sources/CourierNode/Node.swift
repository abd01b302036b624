import CourierMedium
import CourierStore
import CourierWire
import Foundation

/// The relay engine: a sans-I/O state machine. Feed it packets (`receive`), the clock (`tick`) and local submissions
/// (`submit`); it returns packets to send, deliveries and events, and says when it next wants a tick. The runtime
/// drives it with real links and the real clock; the simulator with in-memory lossy links and a virtual clock.
/// It keeps durable state in the store (queue, custody, transmission state, inbox, reassembly) and soft state in
/// memory (neighbours, routes, timers), which it rebuilds after a restart.
public final class Node {
    public private(set) var config: NodeConfig
    public let store: Store
    public var me: NodeID { self.config.identity.nodeID }

    // MARK: State

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
    }

    struct LinkState {
        var info: LinkInfo
        var up = false
        var busyUntil: Double = 0
        var tokens: Double = 0
        var lastRefill: Double = 0
        var nextAnnounce: Double = 0
        var announceDue = false
        /// The rest of an announce split over several packets because the whole one does not fit the MTU (9.2).
        var announceParts: [AnnounceRecord] = []
        var lastAnnounced: Double = -1e9
        /// The first announce after start carries the hello bit: neighbours that may have forgotten us announce
        /// back at once, so both sides can read each other again after a restart.
        var helloSent = false
        /// When we last asked for announces because a packet came from a node we cannot read.
        var lastHelloRequest: Double = -1e9
        /// When we last announced back to each sender of a hello.
        var helloAnswered: [ShortID: Double] = [:]
        /// Announces this link may still send in answer to hellos (a bucket of `helloAnswerBurst`, one more every
        /// `helloAnswerRefill` seconds), when it was last refilled, and a hello waiting for the bucket (SPEC 9, rule 7).
        var helloTokens = Node.helloAnswerBurst
        var helloRefilled: Double = 0
        var helloAnswerWaiting = false
        /// The pending summary rides with the periodic announce.
        var summaryWithAnnounce = false
        /// When the link came up, and how many times the hello was repeated because nobody answered it (on a
        /// half-duplex channel the first answer can collide with our next packet).
        var upSince: Double = 0
        var helloRetries = 0
        var nextHelloRetry: Double = .infinity
        var lastSummary: Double = -1e9
        var summaryDue: Double? = nil
        var pendingSummary: [[UInt32]] = []
        /// Acks to send: neighbour short id -> transfer -> entry, and when.
        var acks: [ShortID: [UInt32: AckEntry]] = [:]
        var ackDue: Double? = nil
        /// Transfers whose pending ack shows them incomplete (those wait for `ackDelay`; complete ones may ride early
        /// in a packet that goes out anyway).
        var partialAcks: [ShortID: Set<UInt32>] = [:]
        /// Fragments of each incomplete transfer heard since its last ack went out: a window of them is acknowledged
        /// at once, even while more keep coming (SPEC 8.5 rule 1).
        var unackedFragments: [ShortID: [UInt32: Int]] = [:]
        /// Directed records sent on this link and acknowledged (1) or timed out (0), and their packets' sizes, as
        /// moving averages: a noisy line's loss per byte, from which the size of new fragments is chosen.
        var recordSuccess: Double = 1
        var recordBytes: Double = 0
        var recordOutcomes = 0
    }

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
    }

    struct PendingFlood {
        var due: Double
        var heard = 0
    }

    struct PartialAnnounce {
        var signing: [UInt8]?
        var agreement: [UInt8]?
        var name: String?
    }

    var neighbours: [NodeID: Neighbour] = [:]
    var keys: [NodeID: NodePublicKeys] = [:]
    var directory: [ShortID: [NodeID]] = [:]
    var partialAnnounces: [ShortID: PartialAnnounce] = [:]
    var links: [String: LinkState] = [:]
    var linkOrder: [String] = []
    var transfers: [TransferKey: Transfer] = [:]
    var transferOrder = 0
    /// Transfer numbers reserved in the store (absolute; a transfer uses the value modulo 2^14): never reused after
    /// a restart, so a receiver's memory of a completed transfer cannot answer for a new bundle (SPEC 8.2).
    var transferNumbers: Range<Int64> = 0..<0
    /// Each sender's packet-counter windows (SPEC 4.8), kept in the store so they survive a restart.
    var replayWindows: [NodeID: ReplayWindow] = [:]
    /// The last attempt to keep a replay window in the store failed (said once, until one succeeds).
    var replayWindowUnsaved = false
    var floods: [BundleID: PendingFlood] = [:]
    var summaries: [NodeID: Set<UInt32>] = [:]
    /// Neighbours known to hold each bundle: we heard them send it, send or pass on a receipt for it (or another
    /// node pass on their receipt), list it in a summary, or acknowledge it. Kept while we hold the bundle (ten
    /// minutes for one we do not: its copy may still reach us).
    var holders: [BundleID: Set<NodeID>] = [:]
    /// When each entry of `holders` last grew.
    var heardOf: [BundleID: Double] = [:]
    /// Neighbours in range when we sent a summary listing a bundle we hold (had they lacked it, they would have
    /// asked): a contact with them does not call for our summary again.
    var told: [BundleID: Set<NodeID>] = [:]
    /// Bundles (by digest) a neighbour's summary or a receipt showed exist and we lack: we ask with our summary.
    /// After a receipt, up to five times (with our announce, in case the holder cannot read us) while we still lack
    /// it; after a summary, once (it also lists directed bundles that will not come to us). Not again for an hour.
    var pulls: [UInt32: Pull] = [:]
    /// For bundles we lack: the nodes whose receipts for them we heard passed on.
    var receiptOrigins: [BundleID: Set<ShortID>] = [:]
    struct Pull {
        var link: String
        var due: Double
        var tries = 0
        let since: Double
        /// A receipt showed it (else a summary).
        var fromReceipt = true
    }
    /// Digests of directed bundles we made, passed on or had delivered here: left out of the "seen" part of our
    /// summaries (custody and acks move those; a summary listing them only makes neighbours that never saw them
    /// answer with theirs).
    var directedSeen: Set<UInt32> = []
    /// When we last stored a directed bundle we had no route for (a neighbour met again may be the way).
    var lastUnroutableAt: Double = -1e9
    var receipts: [ShortID: (ids: [BundleID], due: Double)] = [:]
    var routes: [ShortID: (via: NodeID, hops: Int, at: Double)] = [:]
    /// Neighbours given a copy of a directed bundle we could not route (at most `maxReplicas`).
    var replicas: [BundleID: Set<NodeID>] = [:]
    static let maxReplicas = 2
    var reassembler: Reassembler
    var counters: Range<UInt32> = 0..<0
    var rng: SplitMix64
    var lastHousekeeping: Double = -1e9
    var lastPrune: Double = -1e9
    /// A link came up or a neighbour came into range: directed bundles in our custody that wait for a next hop look
    /// for one at the next tick, not at the next housekeeping (a gateway whose broker connection was back in
    /// seconds would otherwise hold them a minute).
    var rerouteDue = false
    var quiet: Bool
    var sealer: PacketSealer
    var opener: PacketOpener
    /// The keys `sealer` and `opener` use now (SPEC 3.7): changed by `config.keyRotation` at its moment.
    var networkKeys: (send: NetworkKey, accept: [NetworkKey])
    let compressor: BodyCompressor
    var outputs: [NodeOutput] = []
    /// Local bundles the engine already started (so one stored by another process is adopted once).
    var knownLocal: Set<BundleID> = []
    /// Origins whose keys we asked for with a key request, and when; requesters we answered, and when.
    var keyRequests: [ShortID: Double] = [:]
    var identityAnswers: [ShortID: Double] = [:]
    /// Short ids whose keys were learnt since the last tick: bundles kept unread from them are read then.
    var keysArrived: Set<ShortID> = []
    /// Bundles already reported refused (copies of a flood from an untrusted origin keep coming).
    var refusedReported: Set<BundleID> = []

    public private(set) var stats = Stats()
    public struct Stats: Sendable, Equatable {
        public var packetsSent = 0
        public var bytesSent = 0
        public var packetsReceived = 0
        public var rejected = 0
        public var suppressed = 0
        public var retransmissions = 0
        /// Packets with bundle data sent to everyone in range, and to one neighbour.
        public var broadcastDataPackets = 0
        public var unicastDataPackets = 0
        /// Periodic announces that carried the node's summary (packets that went out anyway).
        public var summariesInPeriodicAnnounces = 0
        /// Announces sent in answer to hellos, and hellos not answered at once (SPEC 9 rule 7).
        public var helloAnswers = 0
        public var hellosLimited = 0
    }

    public init(config: NodeConfig, store: Store, links: [LinkInfo], now: Double, seed: UInt64? = nil,
                compressor: BodyCompressor = BodyCompressor()) throws(StoreError) {
        self.config = config
        self.store = store
        self.compressor = compressor
        self.networkKeys = config.keyRotation.keys(current: config.networkKey, at: now)
        self.sealer = PacketSealer(networkKey: self.networkKeys.send, sender: config.identity.nodeID, open: config.openMode)
        self.opener = PacketOpener(networkKeys: self.networkKeys.accept, acceptOpen: config.openMode)
        self.rng = SplitMix64(seed: seed ?? UInt64(config.identity.nodeID.short.rawValue))
        self.reassembler = Reassembler(timeout: Int64(config.reassemblyTimeout))
        self.quiet = try store.isQuiet()
        for l in links {
            self.links[l.name] = LinkState(info: l, tokens: Self.bucketSize(l), lastRefill: now)
            self.linkOrder.append(l.name)
        }
        self.learn(config.identity.publicKeys)
        if case .members(let members) = config.trust { for k in members { self.learn(k) } }
        // Keys heard before a restart, and those put on the trust list by hand.
        for p in try store.peers() { self.learn(p.keys) }
        self.replayWindows = try store.replayWindows()
        // Half-received transfers survive a restart (directed bundles in custody look for a route at the first tick).
        for (sender, f, t) in try store.savedFragments() { _ = self.reassembler.add(f, from: sender, now: t) }
    }

    static func bucketSize(_ l: LinkInfo) -> Double {
        guard let d = l.dutyCycle else { return .infinity }
        return d * 3_600  // an hour's allowance
    }

    /// Learns a node's keys; bundles kept unread from it are read at the next tick. True when they were new.
    @discardableResult
    func learn(_ k: NodePublicKeys) -> Bool {
        let id = k.nodeID
        guard self.keys[id] == nil else { return false }
        self.keys[id] = k
        self.directory[id.short, default: []].append(id)
        if id != self.me { self.keysArrived.insert(id.short) }
        return true
    }

    /// Learns the keys the store knows that the engine does not yet (put on the trust list, or learnt by another
    /// process, while running).
    public func refreshKeys() {
        do { for p in try self.store.peers() { self.learn(p.keys) } } catch {
            self.reject("cannot read the known keys: \(error)")
        }
    }

    func emit(_ o: NodeOutput) { self.outputs.append(o) }

    func drain() -> [NodeOutput] {
        defer { self.outputs.removeAll() }
        return self.outputs
    }

    // MARK: Links

    public func linkUp(_ name: String, now: Double) -> [NodeOutput] {
        self.links[name]?.up = true
        self.links[name]?.announceDue = true
        // The summary goes in the hello's packet: a second packet a moment later would meet the neighbour's
        // answer on a half-duplex channel.
        self.links[name]?.summaryDue = now
        self.links[name]?.upSince = now
        self.links[name]?.helloRetries = 0
        self.links[name]?.nextHelloRetry = now + self.rng.uniform(5, 15)
        self.rerouteDue = true
        return self.tick(now: now)
    }

    public func linkDown(_ name: String, now: Double) {
        self.links[name]?.up = false
        // Outstanding fragments on that link go out again when it is back.
        for (k, var t) in self.transfers where k.link == name {
            t.sent.subtract(t.sent.subtracting(t.acked))
            t.due = now
            self.transfers[k] = t
        }
    }

    public var isQuiet: Bool { self.quiet }

    /// Changes the groups delivered to the local inbox (configuration reloaded while running).
    public func setGroups(_ groups: Set<GroupID>) { self.config.groups = groups }

    /// Changes a radio link's duty-cycle limit (nil: none); what was already spent this hour still counts.
    public func setDutyCycle(_ dutyCycle: Double?, on link: String) {
        guard var l = self.links[link] else { return }
        let spent = Self.bucketSize(l.info) - l.tokens
        l.info.dutyCycle = dutyCycle
        l.tokens = Self.bucketSize(l.info) - (spent.isFinite ? max(0, spent) : 0)
        self.links[link] = l
    }

    /// Listen-before-talk hook for half-duplex links: the channel is busy (a modem reported carrier or a busy
    /// channel, or another station is known to be transmitting) until `until`; nothing is sent on the link before
    /// then. KISS TNCs and RNode firmware also sense the channel themselves before keying up; this lets a runtime
    /// whose modem reports carrier (or a future driver) hold the engine back as well.
    public func channelBusy(_ link: String, until: Double, now: Double) -> [NodeOutput] {
        guard var l = self.links[link], until > l.busyUntil else { return [] }
        l.busyUntil = until
        self.links[link] = l
        return self.drain()
    }

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

    /// Seals and opens under the keys the rotation gives for `now`, saying so when they change.
    func applyKeyRotation(now: Double) {
        let k = self.config.keyRotation.keys(current: self.config.networkKey, at: now)
        guard k.send != self.networkKeys.send || k.accept != self.networkKeys.accept else { return }
        self.networkKeys = k
        self.sealer = PacketSealer(networkKey: k.send, sender: self.config.identity.nodeID, open: self.config.openMode)
        self.opener = PacketOpener(networkKeys: k.accept, acceptOpen: self.config.openMode)
        self.emit(.event(.networkKeys(sending: k.send.fingerprint, accepting: k.accept.map(\.fingerprint))))
    }

    public func setTrust(_ policy: TrustPolicy) {
        self.config.trust = policy
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

    // MARK: Local submissions

    /// Makes, stores and starts sending a bundle from this node. Throws `StoreError.quotaFull` when it cannot be
    /// queued (nothing else is dropped).
    public func submit(
        kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions? = nil, now: Double
    ) throws -> (BundleID, [NodeOutput]) {
        let id = try self.make(kind: kind, destination: destination, content: content, options: options, now: now)
        return (id, self.tick(now: now))
    }

    func make(kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions?, now: Double) throws -> BundleID {
        var opts = options ?? BundleOptions(kind: kind)
        // Every bundle this node makes is origin-signed (SPEC 6.8: 64 bytes each), so receivers can prove who wrote
        // it: packet keys prove only membership (3.6).
        opts.sign = true
        let seq = try self.store.nextSequence()
        let b = try CourierBundle.make(
            kind: kind, destination: destination, content: content, origin: self.config.identity,
            created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: seq, options: opts, compressor: self.compressor)
        try self.store.insert(b, now: Int64(now), local: true, custody: true)
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
        self.afterStoring(b, from: nil, now: now, local: q.isLocal)
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
            self.afterStoring(b, from: nil, now: now, local: q.isLocal)
            any = true
        }
        return any ? self.tick(now: now) : self.drain()
    }

    /// Neighbours heard within the timeout, for status displays.
    public func neighbourList(now: Double) -> [(id: NodeID, name: String?, link: String, lastHeard: Double)] {
        self.neighbours.values.compactMap { n in
            guard let (l, t) = n.lastHeard.max(by: { $0.value < $1.value }) else { return nil }
            return (n.id, n.name, l, t)
        }.sorted { $0.lastHeard > $1.lastHeard }
    }

    /// Airtime spent per link in the last hour against its budget (seconds).
    public func airtime() -> [(link: String, tokens: Double, budget: Double?)] {
        self.linkOrder.compactMap { name in
            guard let l = self.links[name] else { return nil }
            return (name, l.tokens, l.info.dutyCycle.map { $0 * 3_600 })
        }
    }

    func isForMe(_ b: CourierBundle) -> Bool {
        switch b.destination {
        case .node(let n): return n == self.me.short
        case .group(let g): return self.config.groups.contains(g)
        case .everyone: return true
        }
    }

    // MARK: Receiving

    public func receive(_ bytes: [UInt8], on link: String, now: Double) -> [NodeOutput] {
        self.stats.packetsReceived += 1
        let packet: Packet
        do {
            packet = try self.opener.open(bytes, candidates: { self.directory[$0] ?? [] })
        } catch {
            if case .unknownSender(let who) = error {
                self.emit(.event(.packetRefused(link: link, reason: .unknownSender, detail: "from \(who): keys not known yet")))
                // A neighbour we cannot read (we missed its announces): our next announce carries the hello bit, so
                // neighbours announce back. At most once a minute per link.
                if var l = self.links[link], now - l.lastHelloRequest > 60 {
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
        var sender = packet.sender
        // Announces first: they may teach the sender's keys. A hello (the first announce after a start) means the
        // sender may have forgotten us: announce back, so its packets and ours can be read.
        for case .announce(let a) in packet.records {
            if let id = self.handleAnnounce(a, short: packet.header.sender) {
                sender = id
                // Not kept (a full disk): known in memory, kept from a later announce.
                if let k = self.keys[id] {
                    _ = self.storing("remember a neighbour's keys", link: link) {
                        try self.store.rememberPeer(k, name: self.partialAnnounces[id.short]?.name, now: Int64(now))
                    }
                }
            }
            if a.capabilities & AnnounceRecord.hello != 0 { self.answerHello(from: packet.header.sender, on: link, now: now) }
        }
        if sender == nil { sender = self.directory[packet.header.sender]?.count == 1 ? self.directory[packet.header.sender]![0] : nil }
        guard let from = sender else {
            self.emit(.event(.packetRefused(link: link, reason: .unknownSender, detail: "from \(packet.header.sender): keys not known yet")))
            return self.drain()
        }
        var window = self.replayWindows[from] ?? ReplayWindow()
        let verdict = window.check(packet.header.counter)
        guard verdict.isAccepted else {
            self.stats.rejected += 1
            let why = verdict == .replay ? "already received" : "too far behind its newest"
            self.emit(.event(.packetRefused(link: link, reason: .replay, detail: "counter \(packet.header.counter) from \(from.short) \(why)")))
            return self.drain()
        }
        // Kept before the packet is acted on: after a restart a copy of it is still a replay. When the store cannot
        // take it (a full disk) the packet is still used, with the window in memory (refusing it would refuse the
        // acks that let us free space, and make neighbours take us for gone); the next save that works keeps it all.
        // Said once until saving works again.
        do {
            try self.store.saveReplayWindow(window, for: from)
            self.replayWindowUnsaved = false
        } catch {
            if !self.replayWindowUnsaved {
                self.reject("cannot keep replay windows in the store (a copy of a packet received now would not be refused after a restart until one is kept): \(error)")
            }
            self.replayWindowUnsaved = true
        }
        self.replayWindows[from] = window
        var n = self.neighbours[from] ?? Neighbour(id: from)
        let previous = n.lastHeard[link]
        let wasAway = (previous.map { now - $0 > self.config.neighbourTimeout } ?? true)
        n.lastHeard[link] = now
        n.unresponsiveSince = nil
        if n.name == nil, let k = self.partialAnnounces[from.short]?.name { n.name = k }
        self.neighbours[from] = n
        let contact = wasAway && from != self.me
        if contact {
            self.rerouteDue = true
            self.emit(.event(.neighbourHeard(from, name: n.name, link: link)))
            // A contact: tell them who we are if they may not know.
            if var l = self.links[link] {
                if now - (l.nextAnnounce - self.config.announceInterval) > 60 { l.announceDue = true }
                self.links[link] = l
            }
        }
        for r in packet.records {
            switch r {
            case .ack(let a) where a.target == self.me.short: self.handleAck(a, from: from, link: link, now: now)
            case .summary(let s): self.handleSummary(s, from: from, link: link, now: now)
            case .bundle(let b):
                if let next = b.nextHop, next != self.me.short {
                    self.overheard(b.bundle, to: next, from: from, link: link, now: now)
                    continue
                }
                // Acknowledged only once stored (or settled otherwise): unacknowledged, the sender keeps it and retries.
                let settled = self.handleBundleBytes(b.bundle, from: from, link: link, now: now)
                if settled, let t = b.transfer, b.nextHop == self.me.short { self.queueAck(AckEntry(transfer: t, received: 1), to: from.short, link: link, now: now) }
            case .fragment(let f):
                if let next = f.nextHop, next != self.me.short { continue }
                // A fragment that does not match what this transfer number carried (the sender reused the number for
                // another bundle): the pieces kept of the old one go, so they are not mixed with the new one.
                if self.reassembler.conflicts(f, from: from) {
                    do { try self.store.dropTransfer(from: from, transfer: f.transfer) } catch {
                        self.reject("cannot drop the old pieces of transfer \(f.transfer) from \(from.short): \(error)")
                    }
                }
                // Not kept (a full disk): used from memory all the same, as the replay window is (the bundle it
                // completes is acknowledged only once stored, so nothing is lost; a restart meanwhile costs a resend).
                _ = self.storing("store a received fragment", link: link) { try self.store.saveFragment(f, from: from, now: Int64(now)) }
                switch self.reassembler.add(f, from: from, now: Int64(now)) {
                case .complete(let bytes, let ack):
                    guard self.handleBundleBytes(bytes, from: from, link: link, now: now) else {
                        // Not stored: the last fragment is not acknowledged, so the sender sends it again (and
                        // keeps the bundle); its retransmission completes the transfer again.
                        self.reassembler.reopen(sender: from, transfer: f.transfer)
                        continue
                    }
                    // Left (a full disk): the pieces are dropped when the transfer times out.
                    _ = self.storing("drop the pieces of a completed transfer", link: link) { try self.store.dropTransfer(from: from, transfer: f.transfer) }
                    if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now) }
                case .incomplete(let ack):
                    if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now, complete: false) }
                case .duplicate(let ack):
                    if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now) }
                case .rejected(let why): self.reject("fragment: \(why)")
                }
            default: break
            }
        }
        // A contact (after what this packet told us): send our summary if we may hold news for them.
        if contact && self.mayHoldNews(for: from, since: previous) {
            self.wantSummary(link, now: now, 0.1, 1.5)
        }
        self.outputs += self.tick(now: now)
        return self.drain()
    }

    /// Whether a neighbour met again (or for the first time) may lack something we would send it: a flooded bundle
    /// we hold that it is not known to have, or a directed bundle with no route stored since it was last heard.
    func mayHoldNews(for n: NodeID, since previous: Double?) -> Bool {
        if let p = previous, self.lastUnroutableAt > p - 60 { return true }
        // Unreadable: no summary now (the periodic one follows).
        for h in self.storing("read the bundles held", { try self.store.held() }) ?? [] {
            if case .node = h.destination { continue }
            if !self.isHolder(h.id, n) && !(self.told[h.id]?.contains(n) ?? false) { return true }
        }
        return false
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
        if l.helloAnswered.count >= 1_024 { l.helloAnswered = l.helloAnswered.filter { now - $0.value < Self.helloAnswerInterval } }
        l.helloAnswered[sender] = now
        if l.announceDue || l.helloAnswerWaiting {
            // One announce answers every hello heard before it goes out.
            self.links[link] = l
            return
        }
        Self.refillHelloTokens(&l, now: now)
        if l.helloTokens >= 1 {
            l.helloTokens -= 1
            l.announceDue = true
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

    func reject(_ why: String) {
        self.stats.rejected += 1
        self.emit(.event(.rejected(why)))
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
        do { keys = try NodePublicKeys(signing: s, agreement: g) } catch {
            // Forgotten, so a later announce with good keys is taken.
            self.partialAnnounces[short] = nil
            self.reject("announce from \(short) with keys that are not valid: \(error)")
            return nil
        }
        guard keys.nodeID.short == short else {
            self.reject("announce whose keys do not match its short id \(short)")
            return nil
        }
        let id = keys.nodeID
        if id != self.me && id.short == self.me.short {
            self.reject("another node (\(id)) has our short id \(short): restart one of them with a new identity")
        }
        if case .members(let members) = self.config.trust, !members.contains(keys) {
            // Not in the federation's membership list: known for packets, but its bundles are refused.
        }
        self.learn(keys)
        if let name = p.name { self.neighbours[id, default: Neighbour(id: id)].name = name }
        return id
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
        for (k, t) in self.transfers where k.bundle == b.id && k.target?.short == next && t.sent.isEmpty {
            self.transfers[k] = nil
        }
    }

    /// A bundle received from a neighbour. Returns whether it is settled here (stored, delivered, already here, or
    /// refused and reported) and may be acknowledged; false when it could not be stored (a full disk): then it is
    /// not acknowledged, and the sender keeps it and tries again.
    @discardableResult
    func handleBundleBytes(_ bytes: [UInt8], from: NodeID, link: String, now: Double) -> Bool {
        let b: CourierBundle
        do { b = try CourierBundle(decoding: bytes) } catch {
            self.reject("bundle from \(from.short): \(error)")
            return true
        }
        let nowMinutes = UInt64(CourierTime.minutes(unixSeconds: Int64(now)))
        if b.expires <= nowMinutes { return true }
        // A copy of a flood we are about to rebroadcast: one more neighbour has it; a repair someone else just
        // sent need not be sent again.
        if self.floods[b.id] != nil { self.floods[b.id]!.heard += 1 }
        self.noteHolder(b.id, from, now: now)
        // Only a receipt its origin signed says anything (a forged one would suppress copies and pulls).
        if b.kind == .receipt, self.judge(b) == .proven { self.receiptEvidence(b, from: from, link: link, now: now) }
        for (k, t) in self.transfers where k.bundle == b.id && k.link == link && k.target == nil && t.sent.isEmpty && t.due > now {
            self.transfers[k] = nil
        }
        // Unreadable (an I/O error): not settled, so not acknowledged; the sender keeps it and tries again.
        guard let seen = self.storing("look up a received bundle", link: link, { try self.store.hasSeen(b.id) }) else { return false }
        if seen {
            self.emit(.event(.duplicate(b.id)))
            return true
        }
        if let why = self.distrust(b) {
            self.reject(why)
            self.refuse(b, why: why, from: from.short.description, now: now)
            return true
        }
        // Route learning: the origin is reachable through the neighbour it came from.
        let hops = Int(self.config.hopLimit) - Int(b.hopLimit)
        if b.origin != self.me.short, (self.routes[b.origin].map { $0.hops >= hops || now - $0.at > self.config.neighbourTimeout } ?? true) {
            self.routes[b.origin] = (from, max(hops, 0), now)
        }
        switch self.accept(b, from: from.short, source: from.short.description, now: now) {
        case .stored:
            self.afterStoring(b, from: from, now: now, local: false)
            return true
        case .notStored: return false
        case .delivered, .duplicate, .waiting, .failed: return true
        }
    }

    /// Reports a bundle refused (untrusted origin, bad signature) once: in the change feed, and to its origin when
    /// it was addressed to one node (the hop was acknowledged; without a word it would be lost in silence).
    func refuse(_ b: CourierBundle, why: String, from: String?, now: Double) {
        guard self.refusedReported.insert(b.id).inserted else { return }
        if self.refusedReported.count > 4_096 { self.refusedReported = [b.id] }
        do { try self.store.refused(b, reason: why, from: from, now: Int64(now), unsigned: !b.isSigned) } catch { self.reject("cannot record \(b.id) refused: \(error)") }
        if case .node = b.destination { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
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
    func accept(_ b: CourierBundle, from: ShortID?, source: String, now: Double) -> Acceptance {
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
                                                                    classes: [self.admittedClass(b, proof: proof)])
            for e in evicted {
                // The feed has it (and the store's log); a directed bundle in our custody is given up on: tell its origin.
                guard case .node = e.destination, e.custody else { continue }
                self.emit(.event(.gaveUp(e.id, reason: "evicted: the queue is full of more urgent bundles")))
                if !e.isLocal { self.notifyFailure(e.id, kind: e.kind, .evicted, now: now) }
            }
            switch results[0] {
            case .stored: break
            case .refused:
                // No room (the feed says so): the hop was acknowledged, so the origin is told.
                let why = "refused: our queue is full"
                self.emit(.event(.gaveUp(b.id, reason: why)))
                if directed { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
                return .failed(why)
            case .duplicate, .expired: return .duplicate
            }
        } catch {
            self.reject("cannot store \(b.id), not acknowledged (kept by its sender): \(error)")
            self.storageFailed("store a received bundle", self.storeError(error))
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
            self.reject("\(b.id) stored and passed on, but not put in the inbox: \(e)")
        } catch {
            // Not readable here (end-to-end encrypted to a group, or a dictionary we lack): carried on unread.
        }
        if b.kind == .alert {
            self.queueReceipt(for: b.id, now: now, within: self.config.minFloodDelay + self.rng.uniform(0, 1) * self.maxAirtime * self.config.alertReceiptAirtimes)
        }
        return .stored(delivered: delivered)
    }

    /// Remembers a directed bundle (see `directedSeen`).
    func noteDirected(_ id: BundleID) {
        if self.directedSeen.count >= 8_192 { self.directedSeen.removeAll() }
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

    /// Neighbours heard within the timeout on an up link.
    func freshNeighbours(now: Double) -> [(id: NodeID, link: String)] {
        self.neighbours.keys.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }.compactMap { id in
            guard id != self.me, let l = self.freshLink(id, now: now) else { return nil }
            return (id, l)
        }
    }

    /// A receipt heard from a neighbour says the neighbour has the listed bundles (its own receipt, or one it passes
    /// on towards their origin, the way their copies came), and so has the receipt's origin: they need no copy from
    /// us. If we lack one, and the receipt is the neighbour's own or receipts from two nodes list it (a flood: a
    /// directed bundle is receipted by its destination alone), we ask for it with our summary after `pullDelay` (the
    /// flood usually brings it meanwhile).
    func receiptEvidence(_ b: CourierBundle, from: NodeID, link: String, now: Double) {
        let content: [UInt8]
        do { content = try b.content(compressor: self.compressor) } catch {
            self.reject("receipt \(b.id) from \(b.origin): cannot read its content: \(error)")
            return
        }
        for id in ReceiptContent.decode(content) {
            self.noteHolder(id, from, now: now)
            // The receipt's own origin has it too, wherever on its way to the bundle's origin we hear it.
            for o in self.directory[b.origin] ?? [] where o != from && self.neighbours[o] != nil { self.noteHolder(id, o, now: now) }
            // Receipts from two or more nodes for one bundle: a flood (a directed bundle has one receipt, from its
            // destination).
            // Unreadable: nothing asked for now (a summary later asks).
            guard let seen = self.storing("look up a bundle a receipt lists", link: link, { try self.store.hasSeen(id) }) else { continue }
            var flooded = false
            if b.origin != from.short, !seen {
                self.receiptOrigins[id, default: []].insert(b.origin)
                flooded = self.receiptOrigins[id]!.count >= 2
            }
            if b.origin == from.short || flooded, self.pulls[id.digest] == nil, !seen {
                self.pulls[id.digest] = Pull(link: link, due: now + self.config.pullDelay * self.rng.uniform(1, 1.5), since: now)
            }
        }
    }

    /// Asks for our summary on a link (every up link when nil), `lo` to `hi` seconds from now.
    func wantSummary(_ link: String?, now: Double, _ lo: Double, _ hi: Double) {
        for name in link.map({ [$0] }) ?? self.linkOrder {
            guard var l = self.links[name], l.up else { continue }
            l.summaryDue = min(l.summaryDue ?? .infinity, now + self.rng.uniform(lo, hi))
            self.links[name] = l
        }
    }

    /// What a bundle's origin signature shows here (SPEC 6.12).
    enum OriginProof: Equatable {
        /// Signed, and the signature verifies with the keys known for its origin.
        case proven
        /// Unsigned, of a kind that may be (from an older relay, 11.4): accepted with `trust = network`, shown as not
        /// proven.
        case unproven
        /// Signed by an origin whose keys are not known here yet: cannot be checked.
        case keysUnknown
        case refused(String)
    }

    /// Kinds whose origin signature is required (SPEC 6.8): unsigned ones are refused wherever they arrive.
    static func signatureRequired(_ k: Kind) -> Bool {
        switch k {
        case .alert, .receipt, .identity, .failure: return true
        default: return false
        }
    }

    /// Checks a bundle's origin: trust list, required signature, signature against the origin's known keys (every
    /// candidate of its short id, 2.3). Identity bundles are checked against the keys they carry (`takeIdentity`).
    func judge(_ b: CourierBundle) -> OriginProof {
        var members: [NodePublicKeys]? = nil
        if case .members(let m) = self.config.trust { members = m }
        if let m = members, !m.contains(where: { $0.nodeID.short == b.origin }) {
            return .refused("\(b.id): origin is not a federation member")
        }
        guard b.isSigned else {
            if Self.signatureRequired(b.kind) { return .refused("\(b.id): unsigned \(b.kind): its kind must be origin-signed (SPEC 6.8)") }
            if self.config.openMode { return .refused("\(b.id): unsigned bundle in open mode") }
            if members != nil { return .refused("\(b.id): unsigned \(b.kind): trust = peers accepts only bundles whose origin signature proves them") }
            return .unproven
        }
        if b.kind == .identity { return .proven }
        var candidates = (self.directory[b.origin] ?? []).compactMap { self.keys[$0] }
        if let m = members { candidates = candidates.filter { m.contains($0) } }
        guard !candidates.isEmpty else { return .keysUnknown }
        return candidates.contains(where: { b.verifySignature(originKeys: $0) }) ? .proven : .refused("\(b.id): origin signature does not verify")
    }

    /// Why a bundle is refused from its origin (nil: it is not, though it may wait for its origin's keys).
    func distrust(_ b: CourierBundle) -> String? {
        if case .refused(let why) = self.judge(b) { return why }
        return nil
    }

    /// The class a bundle from the network is queued and sent in (SPEC 6.9): its P override may lower its kind's
    /// class freely, but raise it only when its origin is proven, and never above its kind's bound: only alerts are
    /// urgent; aid requests, offers, grievances and texts at most aid; everything else at most normal. So a member
    /// cannot make bulk outrank alerts, or push custody out of the queue, by writing a priority in a header.
    func admittedClass(_ b: CourierBundle, proof: OriginProof) -> PriorityClass {
        let normal = b.kind.defaultPriority
        let claimed = b.priority
        if claimed >= normal { return claimed }
        guard proof == .proven else { return normal }
        let bound: PriorityClass
        switch b.kind {
        case .alert: bound = .urgent
        case .aidRequest, .aidOffer, .grievance, .text: bound = .aid
        default: bound = .normal
        }
        return max(claimed, min(bound, normal))
    }

    /// Keeps a bundle this node cannot check yet (its origin's keys are unknown) and asks the origin for its keys.
    func holdForKeys(_ b: CourierBundle, source: String?, now: Double) -> Acceptance {
        let why = "signed by \(b.origin), whose keys are not known here yet: kept unread, not passed on, until they arrive (asked for them)"
        do {
            guard try self.store.keepUnread(b, reason: why, from: source, now: Int64(now)) else { return .duplicate }
        } catch {
            self.reject("cannot keep \(b.id), not acknowledged (kept by its sender): \(error)")
            return .notStored("cannot keep: \(error)")
        }
        self.emit(.event(.waiting(b.id, reason: why)))
        self.requestKeys(of: b.origin, now: now)
        // A flood: the neighbour that passed it on most likely holds the origin's identity flood (9.1), which our
        // summary brings sooner than the key request's answer.
        if case .node = b.destination {} else { self.wantSummary(nil, now: now, 0.1, 2) }
        return .waiting(why)
    }

    func trusted(_ b: CourierBundle) -> Bool {
        guard let why = self.distrust(b) else { return true }
        self.reject(why)
        return false
    }

    enum Reading {
        case content([UInt8])
        /// End-to-end encrypted by an origin whose keys are not known here.
        case needKeys
        case unreadable(String)
    }

    /// The content of a bundle for this node: decrypted with each candidate origin key (2.3) and decompressed.
    func read(_ b: CourierBundle) -> Reading {
        guard b.isEncrypted else {
            do { return .content(try b.content(compressor: self.compressor)) } catch { return .unreadable("cannot read its content: \(error)") }
        }
        let candidates = (self.directory[b.origin] ?? []).compactMap { self.keys[$0] }.filter { $0.nodeID != self.me || b.origin == self.me.short }
        guard !candidates.isEmpty else { return .needKeys }
        var problem: WireError = .decryptionFailed
        for k in candidates {
            do { return .content(try b.content(compressor: self.compressor, recipient: self.config.identity, originKeys: k)) } catch { problem = error }
        }
        return .unreadable("cannot decrypt it with the keys of \(b.origin) known here (\(problem))")
    }

    /// A directed bundle for this node: delivered and receipted, kept unread until its origin's keys arrive, or
    /// given up on (reported in the feed and to its origin).
    func readDirected(_ b: CourierBundle, source: String?, now: Double) -> Acceptance {
        if b.kind == .identity {
            // Read already (`takeIdentity`); nothing for the inbox, no receipt.
            do { try self.store.markSeen(b) } catch { self.reject("cannot record \(b.id): \(error)") }
            return .delivered
        }
        switch self.read(b) {
        case .content(let content):
            do { try self.deliver(b, content: content, now: now) } catch .inboxFull(let limit) {
                // Refused (the feed, the log and `relay status` say so) and the origin is told: nothing unread is
                // dropped to make room, and the sender does not retry into a full inbox.
                let why = "refused: the inbox is full of unread messages (\(limit) bytes, inbox-mb)"
                do { try self.store.markSeen(b) } catch { self.reject("cannot record \(b.id): \(error)") }
                self.emit(.event(.gaveUp(b.id, reason: why)))
                self.notifyFailure(b.id, kind: b.kind, .refused, now: now)
                return .failed(why)
            } catch {
                self.reject("cannot deliver \(b.id), not acknowledged (kept by its sender): \(error)")
                return .notStored("cannot deliver: \(error)")
            }
            if b.kind == .failure { self.handleFailure(b, content: content, now: now) }
            if b.kind != .receipt && b.kind != .failure { self.queueReceipt(for: b.id, now: now) }
            return .delivered
        case .needKeys:
            let why = "end-to-end encrypted by \(b.origin), whose keys are not known here yet: kept until they arrive (asked for them)"
            do {
                guard try self.store.keepUnread(b, reason: why, from: source, now: Int64(now)) else { return .duplicate }
            } catch {
                self.reject("cannot keep \(b.id), not acknowledged (kept by its sender): \(error)")
                return .notStored("cannot keep: \(error)")
            }
            self.emit(.event(.waiting(b.id, reason: why)))
            self.requestKeys(of: b.origin, now: now)
            return .waiting(why)
        case .unreadable(let why):
            do { try self.store.gaveUp(b, reason: "unreadable: \(why)", from: source, now: Int64(now)) } catch {
                self.reject("cannot record \(b.id): \(error)")
            }
            self.emit(.event(.gaveUp(b.id, reason: "unreadable: \(why)")))
            self.notifyFailure(b.id, kind: b.kind, .unreadable, now: now)
            return .failed(why)
        }
    }

    /// Reads the bundles kept for want of the keys that arrived since the last tick.
    func readWaiting(now: Double) {
        let arrived = self.keysArrived
        self.keysArrived = []
        let kept: [WaitingBundle]
        do { kept = try self.store.waiting() } catch {
            self.reject("cannot read the bundles waiting for keys: \(error)")
            return
        }
        for w in kept where arrived.contains(w.id.origin) {
            let b: CourierBundle
            do { b = try CourierBundle(decoding: w.data) } catch {
                do {
                    try self.store.dropUnread(w.id, gaveUp: "damaged in the store: \(error)", now: Int64(now))
                } catch let dropError {
                    self.reject("cannot drop the damaged waiting bundle \(w.id): \(dropError)")
                }
                continue
            }
            switch self.judge(b) {
            case .keysUnknown: continue
            case .refused(let why):
                // The keys came, and the signature is not the origin's: a forgery, refused and reported.
                do { try self.store.dropUnread(b.id, now: Int64(now)) } catch { self.reject("cannot drop \(b.id): \(error)") }
                self.reject(why)
                self.refuse(b, why: why, from: nil, now: now)
                continue
            case .proven, .unproven: break
            }
            if case .needKeys = self.read(b) { continue }
            // Taken in now as if it had just arrived: delivered (and receipted), flooded on, or given up on.
            do { try self.store.releaseUnread(b.id) } catch {
                self.reject("cannot take in \(b.id) kept for keys: \(error)")
                continue
            }
            switch self.accept(b, from: nil, source: "kept for keys", now: now) {
            case .stored: self.afterStoring(b, from: nil, now: now, local: false)
            case .delivered:
                // It has waited already: its receipt goes out now rather than after the aggregation delay.
                if b.kind != .receipt && b.kind != .failure && b.kind != .identity { self.queueReceipt(for: b.id, now: now, within: 1) }
            case .duplicate, .waiting, .failed, .notStored: break
            }
        }
    }

    /// Puts a bundle for this node in the inbox (unless a critical extension we do not know forbids it), reading it
    /// first. Identity bundles never go to the inbox.
    func deliverLocally(_ b: CourierBundle, now: Double) throws {
        guard b.kind != .identity else { return }
        switch self.read(b) {
        case .content(let content): try self.deliver(b, content: content, now: now)
        case .needKeys: throw WireError.decryptionFailed
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

    // MARK: Identities, key requests and failure notices

    /// Reads an identity bundle (SPEC 9.1): learns and remembers the keys it carries, and answers a key request
    /// for this node with our own identity. Returns why it is refused (keys not the origin's, bad signature).
    func takeIdentity(_ b: CourierBundle, now: Double) -> String? {
        let c: IdentityContent
        do { c = try IdentityContent.verified(b, compressor: self.compressor) } catch { return "identity bundle \(b.id): \(error)" }
        let id = c.keys.nodeID
        guard id != self.me else { return nil }
        if self.learn(c.keys) { self.emit(.event(.keysLearnt(id, name: c.name))) }
        if let name = c.name, self.neighbours[id] != nil { self.neighbours[id]!.name = name }
        do { try self.store.rememberKeys(c.keys, name: c.name) } catch { self.reject("cannot remember the keys of \(id.short): \(error)") }
        if c.wantsAnswer, case .node(let d) = b.destination, d == self.me.short,
           now - (self.identityAnswers[b.origin] ?? -1e9) >= self.config.keyRequestInterval {
            self.identityAnswers[b.origin] = now
            self.sendIdentity(to: .node(b.origin), wantsAnswer: false, now: now)
        }
        return nil
    }

    /// Makes our identity bundle: flooded to everyone, or to one node (a key request when `wantsAnswer`, or the
    /// answer to one).
    func sendIdentity(to destination: Destination, wantsAnswer: Bool, now: Double) {
        let content = IdentityContent(keys: self.config.identity.publicKeys, name: self.config.name, wantsAnswer: wantsAnswer).encode()
        var opts = BundleOptions(kind: .identity)
        // Requests and answers are for now; the flood lasts a week and is renewed at half its life.
        if case .node = destination { opts.lifetime = 24 * 60 }
        do { _ = try self.make(kind: .identity, destination: destination, content: content, options: opts, now: now) } catch {
            self.reject("cannot make our identity bundle: \(error)")
        }
    }

    /// Asks an origin for its keys (a directed identity bundle with Q set, carrying ours), at most once per
    /// `keyRequestInterval`.
    func requestKeys(of origin: ShortID, now: Double) {
        guard origin != self.me.short, now - (self.keyRequests[origin] ?? -1e9) >= self.config.keyRequestInterval else { return }
        self.keyRequests[origin] = now
        // One made by another process on this store (`relay import`) and not yet passed on is enough.
        do {
            if try self.store.held(kind: .identity, origin: self.me.short).contains(where: { $0.destination == .node(origin) }) { return }
        } catch {
            self.reject("cannot read our key requests: \(error)")
        }
        self.sendIdentity(to: .node(origin), wantsAnswer: true, now: now)
    }

    /// Floods our identity bundle when we hold none with more than half its lifetime left.
    func renewIdentity(now: Double) {
        let nowMinutes = Int64(CourierTime.minutes(unixSeconds: Int64(now)))
        let held: [(id: BundleID, destination: Destination, expires: Int64)]
        do { held = try self.store.held(kind: .identity, origin: self.me.short) } catch {
            self.reject("cannot read our identity bundle: \(error)")
            return
        }
        let fresh = held.contains { $0.destination == .everyone && $0.expires - nowMinutes > Int64(Kind.identity.defaultLifetime / 2) }
        if !fresh { self.sendIdentity(to: .everyone, wantsAnswer: false, now: now) }
    }

    /// Tells an origin that we gave up on one of its bundles (not for receipts, identities or notices themselves).
    func notifyFailure(_ id: BundleID, kind: Kind, _ reason: FailureReason, now: Double) {
        guard id.origin != self.me.short, kind != .receipt, kind != .identity, kind != .failure else { return }
        do {
            _ = try self.make(kind: .failure, destination: .node(id.origin), content: FailureContent.encode([(id, reason)]), options: nil, now: now)
        } catch {
            self.reject("cannot make a failure notice for \(id): \(error)")
        }
    }

    /// A failure notice for this node: a relay gave up on some of our bundles.
    func handleFailure(_ b: CourierBundle, content: [UInt8], now: Double) {
        for (id, reason) in FailureContent.decode(content) where id.origin == self.me.short {
            do { try self.store.failed(id, reason: "\(reason), reported by \(b.origin)", by: b.origin, now: Int64(now)) } catch {
                self.reject("cannot record the failure notice for \(id): \(error)")
            }
            self.emit(.event(.failureNotice(id, reason: reason, by: b.origin)))
        }
    }

    // MARK: After storing: flooding and routing

    func afterStoring(_ b: CourierBundle, from: NodeID?, now: Double, local: Bool) {
        switch b.destination {
        case .everyone, .group:
            if let from { self.noteHolder(b.id, from, now: now) }
            guard local || b.hopLimit > 0 else { return }
            // The origin sends at once; relays wait a random time and count copies they hear meanwhile. Relays with
            // more neighbours not known to have it go sooner (their copy helps more, and may spare the others').
            let fresh = self.freshNeighbours(now: now)
            let uncovered = fresh.filter { !self.isHolder(b.id, $0.id) }.count
            // Alerts: neighbours that have it say so with their receipts first (sent within `alertReceiptAirtimes`).
            let wait = b.kind == .alert && self.isForMe(b) ? self.maxAirtime * (self.config.alertReceiptAirtimes + 1) : 0
            let delay = local ? 0 : wait + self.floodDelay(uncovered: uncovered)
            self.floods[b.id] = PendingFlood(due: now + delay)
        case .node:
            self.noteDirected(b.id)
            self.routeDirected(b.id, now: now)
            // No route: tell the neighbours what we hold, so one that is (or knows) the destination answers.
            if !self.transfers.values.contains(where: { $0.key.bundle == b.id && $0.custody }) {
                self.lastUnroutableAt = now
                self.wantSummary(nil, now: now, 0.1, 5)
            }
        }
    }

    /// A random delay before a rebroadcast or repair: up to `floodDelayAirtimes` packet airtimes, divided by the
    /// number of neighbours not known to have the bundle when given.
    func floodDelay(uncovered: Int? = nil) -> Double {
        let window = max(self.config.minFloodDelay * 2, self.maxAirtime * self.config.floodDelayAirtimes)
        let scale = uncovered.map { 1 / Double(max(1, $0)) } ?? 1
        return self.config.minFloodDelay + self.rng.uniform(0, 1) * (window - self.config.minFloodDelay) * scale
    }

    /// A random delay before answering a summary with what it lacks: up to three packet airtimes (another holder's
    /// copy heard meanwhile cancels ours).
    func answerDelay() -> Double {
        self.config.minFloodDelay + self.rng.uniform(0, 1) * self.maxAirtime * 3
    }

    /// The neighbour to hand a directed bundle to: the destination itself, or the neighbour a route goes through.
    func nextHop(for dest: ShortID, now: Double) -> (NodeID, String)? {
        for id in self.directory[dest] ?? [] where id != self.me {
            if let l = self.freshLink(id, now: now) { return (id, l) }
        }
        if let r = self.routes[dest], now - r.at < self.config.neighbourTimeout * 4, let l = self.freshLink(r.via, now: now) {
            return (r.via, l)
        }
        return nil
    }

    /// The operator cancelled a queued bundle (`relay queue cancel`): transfers of it under way stop (their
    /// records are in memory) and a pending rebroadcast is dropped, so nothing more of it leaves this relay.
    public func cancelled(_ id: BundleID) {
        for k in self.transfers.keys where k.bundle == id { self.transfers[k] = nil }
        self.floods[id] = nil
    }

    /// Where a directed bundle to each node known here would go now (the node itself when it is a fresh neighbour,
    /// else the neighbour a fresh route goes through); `relay queue list` shows it as the next hop.
    public func nextHops(now: Double) -> [(to: ShortID, via: ShortID, link: String)] {
        Set(self.directory.keys).union(self.routes.keys).sorted { $0.rawValue < $1.rawValue }.compactMap { d in
            guard d != self.me.short, let (via, link) = self.nextHop(for: d, now: now) else { return nil }
            return (d, via.short, link)
        }
    }

    /// The up link a neighbour was heard on most recently, if within the timeout.
    func freshLink(_ id: NodeID, now: Double) -> String? {
        guard let n = self.neighbours[id], n.unresponsiveSince.map({ now - $0 >= Self.unresponsiveProbe }) ?? true else { return nil }
        return n.lastHeard.filter { now - $0.value < self.config.neighbourTimeout && self.links[$0.key]?.up == true }
            .max { $0.value < $1.value }?.key
    }

    func routeDirected(_ id: BundleID, now: Double) {
        // Unreadable: routed at the next housekeeping.
        guard let found = self.storing("read a bundle to route it", { try self.store.bundle(id) }), let q = found, q.custody,
              case .node(let dest) = q.destination else { return }
        guard !self.transfers.values.contains(where: { $0.key.bundle == id && $0.custody }) else { return }
        guard let (hop, link) = self.nextHop(for: dest, now: now) else {
            // No route yet: hand copies to a few neighbours now (a relay further on may know the way, or a
            // courier may carry it); we keep custody until a receipt says it arrived.
            let given = self.replicas[id, default: []]
            guard given.count < Self.maxReplicas else { return }
            let candidates = self.neighbours.values
                .filter { $0.id != self.me && $0.id.short != id.origin && !given.contains($0.id) && self.freshLink($0.id, now: now) != nil }
                .sorted { ($0.lastHeard.values.max() ?? 0, $0.id.description) > ($1.lastHeard.values.max() ?? 0, $1.id.description) }
            for n in candidates.prefix(Self.maxReplicas - given.count) {
                guard let l = self.freshLink(n.id, now: now) else { continue }
                self.replicas[id, default: []].insert(n.id)
                self.startTransfer(q, link: l, target: n.id, custody: false, now: now)
            }
            return
        }
        self.startTransfer(q, link: link, target: hop, custody: true, now: now)
    }

    /// Starts sending a bundle on a link, to one neighbour (acknowledged) or to all in range. A `delay` lets other
    /// holders answer first: overhearing one of them send it to the same neighbour cancels ours.
    func startTransfer(_ q: QueuedBundle, link: String, target: NodeID?, custody: Bool, now: Double, delay: Double = 0) {
        let key = TransferKey(link: link, target: target, bundle: q.id)
        guard self.transfers[key] == nil, let l = self.links[link] else { return }
        var data = q.data
        // Relays spend one hop; the origin's copy goes out as made.
        if !q.isLocal, !data.isEmpty {
            let hop = data[0] >> 4
            guard hop > 0 || target != nil else { return }
            data[0] = (hop > 0 ? hop - 1 : 0) << 4 | data[0] & 0x0F
        }
        guard let number = self.takeTransferNumber(for: q.id) else { return }
        let records: [Record]
        do {
            records = try Fragmenter.records(
                bundle: data, mtu: target == nil ? l.info.properties.mtu : self.fragmentMTU(l), transfer: number, nextHop: target?.short,
                wantAck: target != nil)
        } catch {
            self.reject("cannot cut \(q.id) into fragments for \(link), not sent there: \(error)")
            return
        }
        self.transferOrder += 1
        self.transfers[key] = Transfer(
            key: key, number: number, priority: q.priority, order: self.transferOrder, records: records,
            due: now + delay, custody: custody)
    }

    // MARK: Acks, summaries, receipts

    func queueAck(_ e: AckEntry, to: ShortID, link: String, now: Double, complete: Bool = true) {
        guard var l = self.links[link] else { return }
        l.acks[to, default: [:]][e.transfer] = e
        if complete { l.partialAcks[to]?.remove(e.transfer) } else { l.partialAcks[to, default: []].insert(e.transfer) }
        // Complete transfers are acknowledged quickly; partial ones after a pause, so one ack covers a window.
        let delay = complete ? self.config.ackDelay : self.config.ackDelay * 4
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

    func handleAck(_ a: AckRecord, from: NodeID, link: String, now: Double) {
        for e in a.entries {
            guard let found = self.transfers.first(where: { $0.key.link == link && $0.key.target == from && $0.value.number == e.transfer }) else { continue }
            let key = found.key
            var t = found.value
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
                        n.rttvar = 0.75 * n.rttvar + 0.25 * abs(s - sample)
                        n.srtt = 0.875 * s + 0.125 * sample
                    } else {
                        n.srtt = sample
                        n.rttvar = sample / 2
                    }
                }
                self.neighbours[from] = n
            }
            // Not kept (a full disk): after a restart the acknowledged fragments are sent again, nothing is lost.
            if let found = self.storing("read an acknowledged bundle", link: link, { try self.store.bundle(key.bundle) }), let q = found {
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

    func handleSummary(_ s: SummaryRecord, from: NodeID, link: String, now: Double) {
        self.summaries[from, default: []].formUnion(s.digests)
        guard s.isFinal else { return }
        let theirs = self.summaries.removeValue(forKey: from) ?? []
        for id in self.holders.keys.sorted() where theirs.contains(id.digest) {
            self.noteHolder(id, from, now: now)
        }
        // They hold something we lack: answer with our summary, so they send it (once an hour per digest: what they
        // do not send then, they will not send on a second asking).
        // Unreadable: nothing asked for now (their next summary asks).
        if let mine = self.storing("read the bundles seen", link: link, { try self.store.seenDigests() }).map(Set.init) {
            let unknown = theirs.subtracting(mine).filter { self.pulls[$0] == nil }
            if !unknown.isEmpty {
                let due = now + self.rng.uniform(0.1, 2)
                for d in unknown { self.pulls[d] = Pull(link: link, due: due, since: now, fromReceipt: false) }
            }
        }
        // Send what they lack: floods to all, directed bundles we hold custody of (a copy; custody stays with us
        // unless they are the destination).
        guard let held = self.storing("read the bundles held", link: link, { try self.store.held() }) else { return }
        let lacking = held.filter { h in
            guard !theirs.contains(h.digest) else { return false }
            if case .node = h.destination { return h.custody }
            return true
        }
        guard !lacking.isEmpty,
              let bundles = self.storing("read the bundles a neighbour lacks", link: link, { try self.store.bundles(digests: lacking.map(\.digest)) })
        else { return }
        let wanted = Set(lacking.map(\.id))
        for q in bundles where wanted.contains(q.id) {
            switch q.destination {
            case .everyone, .group:
                if !q.isLocal, q.data.first.map({ $0 >> 4 == 0 }) == true { continue }
                // A broadcast after a random delay: every neighbour that lacks it can take it, and a holder that
                // hears another holder send it first stands down.
                self.startTransfer(q, link: link, target: nil, custody: false, now: now, delay: self.answerDelay())
            case .node(let d):
                guard q.custody else { continue }
                if d == from.short {
                    // The destination itself: custody moves to it.
                    self.startTransfer(q, link: link, target: from, custody: true, now: now, delay: self.answerDelay())
                } else if self.nextHop(for: d, now: now) == nil, self.replicas[q.id, default: []].count < Self.maxReplicas,
                          !self.replicas[q.id, default: []].contains(from) {
                    // No route: give a copy to a few neighbours we meet (a courier may carry it); we keep custody.
                    self.replicas[q.id, default: []].insert(from)
                    self.startTransfer(q, link: link, target: from, custody: false, now: now, delay: self.answerDelay())
                }
            }
        }
    }

    /// Queues a receipt to `id`'s origin, aggregated with others to that origin for `receiptDelay`, or sent within
    /// `within` seconds (an alert's: its neighbours, deciding whether to pass the alert on, learn from it that we have
    /// it).
    func queueReceipt(for id: BundleID, now: Double, within: Double? = nil) {
        guard id.origin != self.me.short else { return }
        var r = self.receipts[id.origin] ?? ([], now + self.config.receiptDelay)
        if !r.ids.contains(id) { r.ids.append(id) }
        if let w = within { r.due = min(r.due, now + w) }
        self.receipts[id.origin] = r
    }

    /// The most bundle ids one receipt lists (about 4.5 KB of content).
    static let receiptMaxIDs = 500

    /// The longest packet's airtime on any link.
    var maxAirtime: Double {
        self.links.values.map { $0.info.properties.airtime(bytes: $0.info.properties.mtu) }.max() ?? 0
    }

    func handleReceipt(_ b: CourierBundle, now: Double) {
        let content: [UInt8]
        do { content = try b.content(compressor: self.compressor) } catch {
            self.reject("receipt \(b.id) from \(b.origin): cannot read its content: \(error)")
            return
        }
        for id in ReceiptContent.decode(content) {
            if id.origin == self.me.short, case .node(let dest) = b.destination, dest == self.me.short {
                self.emit(.event(.receipt(id, by: b.origin)))
            }
            // A delivered directed bundle need not travel further: drop our copy ("vaccination").
            // Not removed (a full disk): kept, and passed on as before, until a later receipt or its expiry.
            if let found = self.storing("read a bundle a receipt names", { try self.store.bundle(id) }), let q = found,
               case .node(let d) = q.destination, d == b.origin,
               self.storing("remove a delivered bundle", { try self.store.remove(id, reason: "delivered (receipt from \(b.origin))", now: Int64(now)) }) != nil {
                for k in self.transfers.keys where k.bundle == id { self.transfers[k] = nil }
            }
        }
    }

    // MARK: Ticks

    /// Removes what expired; reports what was given up on (directed bundles in our custody, bundles kept unread)
    /// and tells their origins.
    func expireBundles(now: Double) {
        let expired: [Store.Expired]
        do { expired = try self.store.expireBundles(now: Int64(now)) } catch {
            self.reject("cannot expire bundles: \(error)")
            return
        }
        for e in expired {
            if e.unread {
                self.emit(.event(.gaveUp(e.id, reason: "unreadable: its lifetime passed and the keys of its origin \(e.id.origin) never arrived")))
                if case .node = e.destination { self.notifyFailure(e.id, kind: e.kind, .unreadable, now: now) }
            } else if case .node(let d) = e.destination, e.custody {
                self.emit(.event(.gaveUp(e.id, reason: "expired: its lifetime passed before it reached \(d)")))
                if !e.isLocal { self.notifyFailure(e.id, kind: e.kind, .expired, now: now) }
            } else {
                self.emit(.event(.expired(e.id)))
            }
        }
    }

    /// Advances timers and sends what can be sent now.
    /// Makes the receipts whose aggregation time is up (all of them with `all`), as bundles in the store.
    /// At most `receiptMaxIDs` ids a receipt: an archive can deliver tens of thousands of one origin's bundles at
    /// once, and one receipt for all would exceed the bundle size limit.
    func makeReceipts(now: Double, all: Bool = false) {
        for (origin, r) in self.receipts.sorted(by: { $0.key < $1.key }) where all || r.due <= now {
            self.receipts[origin] = nil
            for start in stride(from: 0, to: r.ids.count, by: Self.receiptMaxIDs) {
                let ids = Array(r.ids[start..<min(start + Self.receiptMaxIDs, r.ids.count)])
                do { _ = try self.make(kind: .receipt, destination: .node(origin), content: ReceiptContent.encode(ids), options: nil, now: now) } catch let e as StoreError {
                    // Not stored (a full disk): kept in memory and made again in a minute.
                    self.storageFailed("store a receipt for \(ids.count) bundles of \(origin)", e)
                    var again = self.receipts[origin] ?? ([], now + Self.receiptRetry)
                    again.ids += ids.filter { !again.ids.contains($0) }
                    self.receipts[origin] = again
                } catch {
                    self.reject("cannot make the receipt for \(ids.count) bundles of \(origin): \(error)")
                }
            }
        }
    }

    /// The relay is stopping: what waits only in memory is made durable now. Receipts still being aggregated are
    /// made and stored (sent at the next start) instead of lost, so origins learn of what was delivered just before.
    /// Returns the events (a receipt that could not be stored is reported).
    public func stopping(now: Double) -> [NodeOutput] {
        self.makeReceipts(now: now, all: true)
        return self.drain().filter { if case .send = $0 { return false } else { return true } }
    }

    public func tick(now: Double) -> [NodeOutput] {
        self.applyKeyRotation(now: now)
        if now - self.lastHousekeeping >= 60 {
            self.lastHousekeeping = now
            self.expireBundles(now: now)
            if self.config.floodIdentity { self.renewIdentity(now: now) }
            // Origins of bundles still kept unread: ask again (at most once per `keyRequestInterval`).
            do {
                for w in try self.store.waiting() where now - Double(w.since) >= self.config.keyRequestInterval {
                    self.requestKeys(of: w.id.origin, now: now)
                }
            } catch {
                self.reject("cannot read the bundles waiting for keys: \(error)")
            }
            for k in self.reassembler.expire(now: Int64(now)) {
                // Left (a full disk): dropped again when read back at the next start and timed out.
                if let s = NodeID(bytes: k.sender) {
                    _ = self.storing("drop the pieces of an expired transfer") { try self.store.dropTransfer(from: s, transfer: k.transfer) }
                }
            }
            // Directed bundles in our custody with no transfer under way (no route yet, or the next hop stopped
            // answering): look for a next hop again.
            let active = Set(self.transfers.values.filter(\.custody).map(\.key.bundle))
            // Unreadable: routed, and the tables below pruned, at the next housekeeping.
            let held = self.storing("read the bundles held", { try self.store.held() })
            for h in held ?? [] where h.custody && !active.contains(h.id) {
                if case .node = h.destination { self.routeDirected(h.id, now: now) }
            }
            for (d, p) in self.pulls where p.due == .infinity && now - p.since > 3_600 { self.pulls[d] = nil }
            if self.receiptOrigins.count > 1_024 { self.receiptOrigins.removeAll() }
            // Who holds what is kept while we hold it.
            if let held {
                let ids = Set(held.map(\.id))
                for id in self.holders.keys.sorted() where !ids.contains(id) && self.floods[id] == nil && now - (self.heardOf[id] ?? 0) > 600 {
                    self.holders[id] = nil
                    self.heardOf[id] = nil
                }
                for id in self.told.keys.sorted() where !ids.contains(id) {
                    self.told[id] = nil
                }
            }
            self.pruneTables(now: now)
        }
        if self.rerouteDue {
            self.rerouteDue = false
            let active = Set(self.transfers.values.filter(\.custody).map(\.key.bundle))
            do {
                for h in try self.store.held() where h.custody && !active.contains(h.id) {
                    if case .node = h.destination { self.routeDirected(h.id, now: now) }
                }
            } catch {
                self.reject("cannot read the bundles held to route them again: \(error)")
            }
        }
        if !self.keysArrived.isEmpty { self.readWaiting(now: now) }
        // Floods whose delay ran out.
        for (id, f) in self.floods.sorted(by: { ($0.value.due, $0.key) < ($1.value.due, $1.key) }) where f.due <= now {
            self.floods[id] = nil
            let isOrigin = id.origin == self.me.short
            // Enough copies heard, or every neighbour is known to have it (a node whose only neighbour sent it to
            // us, say): our copy would add nothing.
            let uncovered = self.freshNeighbours(now: now).filter { !self.isHolder(id, $0.id) }.count
            if !isOrigin && (f.heard >= self.config.suppressionThreshold || uncovered < self.config.floodMinUncovered) {
                self.stats.suppressed += 1
                self.emit(.event(.suppressed(id)))
                continue
            }
            // Unreadable: this rebroadcast is not made (a summary later offers it).
            guard let found = self.storing("read a bundle to flood it", { try self.store.bundle(id) }), let q = found else { continue }
            for name in self.linkOrder where self.links[name]?.up == true {
                self.startTransfer(q, link: name, target: nil, custody: false, now: now)
            }
            // Our receipt for it, if still waiting, goes out with it (in the same packet where the link allows it).
            if self.receipts[id.origin]?.ids.contains(id) == true { self.receipts[id.origin]!.due = now }
        }
        // Bundles to ask for again.
        let duePulls = self.pulls.filter { $0.value.due <= now }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }
        // Unreadable: asked for as if not seen (at worst a copy of what we have comes).
        let seen = duePulls.isEmpty ? [] : Set(self.storing("read the bundles seen", { try self.store.seenDigests() }) ?? [])
        for (d, p) in duePulls {
            guard !seen.contains(d), p.tries < (p.fromReceipt ? 5 : 1), var l = self.links[p.link], l.up else {
                self.pulls[d]!.due = .infinity
                continue
            }
            if now - l.lastSummary < self.config.summaryInterval {
                self.pulls[d]!.due = l.lastSummary + self.config.summaryInterval
                continue
            }
            l.summaryDue = now
            if p.fromReceipt && now - l.lastAnnounced > self.config.summaryInterval { l.announceDue = true }
            self.links[p.link] = l
            self.pulls[d]!.due = now + 20 * pow(2, Double(p.tries))
            self.pulls[d]!.tries += 1
        }
        self.makeReceipts(now: now)
        // Announces.
        for name in self.linkOrder {
            guard var l = self.links[name], l.up else { continue }
            // Nobody answered the hello on this link (it may have collided): say it again, up to 3 times.
            if now >= l.nextHelloRetry {
                let answered = self.neighbours.values.contains { ($0.lastHeard[name] ?? -1) >= l.upSince && $0.id != self.me }
                if answered || l.helloRetries >= 3 {
                    l.nextHelloRetry = .infinity
                } else {
                    l.helloRetries += 1
                    l.helloSent = false
                    l.announceDue = true
                    l.summaryDue = now
                    l.nextHelloRetry = now + self.rng.uniform(5, 15) * Double(1 << l.helloRetries)
                }
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
                if self.config.summaryInAnnounces, l.pendingSummary.isEmpty {
                    let pages = self.summaryPages(mtu: l.info.properties.mtu, now: now)
                    let k = self.config.identity.publicKeys
                    let a = Record.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement, name: self.config.name))
                    if pages.count == 1, Packet.announceOverhead + a.encodedSize(last: false)
                        + Record.summary(SummaryRecord(isFinal: true, digests: pages[0])).encodedSize(last: true) + 24 <= l.info.properties.mtu {
                        l.pendingSummary = pages
                        l.summaryWithAnnounce = true
                        l.lastSummary = now
                        if l.summaryDue.map({ $0 <= now + 60 }) == true { l.summaryDue = nil }
                        let held = (self.storing("read the bundles held", link: name, { try self.store.held() }) ?? []).map(\.id)
                        for n in self.freshNeighbours(now: now) where n.link == name {
                            for id in held { self.told[id, default: []].insert(n.id) }
                        }
                    }
                }
            }
            if let due = l.summaryDue, due <= now, now - l.lastSummary >= self.config.summaryInterval {
                // Neighbours in range are told what we hold: they answer if they lack something.
                let held = (self.storing("read the bundles held", link: name, { try self.store.held() }) ?? []).map(\.id)
                for n in self.freshNeighbours(now: now) where n.link == name {
                    for id in held { self.told[id, default: []].insert(n.id) }
                }
                l.summaryDue = nil
                l.lastSummary = now
                l.pendingSummary = self.summaryPages(mtu: l.info.properties.mtu, now: now)
            }
            self.links[name] = l
        }
        if !self.quiet {
            for name in self.linkOrder { self.pump(name, now: now) }
        }
        return self.drain()
    }

    func summaryPages(mtu: Int, now: Double) -> [[UInt32]] {
        // Held bundles first (by priority), then the flooded ones seen and not yet expired (directed ones we no longer
        // hold are left out: see `directedSeen`). Of directed bundles held, only those we would give a neighbour a
        // copy of (in our custody, no route, fewer than `maxReplicas` copies given): the others only make neighbours
        // that lack them ask in vain.
        // Unreadable: no summary now (no pages); the next one is due after `summaryInterval`.
        let moving = Set(self.transfers.values.filter(\.custody).map(\.key.bundle))
        guard let heldNow = self.storing("read the bundles held", { try self.store.held() }),
              let seenNow = self.storing("read the bundles seen", { try self.store.seenDigests() }) else { return [] }
        var digests = heldNow.filter { h in
            guard case .node(let dest) = h.destination else { return true }
            return h.custody && !moving.contains(h.id) && self.nextHop(for: dest, now: now) == nil
                && (self.replicas[h.id]?.count ?? 0) < Self.maxReplicas
        }.map(\.digest)
        let held = Set(digests)
        digests += seenNow.filter { !held.contains($0) && !self.directedSeen.contains($0) }
        let perPage = max(1, (mtu - Packet.overhead - 1) / 4)
        var pages: [[UInt32]] = []
        var i = 0
        repeat {
            pages.append(Array(digests[i..<min(digests.count, i + perPage)]))
            i += perPage
        } while i < digests.count
        return pages
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
        for p in self.pulls.values { t = min(t, p.due) }
        for r in self.receipts.values { t = min(t, r.due) }
        for l in self.links.values where l.up {
            t = min(t, l.nextAnnounce, l.nextHelloRetry, Self.helloAnswerTime(l))
            if let s = l.summaryDue { t = min(t, max(s, l.lastSummary + self.config.summaryInterval)) }
            if let a = l.ackDue { t = min(t, a) }
            if l.busyUntil > now { t = min(t, l.busyUntil) }
            if let d = l.info.dutyCycle, l.tokens <= 0 { t = min(t, now + (-l.tokens) / d + 0.001) }
        }
        for tr in self.transfers.values { t = min(t, tr.due) }
        return max(t, now + 0.001)
    }

    // MARK: Sending

    /// Timeouts without progress before a silent neighbour is given up on.
    static let maxSilentRetries = 5
    /// Backoff exponents: the timeout doubles at each retry up to 2^3 while the neighbour is heard (it is there;
    /// the line loses frames, and waiting longer only lengthens the queue), up to 2^6 when it is silent.
    static let backoffCapHeard = 3
    static let backoffCapSilent = 6
    /// A neighbour given up on is tried again after this many seconds even if not heard (a probe: it may be back in
    /// range without having said anything).
    static let unresponsiveProbe: Double = 300

    func backoffCap(_ target: NodeID?, link: String, now: Double) -> Int {
        guard let t = target, let heard = self.neighbours[t]?.lastHeard[link] else { return Self.backoffCapSilent }
        return now - heard <= self.silenceBeforeGivingUp(link: self.links[link]) ? Self.backoffCapHeard : Self.backoffCapSilent
    }

    /// How long a neighbour must have been silent (no packet at all) before it is given up on: 2 minutes, or 8 full
    /// frames' timeouts on a slow link.
    func silenceBeforeGivingUp(link: LinkState?) -> Double {
        guard let l = link else { return 120 }
        let p = l.info.properties
        return max(120, (p.airtime(bytes: p.mtu) * Double(self.config.window + 2) + self.config.ackDelay * 4 + 1) * 8)
    }

    /// Counts a directed record acknowledged or timed out on a link (for `fragmentMTU`).
    func noteRecordOutcome(link: String, record: Record, arrived: Bool) {
        guard var l = self.links[link] else { return }
        let size = Double(Packet.overhead + record.encodedSize(last: true))
        let w = 0.05
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

    /// The packet size new directed transfers on a link are cut for (SPEC 8.5 rule 5): the link's MTU, unless at
    /// least 16 recent records show a noisy line (fewer than 9 in 10 acknowledged). Then, from the loss per byte
    /// that implies (a record and its ack both have to arrive: survival = (1 - e)^bytes), the size that carries the
    /// most data per byte sent, (h + sqrt(h^2 + 4h/e)) / 2 for h bytes of overhead: on a line with 1% of bytes
    /// damaged about 96 bytes instead of 255 (a 255-byte frame arrives whole 7% of the time, a 96-byte one 37%).
    /// Retransmission time-outs, with nothing acknowledged, after which a transfer cut for a cleaner line is cut again.
    static let recutAfter = 2

    /// A transfer number never used by this node before (SPEC 8.2): from the block reserved in the store.
    func takeTransferNumber(for id: BundleID) -> UInt32? {
        if self.transferNumbers.isEmpty {
            do { self.transferNumbers = try self.store.reserveTransferNumbers() } catch {
                self.reject("cannot reserve transfer numbers, \(id) not sent now: \(error)")
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

    func fragmentMTU(_ l: LinkState) -> Int {
        let mtu = l.info.properties.mtu
        guard l.recordOutcomes >= 16, l.recordSuccess < 0.9 else { return mtu }
        let e = -log(max(0.01, l.recordSuccess)) / (l.recordBytes + Self.fragmentOverhead)
        let h = Self.fragmentOverhead
        let best = (h + (h * h + 4 * h / e).squareRoot()) / 2
        return max(min(Self.smallestFragmentMTU, mtu), min(mtu, Int(best)))
    }

    func rto(_ target: NodeID?, link: LinkState, fragments: Int) -> Double {
        let p = link.info.properties
        let base = p.airtime(bytes: p.mtu) * Double(min(fragments, self.config.window) + 2) + self.config.ackDelay * 4 + 1
        if let t = target, let n = self.neighbours[t], let s = n.srtt { return max(base, s + 4 * n.rttvar) }
        return base
    }

    /// Builds and emits packets on a link while it is free and within its airtime budget.
    func pump(_ name: String, now: Double) {
        guard var l = self.links[name], l.up else { return }
        if let d = l.info.dutyCycle {
            l.tokens = min(Self.bucketSize(l.info), l.tokens + (now - l.lastRefill) * d)
            l.lastRefill = now
        }
        self.links[name] = l
        var guardCount = 0
        // A KISS TNC keys up once for frames handed to it together: on AFSK links send a burst, paying TXDELAY
        // once. Elsewhere (LoRa, serial) one packet, then wait for its airtime.
        var burstMax = 1
        var keyOverhead = 0.0
        if case .afsk(_, let txDelay, let txTail, _) = l.info.properties.airtime {
            burstMax = Self.afskBurst
            keyOverhead = txDelay + txTail
        }
        var inBurst = 0
        while guardCount < 64, let link = self.links[name], link.busyUntil <= now || (inBurst > 0 && inBurst < burstMax) {
            guardCount += 1
            // Out of airtime budget (duty cycle): wait until it refills.
            if link.info.dutyCycle != nil && link.tokens <= 0 { return }
            // Reserved before a packet is composed (composing marks what it carries as sent): without a counter
            // kept in the store (a full disk) nothing is sent on this link, said, until a reservation works.
            if self.counters.isEmpty {
                guard let reserved = self.storing("reserve packet counters", link: name, { try self.store.reservePacketCounters(1_024) }) else { return }
                self.counters = reserved
            }
            guard let (records, carrying, announce) = self.compose(name, now: now) else { return }
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
            if l2.info.dutyCycle != nil { l2.tokens -= airtime }
            self.links[name] = l2
            self.stats.packetsSent += 1
            self.stats.bytesSent += bytes.count
            self.emit(.send(link: name, packet: bytes, carrying: carrying))
            // The retransmission clock of what is in flight on this link does not run while we transmit (on a
            // half-duplex channel the neighbour cannot answer meanwhile): each timer moves by this packet's airtime.
            // (Not to "when we stop transmitting" plus a whole timeout: under steady traffic, a packet every second,
            // that postponed every retransmission for as long as new messages kept coming.)
            if l2.info.properties.duplex == .half && airtime > 0 {
                for (k, var t) in self.transfers where k.link == name && k.target != nil && t.rtoAt.isFinite {
                    t.rtoAt += airtime
                    if t.due > now { t.due = max(t.due, t.rtoAt) }
                    self.transfers[k] = t
                }
            }
            if airtime > 0 && inBurst >= burstMax { return }
        }
    }

    /// Packets handed to a KISS TNC in one go (one key-up).
    static let afskBurst = 16

    /// The next packet for a link: acks first, then the announce, a summary page, and bundle data by priority.
    func compose(_ name: String, now: Double) -> ([Record], [BundleID], Bool)? {
        guard var l = self.links[name] else { return nil }
        let mtu = l.info.properties.mtu
        var records: [Record] = []
        var carrying: [BundleID] = []
        // `size` counts every record with its length prefix; the packet's last record is written without one (SPEC
        // 5.1), so a record fits if it fits as the last one. The fragmenter sizes a record to fill a packet of its
        // own exactly that way: counting the prefix here too refused records within 1-2 bytes of the MTU, and with
        // them every fragment of most bundles over ~18 KB, for ever.
        var size = Packet.overhead
        var announceForm = false
        func fits(_ r: Record) -> Bool { Packet.fits(r, used: size, mtu: mtu) }
        func add(_ r: Record) {
            size += r.encodedSize(last: false)
            records.append(r)
        }
        if let d = l.ackDue, d <= now {
            for (target, entries) in l.acks.sorted(by: { $0.key < $1.key }) {
                let r = Record.ack(AckRecord(target: target, entries: entries.keys.sorted().map { entries[$0]! }))
                if fits(r) { add(r); l.acks[target] = nil; l.partialAcks[target] = nil; l.unackedFragments[target] = nil }
            }
            l.ackDue = l.acks.isEmpty ? nil : now
        }
        // A directed transfer about to go again to a neighbour that never acknowledged us: it may not know our keys
        // (it missed our announces) and so cannot read our packets. The retry carries our announce.
        if !l.announceDue, now - l.lastAnnounced > 30, self.transfers.values.contains(where: { t in
            guard t.key.link == name, now >= t.rtoAt, let target = t.key.target, !t.sent.subtracting(t.acked).isEmpty else { return false }
            return (self.neighbours[target]?.ackedFragments ?? 0) == 0
        }) {
            l.announceDue = true
        }
        if l.announceDue {
            // The whole announce, or its parts when it does not fit one packet (the last part completes the keys).
            let k = self.config.identity.publicKeys
            let caps: UInt8 = 1 | (l.helloSent ? 0 : AnnounceRecord.hello)
            l.announceParts = AnnounceRecord.parts(
                AnnounceRecord(capabilities: caps, signingKey: k.signing, agreementKey: k.agreement, name: self.config.name), mtu: mtu)
            l.announceDue = false
            l.helloSent = true
            l.lastAnnounced = now
            l.nextAnnounce = now + self.config.announceInterval * self.rng.uniform(0.75, 1.25)
        }
        if let part = l.announceParts.first {
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
        if !l.pendingSummary.isEmpty {
            let page = l.pendingSummary[0]
            let r = Record.summary(SummaryRecord(isFinal: l.pendingSummary.count == 1, digests: page))
            if fits(r) {
                add(r)
                l.pendingSummary.removeFirst()
                if l.summaryWithAnnounce && announceForm { self.stats.summariesInPeriodicAnnounces += 1 }
                l.summaryWithAnnounce = false
            }
        }
        self.links[name] = l
        // Bundle data: transfers on this link, by class then age.
        let candidates = self.transfers.values.filter { $0.key.link == name && $0.due <= now }
            .sorted { ($0.priority, $0.order) < ($1.priority, $1.order) }
        // On a slow link an urgent bundle travels in a packet of its own class: filling the rest of its packet with
        // a bulk transfer would make the alert wait for the whole packet's airtime.
        let slow = l.info.properties.bitsPerSecond.map { $0 < 100_000 } ?? false
        let smallMTU = self.fragmentMTU(l)
        var urgentAdded = false
        for var t in candidates {
            if slow && urgentAdded && t.priority > .urgent { break }
            let inFlight = t.sent.subtracting(t.acked).count
            // A retransmission timeout: what was sent and not acknowledged goes again.
            if t.key.target != nil && inFlight > 0 && now >= t.rtoAt {
                t.rtoAt = .infinity
                for i in t.sent.subtracting(t.acked) { self.noteRecordOutcome(link: name, record: t.records[i], arrived: false) }
                t.sent = t.acked
                t.attempts += 1
                t.retransmitted = true
                self.stats.retransmissions += 1
                if t.attempts > Self.maxSilentRetries, let target = t.key.target,
                   now - (self.neighbours[target]?.lastHeard[name] ?? -1e9) > self.silenceBeforeGivingUp(link: self.links[name]) {
                    // The neighbour stopped answering (nothing at all heard from it for a while, not merely lost
                    // fragments on a noisy line): give up until it is heard again, or probed (`unresponsiveProbe`).
                    self.transfers[t.key] = nil
                    if let target = t.key.target { self.neighbours[target]?.unresponsiveSince = now }
                    if t.custody, let target = t.key.target { self.reportStalled(t.key.bundle, to: target.short, attempts: t.attempts, now: now) }
                    continue
                }
                // Cut before the line turned noisy, the records are too big for it (each crosses whole with little
                // chance): with nothing acknowledged after `recutAfter` time-outs, the bundle is cut again to the
                // size the line now takes, under a new transfer number (the receiver drops the old pieces by timeout).
                if let target = t.key.target, t.acked.isEmpty, t.attempts >= Self.recutAfter,
                   t.records.contains(where: { !Packet.fits($0, used: 0, mtu: smallMTU) }),
                   let bundle = Self.bundleBytes(t.records),
                   let number = self.takeTransferNumber(for: t.key.bundle) {
                    do {
                        t.records = try Fragmenter.records(bundle: bundle, mtu: smallMTU, transfer: number, nextHop: target.short, wantAck: true)
                        t.number = number
                        t.sent = []
                    } catch {
                        self.reject("cannot cut \(t.key.bundle) again for a noisy line: \(error)")
                    }
                }
            }
            var addedAny = false
            for i in 0..<t.records.count where !t.sent.contains(i) && !t.acked.contains(i) {
                if t.key.target != nil && t.sent.subtracting(t.acked).count >= self.config.window { break }
                guard fits(t.records[i]) else { break }
                // On a noisy line a packet of directed data stays within the size fragments are cut for (a record
                // cut before the line turned noisy still goes, alone).
                if t.key.target != nil, !records.isEmpty, !Packet.fits(t.records[i], used: size, mtu: smallMTU) { break }
                add(t.records[i])
                t.sent.insert(i)
                addedAny = true
            }
            if addedAny {
                if t.priority == .urgent { urgentAdded = true }
                if t.key.target == nil { self.stats.broadcastDataPackets += 1 } else { self.stats.unicastDataPackets += 1 }
                if !carrying.contains(t.key.bundle) { carrying.append(t.key.bundle) }
                if t.firstSent == nil { t.firstSent = now }
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
                    let inRange = self.freshNeighbours(now: now).filter { $0.link == name }.map(\.id.short.description)
                    do {
                        try self.store.recordBroadcast(t.key.bundle, link: name, inRange: inRange, now: Int64(now))
                    } catch {
                        self.reject("cannot record the broadcast of \(t.key.bundle) in the change feed: \(error)")
                    }
                } else { self.transfers[t.key] = t }
            } else {
                if addedAny {
                    t.rtoAt = now + self.rto(t.key.target, link: l, fragments: t.records.count) * pow(2, Double(min(t.attempts, self.backoffCap(t.key.target, link: name, now: now))))
                }
                // The window: keep sending while fragments remain unsent and fewer than `window` are in flight;
                // otherwise wait for an ack or the timeout.
                let unsent = (0..<t.records.count).contains { !t.sent.contains($0) && !t.acked.contains($0) }
                t.due = unsent && t.sent.subtracting(t.acked).count < self.config.window ? now : t.rtoAt
                self.transfers[t.key] = t
            }
            if size >= mtu - 8 { break }
        }
        // A packet going out anyway carries acks for complete transfers that would otherwise wait for their delay,
        // ahead of its other records (as acks always are: a receipt in the same packet must not be read first).
        if !records.isEmpty, var l = self.links[name], !l.acks.isEmpty {
            var early: [Record] = []
            for (target, entries) in l.acks.sorted(by: { $0.key < $1.key }) where l.partialAcks[target]?.isEmpty ?? true {
                let r = Record.ack(AckRecord(target: target, entries: entries.keys.sorted().map { entries[$0]! }))
                // These go in front, so the record last now stays last: each must fit with its own length prefix.
                if size + r.encodedSize(last: false) <= mtu { add(r); early.append(r); l.acks[target] = nil; l.partialAcks[target] = nil; l.unackedFragments[target] = nil }
            }
            records = early + records.dropLast(early.count)
            if l.acks.isEmpty { l.ackDue = nil }
            self.links[name] = l
        }
        return records.isEmpty ? nil : (records, carrying, announceForm)
    }
}

extension Node {
    /// A next hop stopped acknowledging a bundle in our custody: said in the log and the feed (the bundle is kept and
    /// routed again at the next housekeeping).
    func reportStalled(_ id: BundleID, to: ShortID, attempts: Int, now: Double) {
        do { try self.store.stalled(id, to: to, detail: "no acknowledgement after \(attempts) attempts; kept, will try again", now: Int64(now)) } catch {
            self.reject("cannot record \(id) stalled: \(error)")
        }
        self.emit(.event(.stalled(id, to: to)))
    }
}
