import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Crypto
import Foundation
import Logging

/// Many relays on one machine, on a virtual clock: every node is the real engine with a real (in-memory) store;
/// the radio is simulated. Deterministic from a seed: the same seed gives the same run, packet for packet.
///
/// The medium: each node has one half-duplex radio link named "radio"; a packet reaches every neighbour in range
/// (the adjacency) independently with probability 1 - loss, after its airtime. Collisions are not modelled.
public final class MeshSimulator {
    public struct Options: Sendable {
        public var seed: UInt64 = 1
        public var loss = 0.0
        /// Default: LoRa SF9/125 kHz, MTU 255, no duty-cycle limit.
        public var link = LinkProperties(
            mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
            airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0))
        public var dutyCycle: Double? = nil
        public var configure: (@Sendable (inout NodeConfig) -> Void)? = nil
        public init() {}
    }

    public let options: Options
    public private(set) var nodes: [Node] = []
    /// Each node's store (the engine sees it only as its `NodeStorage`).
    public private(set) var stores: [Store] = []
    public private(set) var identities: [NodeIdentity] = []
    public private(set) var now: Double
    var adjacency: [[Bool]]
    var online: [Bool]
    var rng: SplitMix64
    var queue = EventQueue()
    var wakeAt: [Double]
    /// Packets each node sent; packets that carried data of each bundle.
    public private(set) var packetsSent: [Int]
    public private(set) var packetsCarrying: [BundleID: Int] = [:]
    public private(set) var deliveries: [Int: [BundleID: Int]] = [:]
    public private(set) var deliveryTimes: [BundleID: [Int: Double]] = [:]
    public private(set) var events: [(node: Int, event: NodeEvent)] = []
    public private(set) var submittedAt: [BundleID: Double] = [:]
    /// Every packet put on the air (also by nodes that are offline: the engine sent it), opened and classified.
    public private(set) var transmissions: [Transmission] = []
    /// Every output of every node, one line each, in the order the nodes produced them (see `traceLine`): the
    /// golden trace (Tests/CourierNodeTests/GoldenTraceTests.swift, `courier-dev trace`).
    public private(set) var trace: [String] = []
    let opener: PacketOpener
    let compressor: BodyCompressor

    /// One packet a node transmitted, and what was in it.
    public struct Transmission: Sendable {
        /// Seconds since the simulation's epoch.
        public var time: Double
        public var node: Int
        public var bytes: Int
        public var airtime: Double
        /// Bundles with data in the packet (whole or fragments).
        public var bundles: [BundleID]
        /// Data sent to one neighbour (a next hop), rather than to everyone in range.
        public var directed = false
        public var hasAck = false
        public var hasSummary = false
        public var hasAnnounce = false
        /// Bundles that receipts in this packet say their origins have seen.
        public var receiptsFor: [BundleID] = []
        /// The receipt-parts records in the packet (SPEC 6.16), as sent.
        public var receiptRecords: [ReceiptPartsRecord] = []
        /// Bundles whose directed transfers the acks in this packet acknowledge.
        public var acked: [BundleID] = []
        /// A periodic announce that carried the node's summary (it would have gone out anyway).
        public var periodicAnnounce = false
        /// Every bundle with data in the packet is an identity bundle (a node's keys and name, flooded when it
        /// starts and renewed before it expires, or a key request or its answer): seen whole on the air before.
        public var identitiesOnly = false
    }
    /// Directed transfers seen on the air: sender -> transfer number -> bundle (to attribute acks).
    var transferBundles: [Int: [UInt32: BundleID]] = [:]
    /// Identity bundles seen whole on the air (to tell the packets that carry only those).
    var identityBundles: Set<BundleID> = []

    public static let epoch: Double = 1_790_000_000

    public init(count: Int, edges: [(Int, Int)], options: Options = Options()) throws {
        self.options = options
        self.now = Self.epoch
        self.rng = SplitMix64(seed: options.seed)
        self.adjacency = Array(repeating: Array(repeating: false, count: count), count: count)
        self.online = Array(repeating: true, count: count)
        self.wakeAt = Array(repeating: .infinity, count: count)
        self.packetsSent = Array(repeating: 0, count: count)
        var kg = SplitMix64(seed: options.seed &* 7919)
        let net = try NetworkKey(bytes: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) })
        let compressor = BodyCompressor()
        let shared = SharedWork()
        var opener = PacketOpener(networkKey: net, acceptOpen: true)
        opener.recent = shared.opened
        self.opener = opener
        self.compressor = compressor
        for (a, b) in edges { self.connect(a, b) }
        for i in 0..<count {
            let id = try NodeIdentity(
                signingSeed: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) },
                agreementSeed: (0..<32).map { _ in UInt8(truncatingIfNeeded: kg.next()) })
            self.identities.append(id)
            var c = NodeConfig(identity: id, networkKey: net, name: "node\(i)")
            options.configure?(&c)
            var sc = Store.Configuration()
            sc.inMemory = true
            let store = try Store(path: "node\(i)", configuration: sc, logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
            let node = try Node(
                config: c, store: store, links: [LinkInfo(name: "radio", properties: options.link, dutyCycle: options.dutyCycle)],
                now: self.now, seed: options.seed &+ UInt64(i) &* 104_729, compressor: compressor, shared: shared)
            self.nodes.append(node)
            self.stores.append(store)
        }
        for i in 0..<count { self.apply(i, self.nodes[i].linkUp("radio", now: self.now)) }
    }

    public func connect(_ a: Int, _ b: Int, _ on: Bool = true) {
        self.adjacency[a][b] = on
        self.adjacency[b][a] = on
    }

    /// Takes a node off the air (power cut, moved away) or back.
    public func setOnline(_ i: Int, _ on: Bool) {
        guard self.online[i] != on else { return }
        self.online[i] = on
        if on { self.apply(i, self.nodes[i].linkUp("radio", now: self.now)) } else { self.nodes[i].linkDown("radio", now: self.now) }
    }

    public func setQuiet(_ i: Int, _ on: Bool) throws {
        self.apply(i, try self.nodes[i].setQuiet(on, now: self.now))
    }

    @discardableResult
    public func submit(from i: Int, kind: Kind, to dest: Destination, text: String, options: BundleOptions? = nil) throws -> BundleID {
        let (id, out) = try self.nodes[i].submit(kind: kind, destination: dest, content: Array(text.utf8), options: options, now: self.now)
        self.submittedAt[id] = self.now
        self.apply(i, out)
        return id
    }

    func apply(_ i: Int, _ outputs: [NodeOutput]) {
        // The engine says which packet carries a periodic announce with its summary (`.announced`, just before it).
        // That event describes the packet that follows, already in the trace: it is not traced or kept itself.
        var periodicNext = false
        for o in outputs {
            if case .event(.announced(_, let withSummary)) = o {
                periodicNext = withSummary
                continue
            }
            self.trace.append(self.traceLine(i, o))
            switch o {
            case .send(_, let packet, let carrying):
                self.packetsSent[i] += 1
                for b in carrying { self.packetsCarrying[b, default: 0] += 1 }
                let airtime = self.options.link.airtime(bytes: packet.count)
                var t = self.classify(packet, from: i, airtime: airtime, carrying: carrying)
                t.periodicAnnounce = periodicNext
                periodicNext = false
                self.transmissions.append(t)
                guard self.online[i] else { continue }
                for j in 0..<self.nodes.count where j != i && self.adjacency[i][j] {
                    if self.rng.unit() < self.options.loss { continue }
                    self.queue.push(self.now + airtime, .deliver(to: j, packet: packet))
                }
            case .delivered(let m):
                self.deliveries[i, default: [:]][m.id, default: 0] += 1
                self.deliveryTimes[m.id, default: [:]][i] = self.now
            case .event(let e):
                self.events.append((i, e))
            }
        }
        let w = self.nodes[i].nextWakeup(now: self.now)
        if w < self.wakeAt[i] {
            self.wakeAt[i] = w
            self.queue.push(w, .wake(i))
        }
    }

    /// One output as a line of the golden trace: virtual time (µs since the epoch), node, and what it was; a packet
    /// by its link, size and the first 8 bytes of its SHA-256.
    func traceLine(_ i: Int, _ o: NodeOutput) -> String {
        let t = String(format: "%.6f", self.elapsed)
        switch o {
        case .send(let link, let packet, let carrying):
            let digest = SHA256.hash(data: packet).prefix(8).map { String(format: "%02x", $0) }.joined()
            return "\(t) n\(i) send \(link) \(packet.count)B \(digest) carrying \(carrying.map(\.description).joined(separator: ","))"
        case .delivered(let m): return "\(t) n\(i) delivered \(m.id) \(m.kind) \(m.content.count)B"
        case .event(let e): return "\(t) n\(i) event \(e)"
        }
    }

    func classify(_ packet: [UInt8], from i: Int, airtime: Double, carrying: [BundleID]) -> Transmission {
        var t = Transmission(time: self.elapsed, node: i, bytes: packet.count, airtime: airtime, bundles: carrying)
        let me = self.identities[i].nodeID
        guard let p = try? self.opener.open(packet, candidates: { $0 == me.short ? [me] : [] }) else { return t }
        for r in p.records {
            switch r {
            case .ack(let a):
                t.hasAck = true
                if let j = self.identities.firstIndex(where: { $0.nodeID.short == a.target }) {
                    t.acked += a.entries.compactMap { self.transferBundles[j]?[$0.transfer] }
                }
            case .summary: t.hasSummary = true
            case .receiptParts(let r):
                t.receiptsFor += r.bundleIDs
                t.receiptRecords.append(r)
            case .announce: t.hasAnnounce = true
            case .fragment(let f):
                guard f.nextHop != nil else { continue }
                t.directed = true
                if carrying.count == 1 { self.transferBundles[i, default: [:]][f.transfer] = carrying[0] }
            case .bundle(let b):
                if b.nextHop != nil { t.directed = true }
                guard let bundle = try? CourierBundle(decoding: b.bundle) else { continue }
                if let n = b.transfer { self.transferBundles[i, default: [:]][n] = bundle.id }
                if bundle.kind == .identity { self.identityBundles.insert(bundle.id) }
                guard bundle.kind == .receipt,
                      let content = try? bundle.content(compressor: self.compressor) else { continue }
                // Engines make receipts whole (ReceiptContent.encode): a malformed one is a defect of the engine, and
                // stops the run rather than being counted as confirming nothing.
                do { t.receiptsFor += try ReceiptContent.decode(content) } catch {
                    preconditionFailure("n\(i) sent a malformed receipt \(bundle.id): \(error)")
                }
            default: break
            }
        }
        t.identitiesOnly = !carrying.isEmpty && carrying.allSatisfy { self.identityBundles.contains($0) }
        return t
    }

    /// Naive flooding on the same mesh and loss model, for comparison: the origin transmits once, and every node
    /// transmits once when it first receives the message; nothing else (no repair, no acks, no receipts). Each
    /// packet reaches each neighbour independently with probability 1 - loss. Returns the transmissions and the
    /// nodes other than the origin that got it.
    public static func naiveFlood(count: Int, edges: [(Int, Int)], loss: Double, origin: Int, seed: UInt64) -> (transmissions: Int, reached: Int) {
        var adj = Array(repeating: [Int](), count: count)
        for (a, b) in edges {
            adj[a].append(b)
            adj[b].append(a)
        }
        var rng = SplitMix64(seed: seed)
        var has = Array(repeating: false, count: count)
        has[origin] = true
        var queue = [origin]
        var tx = 0
        while !queue.isEmpty {
            let i = queue.removeFirst()
            tx += 1
            for j in adj[i].sorted() {
                if rng.unit() < loss || has[j] { continue }
                has[j] = true
                queue.append(j)
            }
        }
        return (tx, has.filter { $0 }.count - 1)
    }

    /// Runs the virtual clock to `time` (seconds since the simulation's epoch).
    public func run(until time: Double) {
        let end = Self.epoch + time
        while let (t, e) = self.queue.peek(), t <= end {
            _ = self.queue.pop()
            self.now = max(self.now, t)
            switch e {
            case .deliver(let j, let packet):
                guard self.online[j] else { continue }
                self.apply(j, self.nodes[j].receive(packet, on: "radio", now: self.now))
            case .wake(let i):
                guard self.wakeAt[i] == t else { continue }
                self.wakeAt[i] = .infinity
                self.apply(i, self.nodes[i].tick(now: self.now))
            }
        }
        self.now = max(self.now, end)
    }

    public var elapsed: Double { self.now - Self.epoch }

    public func inbox(_ i: Int) throws -> [InboxMessage] { try self.stores[i].inbox(limit: 1_000_000) }

    /// Whether node i has bundle `id` in its inbox.
    public func has(_ i: Int, _ id: BundleID) -> Bool { (self.deliveries[i]?[id] ?? 0) > 0 }

    /// The largest number of times any node was handed the same bundle (1 when no inbox got a duplicate).
    public var maxDeliveriesOfOneBundle: Int { self.deliveries.values.flatMap(\.values).max() ?? 0 }

    /// A connected random mesh: a random spanning tree plus extra random edges up to `degree` on average.
    public static func randomMesh(count: Int, degree: Double, seed: UInt64) -> [(Int, Int)] {
        var g = SplitMix64(seed: seed)
        var edges = Set<[Int]>()
        for i in 1..<count {
            let j = Int(g.next() % UInt64(i))
            edges.insert([j, i])
        }
        while Double(edges.count) * 2 / Double(count) < degree {
            let a = Int(g.next() % UInt64(count))
            let b = Int(g.next() % UInt64(count))
            if a != b { edges.insert([min(a, b), max(a, b)]) }
        }
        return edges.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }.map { ($0[0], $0[1]) }
    }
}

enum SimEvent {
    case deliver(to: Int, packet: [UInt8])
    case wake(Int)
}

/// The mesh simulator's events in time order (`TimedQueue`, shared with the drill simulator).
typealias EventQueue = TimedQueue<SimEvent>
