import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Logging

/// A resilience drill on a virtual clock: every relay of a `Scenario` is the real engine (`Node`, with an in-memory
/// store) and every packet goes through the shared radio channel (`RadioChannel`): airtime, collisions and capture
/// at each receiver, half-duplex, listen-before-talk, duty cycle. The scenario's traffic is submitted at its times
/// and its events (down/up, quiet/unquiet, partition/heal, courier) applied. Deterministic from the scenario's seed:
/// the same file gives the same result, packet for packet.
///
/// Each relay has one radio link ("radio") and a modem in front of it, as an RNode or a KISS TNC is: the engine
/// hands it packets, it queues them and sends each when the channel model lets it (listen-before-talk, duty cycle).
/// Every transmission a relay can detect is also reported to its engine (`Node.channelBusy`), so the engine holds
/// back what it would send until the channel is free, as it does with a modem that reports carrier.
///
/// A courier (someone carrying a relay from place to place) is one more relay, named `courier-N`, out of everyone's
/// range except while it stays `dwell` seconds next to each relay of its path in turn (the road between takes no
/// time); it never counts as a recipient.
public final class DrillSimulator {
    public let scenario: Scenario
    /// Scenario relays first (index i is `scenario.nodes[i]`), then one relay per courier event.
    public private(set) var names: [String]
    public private(set) var nodes: [Node] = []
    /// Each relay's store (the engine sees it only as its `NodeStorage`).
    public private(set) var stores: [Store] = []
    public private(set) var identities: [NodeIdentity] = []
    public private(set) var channel: RadioChannel
    /// Seconds since the start: the clock of the event queue and the channel (exact; the engine's clock, Unix
    /// seconds from `epoch`, has only about 0.2 µs of resolution, too coarse for listen-before-talk slots).
    public private(set) var elapsed: Double = 0
    public static let epoch: Double = 1_790_000_000
    /// The engine's clock.
    public var now: Double { Self.epoch + self.elapsed }
    let relayCount: Int

    var queue = TimedQueue<DrillEvent>()
    var wakeAt: [Double]
    var down: [Bool]
    /// Each relay's modem: packets waiting to go on the air, whether a send attempt is scheduled, and the end of the
    /// transmission it is making.
    var modemQueue: [[[UInt8]]]
    /// What each queued packet carries, as shares of its bytes by class (`PacketClass`), in step with `modemQueue`.
    var modemClasses: [[[(String, Double)]]]
    var modemScheduled: [Bool]
    var transmittingUntil: [Double]
    /// Packets on the air (or just ended), by transmission id.
    var onAir: [RadioChannel.TransmissionID: [UInt8]] = [:]
    /// Per relay: the end of the channel time it sensed busy so far, and the total (overlaps counted once).
    var sensedUntil: [Double]
    var sensedBusy: [Double]
    /// Submissions waiting for their relay to be switched back on (a person cannot use a relay that is off).
    var deferred: [Int: [Int]] = [:]
    /// Courier relays: index of the courier event -> relay index, and the stop each is at.
    var courierRelay: [Int: Int] = [:]
    var courierStop: [Int: Int] = [:]

    // Results.
    public struct Copy: Sendable, Hashable {
        public var message: Int
        public var recipient: Int
        public init(message: Int, recipient: Int) {
            self.message = message
            self.recipient = recipient
        }
    }
    /// Per message (index in `scenario.traffic`): its bundle, when it was submitted, the relays it is for.
    public private(set) var bundleOf: [Int: BundleID] = [:]
    public private(set) var submittedAt: [Int: Double] = [:]
    public private(set) var recipients: [Int: [Int]] = [:]
    var messageOfBundle: [BundleID: Int] = [:]
    /// When each copy reached its recipient's inbox (seconds since the start).
    public private(set) var deliveredAt: [Copy: Double] = [:]
    /// Offers that reached a requester: request message -> (offer message, seconds since the start).
    public private(set) var offersArrived: [Int: [(offer: Int, at: Double)]] = [:]
    /// Packets the engine of a relay that was down handed to its (switched-off) modem: never sent.
    public private(set) var droppedWhileDown = 0
    /// Packets a modem held because its duty cycle did not allow them yet (the engine handed it more than the limit
    /// lets go), and the longest such hold (seconds): 0 when the engines' airtime reckoning agrees with the modems'.
    public private(set) var dutyCycleHeld = 0
    public private(set) var dutyCycleLongestHold = 0.0
    /// Per relay: since when the packet at the head of its modem's queue has been held for the duty cycle.
    var heldSince: [Double?]
    /// Bundles the engines gave up on, with their reasons.
    public private(set) var gaveUp: [(node: Int, bundle: BundleID, reason: String)] = []
    /// What went on the air, by what it carried (`PacketClass`): airtime in seconds (each packet's airtime shared
    /// among its records by their bytes, header and tag included) and packets (each counted once, under the class
    /// with most of its bytes).
    public private(set) var airtimeByClass: [String: Double] = [:]
    public private(set) var packetsByClass: [String: Int] = [:]
    /// Opens what the relays send (the drill holds the federation's network key), to say what the airtime went to.
    let opener: PacketOpener
    /// The engines' compressor (one for all: its dictionary shelf is the federation's).
    let compressor: BodyCompressor
    /// Packets opened and signatures verified, shared by the engines and `opener` (each would get the same answer).
    let shared: SharedWork
    var memberIDs: [ShortID: [NodeID]] = [:]

    /// Respond-by given to the scenario's aid requests (minutes, as `relay send --respond-by` counts it in hours).
    public static let aidRespondByMinutes: UInt32 = 30

    /// How long before the start the relays heard each other's identity floods (`identityRoutes`): a day, so the
    /// routes they taught are hints for copies (kept 14 days), not routes in use (those are a neighbour timeout's
    /// few multiples old at most).
    public static let identityRoutesAge: Double = 86_400

    /// `configure`: changes to every relay's engine configuration (a test setting one rule against another).
    /// `identityRoutes`: the relays start with the routes an established federation's identity floods left them
    /// (`rememberIdentityRoutes`; `relay drill simulate --identity-routes`); false (the default): with none, as if no
    /// relay had ever heard from another.
    public init(scenario: Scenario, configure: (@Sendable (inout NodeConfig) -> Void)? = nil, identityRoutes: Bool = false) throws {
        self.scenario = scenario
        var names = scenario.nodes.map(\.id)
        self.relayCount = names.count
        var couriers: [Int: Int] = [:]
        for (k, e) in scenario.events.enumerated() {
            if case .courier = e {
                couriers[k] = names.count
                names.append("courier-\(couriers.count)")
            }
        }
        self.names = names
        self.courierRelay = couriers
        let n = names.count
        // The channel: scenario relays where the file puts them, couriers far out of range until they arrive.
        self.channel = try scenario.channel(extraRelays: n - self.relayCount)
        self.wakeAt = Array(repeating: .infinity, count: n)
        self.down = Array(repeating: false, count: n)
        self.modemQueue = Array(repeating: [], count: n)
        self.modemClasses = Array(repeating: [], count: n)
        self.modemScheduled = Array(repeating: false, count: n)
        self.heldSince = Array(repeating: nil, count: n)
        self.transmittingUntil = Array(repeating: -.infinity, count: n)
        self.sensedUntil = Array(repeating: 0, count: n)
        self.sensedBusy = Array(repeating: 0, count: n)

        var kg = SplitMix64(seed: scenario.seed &* 7919 &+ 13)
        let net = try NetworkKey(bytes: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) })
        let shared = SharedWork()
        self.shared = shared
        var opener = PacketOpener(networkKey: net)
        opener.recent = shared.opened
        self.opener = opener
        let compressor = BodyCompressor()
        self.compressor = compressor
        let properties: LinkProperties
        switch scenario.radio.kind {
        case .lora(let p):
            properties = LinkProperties(mtu: 255, bitsPerSecond: p.bitsPerSecond, duplex: .half, mediumChecksFrames: true,
                                        airtime: .lora(p, framing: 1))
        case .afsk1200:
            properties = LinkProperties(mtu: 255, bitsPerSecond: 1_200, duplex: .half, mediumChecksFrames: true,
                                        airtime: .afsk(baud: 1_200, txDelay: 0.3, txTail: 0.1, overhead: 20))
        }
        let logger = Logger(label: "drill", factory: { _ in SwiftLogNoOpLogHandler() })
        for _ in 0..<n {
            self.identities.append(try NodeIdentity(
                signingSeed: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) },
                agreementSeed: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) }))
        }
        // An established federation: every relay already holds every member's keys (a trust list, as `relay peers
        // add` builds it), so the drill starts without each relay flooding its identity to all the others.
        let members = TrustPolicy.members(self.identities.map(\.publicKeys))
        for id in self.identities { self.memberIDs[id.nodeID.short, default: []].append(id.nodeID) }
        var hopLimit = 8
        for i in 0..<n {
            var c = NodeConfig(identity: self.identities[i], networkKey: net, name: names[i])
            c.trust = members
            configure?(&c)
            hopLimit = Int(c.hopLimit)
            var sc = Store.Configuration()
            sc.inMemory = true
            let store = try Store(path: names[i], configuration: sc, logger: logger)
            self.stores.append(store)
            self.nodes.append(try Node(
                config: c, store: store,
                links: [LinkInfo(name: "radio", properties: properties, dutyCycle: scenario.radio.dutyCycle)],
                now: Self.epoch, seed: scenario.seed &+ UInt64(i) &* 104_729, compressor: compressor, shared: shared))
        }
        if identityRoutes { self.rememberIdentityRoutes(hopLimit: hopLimit) }
        // Relays are switched on over the first minute (or tenth of the run), not all in the same millisecond.
        let spread = min(60, scenario.duration / 10)
        var g = SplitMix64(seed: scenario.seed ^ 0x5eed)
        for i in 0..<self.relayCount { self.queue.push(g.unit() * spread, .linkUp(i)) }
        for i in self.relayCount..<n {
            self.down[i] = true
            self.channel.setDown(i, true)
        }
        for (k, m) in scenario.traffic.enumerated() { self.queue.push(m.at, .traffic(k)) }
        for (k, e) in scenario.events.enumerated() {
            if case .courier(let at, let path, let dwell) = e {
                for s in path.indices { self.queue.push(at + Double(s) * dwell, .courierStop(event: k, stop: s)) }
                self.queue.push(at + Double(path.count) * dwell, .courierLeaves(event: k))
            } else {
                self.queue.push(e.at, .event(k))
            }
        }
    }

    /// The routes every relay of an established federation holds from the members' identity floods (SPEC 9.1: a
    /// running relay floods its identity at start and renews it every 3.5 days; each relay it reaches learns the way
    /// it came, kept as a hint for 14 days). The drill gives every relay the members' keys at once (a trust list)
    /// instead of simulating those floods, and so started with no route at all: a message to a relay that had sent
    /// nothing of its own during the run had no way to go, its copies waited at relays that never met it (on
    /// regional-200, seed 200, 787 of the 863 holders of undelivered directed messages had no route to the
    /// destination: `relay drill simulate --undelivered`). Each relay gets, for every other scenario relay within an
    /// identity flood's hop limit, the route that flood's first copy would have taught: through the neighbour one hop
    /// nearer to it on a quiet channel (the strongest such), `identityRoutesAge` before the start.
    func rememberIdentityRoutes(hopLimit limit: Int) {
        let n = self.relayCount
        let hearers = (0..<n).map { self.channel.neighbours(of: $0).filter { $0 < n } }
        let at = Self.epoch - Self.identityRoutesAge
        for d in 0..<n {
            // Hops from d on a quiet channel: who hears a copy sent by a relay at distance k is at k + 1 at most.
            var dist = [Int](repeating: -1, count: n)
            dist[d] = 0
            var frontier = [d]
            while !frontier.isEmpty {
                var next: [Int] = []
                for a in frontier {
                    for b in hearers[a] where dist[b] < 0 {
                        dist[b] = dist[a] + 1
                        next.append(b)
                    }
                }
                frontier = next
            }
            var via = [Int](repeating: -1, count: n)
            var best = [Double](repeating: -.infinity, count: n)
            for a in 0..<n where dist[a] >= 0 {
                for b in hearers[a] where dist[b] == dist[a] + 1 {
                    let p = self.channel.receivedPower(from: a, to: b) ?? -.infinity
                    if p > best[b] { best[b] = p; via[b] = a }
                }
            }
            let dest = self.identities[d].nodeID.short
            for x in 0..<n where x != d && via[x] >= 0 && dist[x] - 1 <= limit {
                self.nodes[x].rememberRoute(to: dest, via: self.identities[via[x]].nodeID, hops: dist[x] - 1, at: at)
            }
        }
    }

    // MARK: Forking the intact reference

    /// The moment of the scenario's first disruption (its first event other than a courier), nil without one: until
    /// then the scenario and `DrillResult.intactScenario` of it run the same, packet for packet.
    public static func firstDisruption(_ s: Scenario) -> Double? {
        s.events.filter { if case .courier = $0 { return false } else { return true } }.map(\.at).min()
    }

    /// A simulator of `DrillResult.intactScenario(scenario)` as it stands now: every relay's engine and store copied
    /// (`Node(copying:)`, `Store.inMemoryCopy`), the channel, the modems, the queue without the disruptions and the
    /// figures so far. Made before the first disruption (`firstDisruption`), it is the intact reference run up to
    /// here: run on, it gives what a new simulator of the intact scenario gives (DrillForkTests), without simulating
    /// the hours before the disruption a second time. Made between two events (not inside `run`).
    public func forkWithoutDisruptions() throws -> DrillSimulator {
        try DrillSimulator(forking: self)
    }

    private init(forking o: DrillSimulator) throws {
        precondition(Self.firstDisruption(o.scenario).map { o.elapsed <= $0 } ?? true,
                     "the intact reference is forked before the first disruption")
        // The intact scenario keeps only the courier events: each keeps its place among them.
        var renumber: [Int: Int] = [:]
        for (k, e) in o.scenario.events.enumerated() {
            if case .courier = e { renumber[k] = renumber.count }
        }
        self.scenario = DrillResult.intactScenario(o.scenario)
        self.names = o.names
        self.relayCount = o.relayCount
        // Each branch shelves federation dictionaries on its own.
        let compressor = BodyCompressor(dictionary: o.compressor.dictionary, shelf: o.compressor.shelf.copy())
        self.compressor = compressor
        // (What was opened and verified is the same answer in either branch.)
        self.shared = o.shared
        for (i, node) in o.nodes.enumerated() {
            let store = try o.stores[i].inMemoryCopy(path: o.names[i])
            self.stores.append(store)
            self.nodes.append(try Node(copying: node, store: store, compressor: compressor))
        }
        self.identities = o.identities
        self.channel = o.channel
        self.elapsed = o.elapsed
        self.queue = o.queue.compactMap { e -> DrillEvent? in
            switch e {
            case .event: return nil
            case .courierStop(let k, let stop): return .courierStop(event: renumber[k]!, stop: stop)
            case .courierLeaves(let k): return .courierLeaves(event: renumber[k]!)
            default: return e
            }
        }
        self.wakeAt = o.wakeAt
        self.down = o.down
        self.modemQueue = o.modemQueue
        self.modemClasses = o.modemClasses
        self.modemScheduled = o.modemScheduled
        self.transmittingUntil = o.transmittingUntil
        self.onAir = o.onAir
        self.sensedUntil = o.sensedUntil
        self.sensedBusy = o.sensedBusy
        self.deferred = o.deferred
        self.courierRelay = Dictionary(uniqueKeysWithValues: o.courierRelay.map { (renumber[$0.key]!, $0.value) })
        self.courierStop = Dictionary(uniqueKeysWithValues: o.courierStop.map { (renumber[$0.key]!, $0.value) })
        self.bundleOf = o.bundleOf
        self.submittedAt = o.submittedAt
        self.recipients = o.recipients
        self.messageOfBundle = o.messageOfBundle
        self.deliveredAt = o.deliveredAt
        self.offersArrived = o.offersArrived
        self.droppedWhileDown = o.droppedWhileDown
        self.dutyCycleHeld = o.dutyCycleHeld
        self.dutyCycleLongestHold = o.dutyCycleLongestHold
        self.heldSince = o.heldSince
        self.gaveUp = o.gaveUp
        self.directedCounts = o.directedCounts
        self.airtimeByClass = o.airtimeByClass
        self.packetsByClass = o.packetsByClass
        self.opener = o.opener
        self.memberIDs = o.memberIDs
        self.engineCalls = o.engineCalls
        self.trace = nil
    }

    /// Runs the virtual clock to the end of the scenario as `run(every:progress:)` does and, with `forkingIntact`,
    /// forks the intact reference on the way (`forkWithoutDisruptions`, just before the first disruption): returns
    /// it, ready to run on from there (nil without `forkingIntact` or without a disruption).
    public func run(every: Double = .infinity, forkingIntact: Bool, progress: (Double) -> Void = { _ in }) throws -> DrillSimulator? {
        precondition(every > 0)
        var forkAt = forkingIntact ? Self.firstDisruption(self.scenario) : nil
        var fork: DrillSimulator? = nil
        var t = self.elapsed
        while t < self.scenario.duration {
            t = min(t + every, self.scenario.duration)
            if let f = forkAt, f <= t {
                try self.run(before: f)
                fork = try self.forkWithoutDisruptions()
                forkAt = nil
            }
            try self.run(until: t)
            progress(t)
        }
        return fork
    }

    /// Runs the virtual clock to `time` (seconds since the start), leaving the events at `time` itself.
    func run(before time: Double) throws {
        try self.run(to: time, including: false)
    }

    // MARK: Running

    /// Runs the virtual clock to the end of the scenario.
    public func run() throws {
        try self.run(until: self.scenario.duration)
    }

    /// Runs the virtual clock to the end of the scenario, calling `progress` each time another `every` simulated
    /// seconds have passed (with the simulated seconds so far), and once at the end.
    public func run(every: Double, progress: (Double) -> Void) throws {
        _ = try self.run(every: every, forkingIntact: false, progress: progress)
    }

    /// Calls into the engines so far (what a run costs): ticks at their wake-up times, packets received, busy
    /// channels reported, and other calls (link up/down, submissions, quiet).
    public struct EngineCalls: Sendable, Hashable {
        public var ticks = 0
        public var receptions = 0
        public var busyReports = 0
    }
    public private(set) var engineCalls = EngineCalls()

    /// Copies delivered so far.
    public var deliveredCount: Int { self.deliveredAt.count }
    /// Events waiting on the virtual clock.
    public var pendingEvents: Int { self.queue.count }

    /// Runs the virtual clock to `time` (seconds since the start).
    public func run(until time: Double) throws {
        try self.run(to: time, including: true)
    }

    /// Handles the queued events up to `time` (those at `time` itself too when `including`), in order.
    private func run(to time: Double, including: Bool) throws {
        while let (t, e) = self.queue.peek(), t < time || (including && t == time) {
            _ = self.queue.pop()
            self.elapsed = max(self.elapsed, t)
            try self.handle(e, scheduled: t)
        }
        self.elapsed = max(self.elapsed, time)
    }

    func handle(_ e: DrillEvent, scheduled t: Double) throws {
        switch e {
        case .wake(let i):
            guard self.wakeAt[i] == t else { return }
            self.wakeAt[i] = .infinity
            guard !self.down[i] else { return }
            self.engineCalls.ticks += 1
            self.apply(i, self.nodes[i].tick(now: self.now))
        case .linkUp(let i):
            self.apply(i, self.nodes[i].linkUp("radio", now: self.now))
        case .traffic(let k):
            let from = self.index(self.scenario.traffic[k].from)
            if self.down[from] {
                self.deferred[from, default: []].append(k)
            } else {
                try self.submit(k)
            }
        case .event(let k):
            try self.apply(event: self.scenario.events[k])
        case .courierStop(let k, let s):
            guard case .courier(_, let path, _) = self.scenario.events[k], let c = self.courierRelay[k] else { return }
            let stop = self.index(path[s])
            self.courierStop[k] = stop
            self.channel.carry(c, to: stop)
            if self.down[c] {
                self.down[c] = false
                self.channel.setDown(c, false)
            }
            // Arriving somewhere new is a link coming up: the engine says hello and exchanges summaries.
            self.apply(c, self.nodes[c].linkUp("radio", now: self.now))
        case .courierLeaves(let k):
            guard let c = self.courierRelay[k] else { return }
            self.courierStop[k] = nil
            self.channel.carry(c, to: nil)
            self.nodes[c].linkDown("radio", now: self.now)
        case .modem(let i):
            try self.modemTry(i)
        case .transmissionEnds(let from):
            try self.transmissionEnded(from)
        }
    }

    func index(_ name: String) -> Int {
        // Validation guarantees every name in traffic and events is a relay of the scenario.
        self.scenarioIndex[name]!
    }

    lazy var scenarioIndex: [String: Int] = {
        var d: [String: Int] = [:]
        for (i, n) in self.scenario.nodes.enumerated() { d[n.id] = i }
        return d
    }()

    func apply(event e: Scenario.Event) throws {
        switch e {
        case .down(_, let ns):
            for name in ns {
                let i = self.index(name)
                guard !self.down[i] else { continue }
                self.down[i] = true
                self.channel.setDown(i, true)
                self.nodes[i].linkDown("radio", now: self.now)
                // A switched-off modem loses what it had not sent yet.
                self.droppedWhileDown += self.modemQueue[i].count
                self.modemQueue[i] = []
                self.modemClasses[i] = []
                self.heldSince[i] = nil
            }
        case .up(_, let ns):
            for name in ns {
                let i = self.index(name)
                guard self.down[i] else { continue }
                self.down[i] = false
                self.channel.setDown(i, false)
                self.apply(i, self.nodes[i].linkUp("radio", now: self.now))
                for k in self.deferred.removeValue(forKey: i) ?? [] { try self.submit(k) }
            }
        case .quiet(_, let ns):
            for name in ns {
                let i = self.index(name)
                self.apply(i, try self.nodes[i].setQuiet(true, now: self.now))
            }
        case .unquiet(_, let ns):
            for name in ns {
                let i = self.index(name)
                self.apply(i, try self.nodes[i].setQuiet(false, now: self.now))
            }
        case .partition(_, let groups):
            self.channel.partition(groups.map { $0.map { self.index($0) } })
            // A courier at a stop is in that relay's group.
            for k in self.courierStop.keys.sorted() {
                if let c = self.courierRelay[k], let s = self.courierStop[k] { self.channel.carry(c, to: s) }
            }
        case .heal:
            self.channel.heal()
        case .courier:
            break
        }
    }

    // MARK: Traffic

    func submit(_ k: Int) throws {
        let m = self.scenario.traffic[k]
        let from = self.index(m.from)
        let kind: Kind
        var options: BundleOptions? = nil
        switch m.kind {
        case .alert: kind = .alert
        case .aid:
            kind = .aidRequest
            options = BundleOptions(kind: .aidRequest, respondBy: Self.aidRespondByMinutes)
        case .offer:
            kind = .aidOffer
            // An offer answers the latest aid request its recipient made before it.
            if case .node(let to) = m.to, let req = self.latestRequest(by: to, before: k), let id = self.bundleOf[req] {
                options = BundleOptions(kind: .aidOffer, reference: id)
            }
        case .grievance: kind = .grievance
        case .minutes: kind = .minutes
        case .text: kind = .text
        }
        let dest: Destination
        let recipients: [Int]
        switch m.to {
        case .everyone:
            dest = .everyone
            recipients = (0..<self.relayCount).filter { $0 != from }
        case .node(let name):
            let j = self.index(name)
            dest = .node(self.identities[j].nodeID.short)
            recipients = [j]
        }
        let content = Self.text(bytes: m.bytes, seed: self.scenario.seed &+ UInt64(k) &* 2_654_435_761)
        let (id, out) = try self.nodes[from].submit(kind: kind, destination: dest, content: content, options: options, now: self.now)
        self.bundleOf[k] = id
        self.messageOfBundle[id] = k
        self.submittedAt[k] = m.at
        self.recipients[k] = recipients
        self.apply(from, out)
    }

    func latestRequest(by name: String, before k: Int) -> Int? {
        var found: Int? = nil
        for (j, m) in self.scenario.traffic.enumerated() where j != k && m.kind == .aid && m.from == name && m.at <= self.scenario.traffic[k].at {
            if let f = found, self.scenario.traffic[f].at > m.at { continue }
            found = j
        }
        return found
    }

    /// `bytes` bytes of words, deterministic from `seed` (text compresses as people's messages do).
    static func text(bytes: Int, seed: UInt64) -> [UInt8] {
        let words = ["water", "well", "pump", "flour", "road", "clinic", "assembly", "river", "bridge", "seed", "harvest",
                     "school", "meeting", "north", "east", "west", "families", "tents", "blankets", "medicine", "fuel",
                     "generator", "the", "a", "of", "to", "and", "is", "we", "need", "have", "by", "on", "at", "tomorrow",
                     "morning", "evening", "twelve", "sacks", "litres", "rota", "committee", "decided", "broken", "open"]
        var g = SplitMix64(seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(bytes + 12)
        while out.count < bytes {
            if !out.isEmpty { out.append(0x20) }
            out += Array(words[Int(g.next() % UInt64(words.count))].utf8)
        }
        return Array(out.prefix(bytes))
    }

    // MARK: Engine outputs

    func apply(_ i: Int, _ outputs: [NodeOutput]) {
        for o in outputs {
            switch o {
            case .send(_, let packet, let carrying):
                if self.down[i] {
                    self.droppedWhileDown += 1
                    continue
                }
                self.modemQueue[i].append(packet)
                self.modemClasses[i].append(self.classify(packet, carrying: carrying))
                self.scheduleModem(i, at: self.elapsed)
            case .delivered(let m):
                guard let k = self.messageOfBundle[m.id], self.recipients[k]?.contains(i) == true else { continue }
                let c = Copy(message: k, recipient: i)
                if self.deliveredAt[c] == nil { self.deliveredAt[c] = self.elapsed }
            case .event(let e):
                switch e {
                case .offerForRequest(let request, let offer):
                    if let r = self.messageOfBundle[request], let o = self.messageOfBundle[offer] {
                        self.offersArrived[r, default: []].append((o, self.elapsed))
                    }
                case .gaveUp(let b, let reason):
                    self.gaveUp.append((i, b, reason))
                case .bundleStored(let b, _):
                    if let k = self.messageOfBundle[b] { self.directedCounts[k, default: DirectedCounts()].stored += 1 }
                case .custodyReleased(let b, _):
                    if let k = self.messageOfBundle[b] { self.directedCounts[k, default: DirectedCounts()].custodyMoved += 1 }
                case .stalled(let b, _):
                    if let k = self.messageOfBundle[b] { self.directedCounts[k, default: DirectedCounts()].stalled += 1 }
                default:
                    break
                }
            }
        }
        let w = self.nodes[i].nextWakeup(now: self.now) - Self.epoch
        if w < self.wakeAt[i] {
            self.wakeAt[i] = w
            self.queue.push(w, .wake(i))
        }
    }

    // MARK: Modems and the channel

    func scheduleModem(_ i: Int, at t: Double) {
        guard !self.modemScheduled[i] else { return }
        self.modemScheduled[i] = true
        self.queue.push(max(t, self.elapsed), .modem(i))
    }

    func modemTry(_ i: Int) throws {
        self.modemScheduled[i] = false
        guard !self.down[i], let packet = self.modemQueue[i].first else { return }
        if self.transmittingUntil[i] > self.elapsed { return }  // the end of the transmission schedules the next try
        let t = self.elapsed
        switch try self.channel.requestToSend(node: i, bytes: packet.count, at: t) {
        case .wait(let until, let reason):
            if reason == .dutyCycle && self.heldSince[i] == nil { self.heldSince[i] = t }
            // (Never the same instant again: a wait that ends now would spin.)
            self.scheduleModem(i, at: max(until, t + 1e-6))
        case .transmit:
            if let since = self.heldSince[i] {
                self.dutyCycleHeld += 1
                self.dutyCycleLongestHold = max(self.dutyCycleLongestHold, t - since)
                self.heldSince[i] = nil
            }
            self.modemQueue[i].removeFirst()
            let shares = self.modemClasses[i].removeFirst()
            let tx = try self.channel.startTransmission(from: i, bytes: packet.count, at: t)
            for (c, share) in shares { self.airtimeByClass[c, default: 0] += share * (tx.end - tx.start) }
            if let main = shares.max(by: { $0.1 < $1.1 }) { self.packetsByClass[main.0, default: 0] += 1 }
            self.onAir[tx.id] = packet
            if let tr = self.trace, tr.window.contains(t) {
                tr.line(String(format: "%.2f-%.2f %@ sends %d: ", t, tx.end, self.names[i], tx.id) + self.describe(packet))
            }
            self.transmittingUntil[i] = tx.end
            self.queue.push(tx.end, .transmissionEnds(from: i))
            self.sense(i, tx)
            // Every relay that detects it is told the channel is busy (as a modem reporting carrier would).
            for r in self.channel.neighbours(of: i) where !self.down[r] {
                self.sense(r, tx)
                self.engineCalls.busyReports += 1
                self.apply(r, self.nodes[r].channelBusy("radio", until: Self.epoch + tx.end, now: self.now))
            }
        }
    }

    func sense(_ r: Int, _ tx: RadioChannel.Transmission) {
        let from = max(tx.start, self.sensedUntil[r])
        if tx.end > from { self.sensedBusy[r] += tx.end - from }
        self.sensedUntil[r] = max(self.sensedUntil[r], tx.end)
    }

    func transmissionEnded(_ from: Int) throws {
        let receptions = try self.channel.receptions(through: self.elapsed)
        for rec in receptions {
            if let tr = self.trace, tr.window.contains(rec.at), !self.down[rec.to] {
                tr.line(String(format: "  %.2f %@ from %@: ", rec.at, self.names[rec.to], self.names[rec.from]) + Self.describe(rec.outcome))
            }
            guard case .received = rec.outcome, let packet = self.onAir[rec.transmission], !self.down[rec.to] else { continue }
            self.engineCalls.receptions += 1
            // With the packet's signal-to-noise ratio, as an RNode reports it with each packet (its power over the
            // channel's noise floor).
            let snr = rec.powerDBm - self.channel.configuration.physics.noiseFloorDBm
            self.apply(rec.to, self.nodes[rec.to].receive(packet, on: "radio", now: self.now, snr: snr))
        }
        let live = Set(self.channel.transmissionsOnAir.map(\.id))
        for id in self.onAir.keys where !live.contains(id) { self.onAir[id] = nil }
        if !self.modemQueue[from].isEmpty { self.scheduleModem(from, at: self.elapsed) }
    }

    /// What a packet a relay hands its modem carries, as shares of its bytes: announces, summaries, acks, receipt
    /// parts, dictionaries, and bundle data by the kind of the scenario message it belongs to ("data: alert", …;
    /// "data: engine" for the engine's own bundles: receipts, keys). Data bytes are shared evenly among the bundles
    /// the engine says the packet carries. A packet the drill cannot open (never, unless the engine seals with
    /// another key) is "unreadable".
    func classify(_ packet: [UInt8], carrying: [BundleID]) -> [(String, Double)] {
        let opened: Packet
        do {
            opened = try self.opener.open(packet, candidates: { self.memberIDs[$0] ?? [] })
        } catch {
            return [(PacketClass.unreadable, 1)]
        }
        var bytes: [String: Int] = [:]
        let dataClasses = carrying.map { id in
            self.messageOfBundle[id].map { "data: " + self.scenario.traffic[$0].kind.rawValue } ?? PacketClass.engineData
        }
        for (n, r) in opened.records.enumerated() {
            let size = r.encodedSize(last: n == opened.records.count - 1)
            switch r {
            // (A neighbour list goes with announces and floods, SPEC 5.13: counted with the announces.)
            case .announce, .neighbours: bytes[PacketClass.announces, default: 0] += size
            case .summary: bytes[PacketClass.summaries, default: 0] += size
            case .ack: bytes[PacketClass.acks, default: 0] += size
            case .receiptParts: bytes[PacketClass.receiptParts, default: 0] += size
            case .dictionaries: bytes[PacketClass.dictionaries, default: 0] += size
            // (A copy budget, SPEC 5.14, goes with the directed data it is for: counted with it.)
            case .bundle, .fragment, .piece, .copyBudgets:
                if dataClasses.isEmpty {
                    bytes[PacketClass.engineData, default: 0] += size
                } else {
                    for c in dataClasses { bytes[c, default: 0] += size / dataClasses.count }
                }
            case .unknown: bytes[PacketClass.unreadable, default: 0] += size
            }
        }
        let total = bytes.values.reduce(0, +)
        guard total > 0 else { return [(PacketClass.unreadable, 1)] }
        return bytes.sorted { $0.key < $1.key }.map { ($0.key, Double($0.value) / Double(total)) }
    }

    /// Every transmission that starts within `window` (seconds since the start) and every reception that ends
    /// within it, one line each, as they happen: what each packet carried, and whether each relay in range got it
    /// (`relay drill simulate --trace`): the way to see why a copy was slow.
    public var trace: (window: ClosedRange<Double>, line: (String) -> Void)?

    /// A packet's records, for the trace: announce, neighbour list, summary (digests), ack to whom, bundle or
    /// fragment to whom (its transfer), piece, receipt parts, dictionaries, copy budgets.
    func describe(_ packet: [UInt8]) -> String {
        let opened: Packet
        do { opened = try self.opener.open(packet, candidates: { self.memberIDs[$0] ?? [] }) } catch {
            return "unreadable (\(error))"
        }
        func name(_ s: ShortID?) -> String {
            guard let s else { return "everyone" }
            return self.identities.firstIndex { $0.nodeID.short == s }.map { self.names[$0] } ?? s.description
        }
        return opened.records.map { r -> String in
            switch r {
            case .announce(let a): return a.capabilities & AnnounceRecord.hello != 0 ? "hello" : "announce"
            case .neighbours: return "neighbour list"
            case .summary(let m): return "summary (\(m.digests.count)\(m.isFinal ? "" : ", more"))"
            case .ack(let a): return "ack to \(name(a.target))"
            case .receiptParts: return "receipt parts"
            case .dictionaries: return "dictionaries"
            case .copyBudgets(let c): return "copy budgets (" + c.entries.map { "transfer \($0.transfer): \($0.copies)" }.joined(separator: ", ") + ")"
            case .bundle(let b):
                // The scenario message it is, when it is one ("text 12", "alert 0": its kind and its place in the traffic).
                // and, sent to everyone, the hops it may still make (its hop limit).
                var message = ""
                do {
                    let decoded = try CourierBundle(decoding: b.bundle)
                    if let k = self.messageOfBundle[decoded.id] {
                        message = ": \(self.scenario.traffic[k].kind.rawValue) \(k)" + (b.nextHop == nil ? ", hop limit \(decoded.hopLimit)" : "")
                    }
                } catch {
                    message = ": not decodable (\(error))"
                }
                return "bundle to \(name(b.nextHop))" + (b.transfer.map { " (transfer \($0), \(b.bundle.count) bytes)" } ?? " (\(b.bundle.count) bytes)") + message
            case .fragment(let f): return "fragment \(f.index + 1) of \(f.count) to \(name(f.nextHop)) (transfer \(f.transfer))"
            case .piece: return "rest of a cut bundle"
            case .unknown: return "unknown record"
            }
        }.joined(separator: ", ")
    }

    static func describe(_ o: RadioChannel.Reception.Outcome) -> String {
        switch o {
        case .received: return "received"
        case .collided(let with): return "lost: collided with " + with.map { "\($0)" }.joined(separator: ", ")
        case .receiverTransmitting: return "lost: it was transmitting"
        case .receiverDown: return "lost: it was off"
        case .lost: return "lost on the link"
        }
    }

    public func inbox(_ i: Int) throws -> [InboxMessage] { try self.stores[i].inbox(limit: 1_000_000) }

    // MARK: Undelivered directed messages

    /// What the engines said of a message's bundle on the way (`relay drill simulate --undelivered`): relays that
    /// stored it, custody handed on (each a transfer completed), transfers given up on as stalled.
    public struct DirectedCounts: Sendable, Hashable {
        public var stored = 0
        public var custodyMoved = 0
        public var stalled = 0
    }
    var directedCounts: [Int: DirectedCounts] = [:]

    /// A directed message not delivered (so far), and where its copies are: each relay that holds it, its hops from
    /// the destination on a quiet channel (nil: cut off, or down), and what that relay knows of it
    /// (`Node.directedHolding`).
    public struct UndeliveredDirected: Sendable {
        public var message: Int
        public var counts: DirectedCounts
        public var holders: [(relay: Int, hops: Int?, holding: DirectedHolding)]
        /// Given up on by some relay (with the reason).
        public var gaveUp: [String]
    }

    /// The directed messages submitted and not delivered so far, in the order of the traffic.
    public func undeliveredDirected() -> [UndeliveredDirected] {
        var out: [UndeliveredDirected] = []
        for k in self.bundleOf.keys.sorted() {
            guard let id = self.bundleOf[k], case .node = self.scenario.traffic[k].to, let to = self.recipients[k]?.first,
                  self.deliveredAt[Copy(message: k, recipient: to)] == nil else { continue }
            let hops = self.hopsFrom(to)
            var holders: [(relay: Int, hops: Int?, holding: DirectedHolding)] = []
            for (i, node) in self.nodes.enumerated() {
                if let h = node.directedHolding(id, now: self.now) { holders.append((i, hops[i], h)) }
            }
            let gave = self.gaveUp.filter { $0.bundle == id }.map { "\(self.names[$0.node]): \($0.reason)" }
            out.append(UndeliveredDirected(message: k, counts: self.directedCounts[k] ?? DirectedCounts(), holders: holders, gaveUp: gave))
        }
        return out
    }

    /// The scenario's name of the relay with this short id (the id itself when none has it).
    public func name(of s: ShortID) -> String {
        self.identities.firstIndex { $0.nodeID.short == s }.map { self.names[$0] } ?? s.description
    }

    /// Hops from relay `to` to every relay over links that decode on a quiet channel, as the channel is now
    /// (partitions and relays down count).
    func hopsFrom(_ to: Int) -> [Int: Int] {
        var dist: [Int: Int] = [to: 0]
        var frontier = [to]
        while !frontier.isEmpty {
            var next: [Int] = []
            for a in frontier where !self.down[a] {
                for b in self.channel.neighbours(of: a) where dist[b] == nil && !self.down[b] {
                    dist[b] = dist[a]! + 1
                    next.append(b)
                }
            }
            frontier = next
        }
        return dist
    }

    // MARK: Results

    /// The figures of the run so far.
    public func result() -> DrillResult { DrillResult(self) }
}

/// The classes `DrillSimulator.classify` sorts airtime into.
public enum PacketClass {
    public static let announces = "announces"
    public static let summaries = "summaries"
    public static let acks = "acks"
    public static let receiptParts = "receipt parts"
    public static let dictionaries = "dictionaries"
    public static let engineData = "data: engine"
    public static let unreadable = "unreadable"
}

enum DrillEvent {
    case wake(Int)
    case linkUp(Int)
    case traffic(Int)
    case event(Int)
    case courierStop(event: Int, stop: Int)
    case courierLeaves(event: Int)
    case modem(Int)
    case transmissionEnds(from: Int)
}

/// A binary heap of timed events; ties in insertion order, so runs are deterministic.
struct TimedQueue<E> {
    private var heap: [(Double, Int, E)] = []
    private var seq = 0

    var count: Int { self.heap.count }

    mutating func push(_ t: Double, _ e: E) {
        self.seq += 1
        self.heap.append((t, self.seq, e))
        var i = self.heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if Self.less(self.heap[i], self.heap[p]) { self.heap.swapAt(i, p); i = p } else { break }
        }
    }

    /// The queue with each event changed by `transform`, or left out where it gives nil: the rest keep their times
    /// and order (ties included).
    func compactMap(_ transform: (E) -> E?) -> TimedQueue<E> {
        var q = TimedQueue<E>()
        // Sorted by (time, order), the array is a heap already.
        q.heap = self.heap.compactMap { x in transform(x.2).map { (x.0, x.1, $0) } }.sorted { Self.less($0, $1) }
        q.seq = self.seq
        return q
    }

    func peek() -> (Double, E)? { self.heap.first.map { ($0.0, $0.2) } }

    mutating func pop() -> (Double, E)? {
        guard !self.heap.isEmpty else { return nil }
        self.heap.swapAt(0, self.heap.count - 1)
        let top = self.heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < self.heap.count && Self.less(self.heap[l], self.heap[m]) { m = l }
            if r < self.heap.count && Self.less(self.heap[r], self.heap[m]) { m = r }
            if m == i { break }
            self.heap.swapAt(i, m)
            i = m
        }
        return (top.0, top.2)
    }

    static func less(_ a: (Double, Int, E), _ b: (Double, Int, E)) -> Bool { (a.0, a.1) < (b.0, b.1) }
}
