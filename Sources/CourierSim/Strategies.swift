import CourierMedium
import CourierWire
import Foundation

/// Other ways to spread the same traffic over the same channel, for comparison with the Courier engine
/// (`relay drill simulate FILE --compare`): the scenario's relays, radio, traffic and events, the same
/// `RadioChannel` and modem model as `DrillSimulator`, but relays that only flood.
///
/// - `naive`: every relay rebroadcasts each packet the first time it hears it (after its modem's listen-before-talk).
/// - `managed`: Meshtastic's managed flooding (meshtastic/firmware `FloodingRouter`, `RadioInterface::
///   getTxDelayMsecWeighted`, client role): a relay that hears a packet for the first time waits
///   2·CWmax slots + random(0, 2^CW) slots, CW mapped linearly from the packet's SNR (−20…15 dB) to CWmin 3…CWmax 8
///   (far, weak receivers go first), then rebroadcasts with the hop limit one lower; a packet heard with hop limit 0
///   is not rebroadcast (origins start at 3, Meshtastic's default); hearing someone else rebroadcast the packet
///   before one's own went out cancels one's own. The destination of a direct message does not rebroadcast it.
///
/// Neither keeps anything for later (no store-and-forward, no acks or retries): what a partition or a switched-off
/// relay misses is lost. A message longer than one packet is split into packets of at most `payload` bytes after a
/// 16-byte header (Meshtastic's), uncompressed; a copy counts as delivered when all its packets arrived.
public final class FloodSimulator {
    public enum Strategy: String, Sendable, CaseIterable { case naive, managed }

    public static let header = 16
    public static let payload = 220
    public static let hopLimit = 3
    static let cwMin = 3.0, cwMax = 8.0

    public let scenario: Scenario
    public let strategy: Strategy
    public private(set) var channel: RadioChannel
    public private(set) var elapsed: Double = 0
    let n: Int
    var queue = TimedQueue<FloodEvent>()
    var rng: SplitMix64
    var down: [Bool]
    var quiet: [Bool]
    var index: [String: Int] = [:]

    struct Packet: Hashable {
        var message: Int
        var part: Int
        var hopLimit: Int
        var bytes: Int
        var key: [Int] { [self.message, self.part] }
    }
    var seen: [Set<[Int]>]
    /// Packets waiting for their rebroadcast time or in the modem's queue (cancelled by hearing them again).
    var pending: [[[Int]: Packet]]
    var modemQueue: [[Packet]]
    var modemScheduled: [Bool]
    var transmittingUntil: [Double]
    var onAir: [RadioChannel.TransmissionID: Packet] = [:]
    var parts: [Int: Int] = [:]
    var partsHeld: [Int: [Int: Int]] = [:]
    public private(set) var deliveredAt: [DrillSimulator.Copy: Double] = [:]
    public private(set) var recipients: [Int: [Int]] = [:]
    /// Airtime of the alerts' packets (first sends and rebroadcasts).
    public private(set) var alertAirtime: Double = 0

    public init(scenario: Scenario, strategy: Strategy) throws {
        self.scenario = scenario
        self.strategy = strategy
        self.channel = try scenario.channel()
        self.n = scenario.nodes.count
        self.rng = SplitMix64(seed: scenario.seed ^ 0xf100d)
        self.down = Array(repeating: false, count: self.n)
        self.quiet = Array(repeating: false, count: self.n)
        self.seen = Array(repeating: [], count: self.n)
        self.pending = Array(repeating: [:], count: self.n)
        self.modemQueue = Array(repeating: [], count: self.n)
        self.modemScheduled = Array(repeating: false, count: self.n)
        self.transmittingUntil = Array(repeating: -.infinity, count: self.n)
        for (i, node) in scenario.nodes.enumerated() { self.index[node.id] = i }
        for (k, m) in scenario.traffic.enumerated() { self.queue.push(m.at, .traffic(k)) }
        for (k, e) in scenario.events.enumerated() { self.queue.push(e.at, .event(k)) }
    }

    public func run() throws {
        while let (t, e) = self.queue.peek(), t <= self.scenario.duration {
            _ = self.queue.pop()
            self.elapsed = max(self.elapsed, t)
            switch e {
            case .traffic(let k): self.send(k)
            case .event(let k): self.apply(self.scenario.events[k])
            case .rebroadcast(let i, let key):
                guard let p = self.pending[i][key], !self.down[i], !self.quiet[i] else { continue }
                self.modemQueue[i].append(p)
                self.scheduleModem(i)
            case .modem(let i): try self.modemTry(i)
            case .transmissionEnds(let i): try self.ended(i)
            }
        }
        self.elapsed = self.scenario.duration
    }

    func send(_ k: Int) {
        let m = self.scenario.traffic[k]
        guard let from = self.index[m.from] else { return }
        switch m.to {
        case .everyone: self.recipients[k] = (0..<self.n).filter { $0 != from }
        case .node(let to): self.recipients[k] = self.index[to].map { [$0] } ?? []
        }
        let count = max(1, (m.bytes + Self.payload - 1) / Self.payload)
        self.parts[k] = count
        // A relay that is off or quiet cannot send (nothing is kept for later).
        guard !self.down[from], !self.quiet[from] else { return }
        for part in 0..<count {
            let size = min(Self.payload, m.bytes - part * Self.payload)
            let p = Packet(message: k, part: part, hopLimit: Self.hopLimit, bytes: Self.header + max(size, 1))
            self.seen[from].insert(p.key)
            self.modemQueue[from].append(p)
        }
        self.scheduleModem(from)
    }

    func apply(_ e: Scenario.Event) {
        switch e {
        case .down(_, let ns):
            for i in ns.compactMap({ self.index[$0] }) {
                self.down[i] = true
                self.channel.setDown(i, true)
                self.modemQueue[i] = []
                self.pending[i] = [:]
            }
        case .up(_, let ns):
            for i in ns.compactMap({ self.index[$0] }) {
                self.down[i] = false
                self.channel.setDown(i, false)
            }
        case .quiet(_, let ns):
            for i in ns.compactMap({ self.index[$0] }) {
                self.quiet[i] = true
                self.modemQueue[i] = []
                self.pending[i] = [:]
            }
        case .unquiet(_, let ns):
            for i in ns.compactMap({ self.index[$0] }) { self.quiet[i] = false }
        case .partition(_, let groups):
            self.channel.partition(groups.map { $0.compactMap { self.index[$0] } })
        case .heal:
            self.channel.heal()
        case .courier:
            // A relay carried past others only rebroadcasts what it hears there and then: flooding keeps nothing.
            break
        }
    }

    func scheduleModem(_ i: Int, at t: Double? = nil) {
        guard !self.modemScheduled[i] else { return }
        self.modemScheduled[i] = true
        self.queue.push(max(t ?? self.elapsed, self.elapsed), .modem(i))
    }

    func modemTry(_ i: Int) throws {
        self.modemScheduled[i] = false
        guard !self.down[i], let p = self.modemQueue[i].first, self.transmittingUntil[i] <= self.elapsed else { return }
        switch try self.channel.requestToSend(node: i, bytes: p.bytes, at: self.elapsed) {
        case .wait(let until, _):
            self.scheduleModem(i, at: max(until, self.elapsed + 1e-6))
        case .transmit:
            self.modemQueue[i].removeFirst()
            self.pending[i][p.key] = nil
            let tx = try self.channel.startTransmission(from: i, bytes: p.bytes, at: self.elapsed)
            if self.scenario.traffic[p.message].kind == .alert { self.alertAirtime += tx.end - tx.start }
            self.onAir[tx.id] = p
            self.transmittingUntil[i] = tx.end
            self.queue.push(tx.end, .transmissionEnds(i))
        }
    }

    func ended(_ from: Int) throws {
        for rec in try self.channel.receptions(through: self.elapsed) {
            guard case .received = rec.outcome, let p = self.onAir[rec.transmission], !self.down[rec.to] else { continue }
            self.heard(p, at: rec.to, powerDBm: rec.powerDBm)
        }
        let live = Set(self.channel.transmissionsOnAir.map(\.id))
        for id in self.onAir.keys where !live.contains(id) { self.onAir[id] = nil }
        if !self.modemQueue[from].isEmpty { self.scheduleModem(from) }
    }

    func heard(_ p: Packet, at i: Int, powerDBm: Double) {
        if self.seen[i].contains(p.key) {
            // Someone else rebroadcast it first: managed flooding drops its own.
            if self.strategy == .managed, self.pending[i][p.key] != nil {
                self.pending[i][p.key] = nil
                self.modemQueue[i].removeAll { $0.key == p.key }
            }
            return
        }
        self.seen[i].insert(p.key)
        var forMe = false
        if let rs = self.recipients[p.message], rs.contains(i) {
            forMe = true
            self.partsHeld[p.message, default: [:]][i, default: 0] += 1
            if self.partsHeld[p.message]?[i] == self.parts[p.message] {
                self.deliveredAt[.init(message: p.message, recipient: i)] = self.elapsed
            }
        }
        guard !self.quiet[i] else { return }
        switch self.strategy {
        case .naive:
            self.modemQueue[i].append(p)
            self.scheduleModem(i)
        case .managed:
            if case .node = self.scenario.traffic[p.message].to, forMe { return }
            guard p.hopLimit > 0 else { return }
            var q = p
            q.hopLimit -= 1
            let snr = powerDBm - self.channel.configuration.physics.noiseFloorDBm
            let cw = (Self.cwMin + (min(max(snr, -20), 15) + 20) * (Self.cwMax - Self.cwMin) / 35).rounded(.down)
            let slot = self.channel.meshtasticSlot
            let delay = 2 * Self.cwMax * slot + Double(self.rng.next() % UInt64(1 << Int(cw))) * slot
            self.pending[i][p.key] = q
            self.queue.push(self.elapsed + delay, .rebroadcast(i, p.key))
        }
    }

    /// The figures to set beside the engine's.
    public func summary() -> StrategySummary {
        var lat: [Double] = []
        var sent = 0
        for (k, rs) in self.recipients {
            sent += rs.count
            for r in rs {
                if let t = self.deliveredAt[.init(message: k, recipient: r)] { lat.append(t - self.scenario.traffic[k].at) }
            }
        }
        lat.sort()
        let st = self.channel.statistics
        var alerts = StrategySummary.AlertFigures(copies: 0, within10min: 0, airtime: self.alertAirtime)
        for (k, rs) in self.recipients where self.scenario.traffic[k].kind == .alert && self.scenario.traffic[k].to == .everyone {
            alerts.copies += rs.count
            alerts.within10min += rs.filter { r in
                self.deliveredAt[.init(message: k, recipient: r)].map { $0 - self.scenario.traffic[k].at <= 600 } ?? false
            }.count
        }
        return StrategySummary(strategy: self.strategy.rawValue, sent: sent, delivered: lat.count,
                               latencyP50: DrillResult.percentile(lat, 0.5), latencyP95: DrillResult.percentile(lat, 0.95),
                               transmissions: st.transmissions, airtime: st.airtime, collisions: st.collisions,
                               alerts: alerts.copies > 0 ? alerts : nil)
    }
}

enum FloodEvent {
    case traffic(Int)
    case event(Int)
    case rebroadcast(Int, [Int])
    case modem(Int)
    case transmissionEnds(Int)
}

/// One strategy's figures on a scenario (`relay drill simulate FILE --compare`).
public struct StrategySummary: Sendable, Equatable {
    public var strategy: String
    public var sent: Int
    public var delivered: Int
    public var latencyP50: Double?
    public var latencyP95: Double?
    public var transmissions: Int
    public var airtime: Double
    public var collisions: Int
    /// The alerts to everyone: copies, copies delivered within 10 minutes of the alert, airtime of their packets
    /// (nil: no such alert).
    public var alerts: AlertFigures?

    public struct AlertFigures: Sendable, Equatable {
        public var copies: Int
        public var within10min: Int
        public var airtime: Double
    }

    public var deliveryRatio: Double { self.sent == 0 ? 0 : Double(self.delivered) / Double(self.sent) }

    public init(strategy: String, sent: Int, delivered: Int, latencyP50: Double?, latencyP95: Double?, transmissions: Int,
                airtime: Double, collisions: Int, alerts: AlertFigures? = nil) {
        self.alerts = alerts
        self.strategy = strategy
        self.sent = sent
        self.delivered = delivered
        self.latencyP50 = latencyP50
        self.latencyP95 = latencyP95
        self.transmissions = transmissions
        self.airtime = airtime
        self.collisions = collisions
    }

    public init(_ r: DrillResult) {
        self.init(strategy: "courier", sent: r.sent, delivered: r.delivered, latencyP50: r.latencyP50, latencyP95: r.latencyP95,
                  transmissions: r.transmissions, airtime: r.airtime, collisions: r.collisions,
                  alerts: r.alerts.isEmpty ? nil : AlertFigures(
                    copies: r.alerts.reduce(0) { $0 + $1.recipients },
                    within10min: r.alerts.reduce(0) { $0 + ($1.reachAfter.first { $0.after == 600 }?.relays ?? 0) },
                    airtime: r.airtimeByClass["data: alert"] ?? 0))
    }

    /// A table, one strategy a row.
    public static func table(_ rows: [StrategySummary]) -> [String] {
        let alerts = rows.contains { $0.alerts != nil }
        var out = ["strategy   delivered        ratio   p50 latency   p95 latency   transmissions   airtime     collisions"
                   + (alerts ? "   alert ≤10 min        alert airtime" : "")]
        for r in rows {
            let cells = [
                r.strategy.padding(toLength: 10, withPad: " ", startingAt: 0),
                "\(r.delivered)/\(r.sent)".padding(toLength: 16, withPad: " ", startingAt: 0),
                String(format: "%5.1f%%", r.deliveryRatio * 100).padding(toLength: 7, withPad: " ", startingAt: 0),
                DrillResult.seconds(r.latencyP50).padding(toLength: 13, withPad: " ", startingAt: 0),
                DrillResult.seconds(r.latencyP95).padding(toLength: 13, withPad: " ", startingAt: 0),
                "\(r.transmissions)".padding(toLength: 15, withPad: " ", startingAt: 0),
                String(format: "%.1f s", r.airtime).padding(toLength: 11, withPad: " ", startingAt: 0),
                alerts ? "\(r.collisions)".padding(toLength: 12, withPad: " ", startingAt: 0) : "\(r.collisions)",
            ] + (!alerts ? [] : [
                r.alerts.map { a in
                    "\(a.within10min)/\(a.copies) (\(String(format: "%.1f%%", a.copies > 0 ? 100 * Double(a.within10min) / Double(a.copies) : 0)))"
                }?.padding(toLength: 20, withPad: " ", startingAt: 0) ?? "-".padding(toLength: 20, withPad: " ", startingAt: 0),
                r.alerts.map { String(format: "%.1f s", $0.airtime) } ?? "-",
            ])
            out.append(cells.joined(separator: " "))
        }
        return out
    }

    public func json() -> [String: Any] {
        func num(_ v: Double?) -> Any { v.map { (($0 * 1000).rounded() / 1000) as Any } ?? NSNull() }
        return ["strategy": self.strategy, "sent": self.sent, "delivered": self.delivered, "delivery_ratio": num(self.deliveryRatio),
                "latency_p50_s": num(self.latencyP50), "latency_p95_s": num(self.latencyP95),
                "transmissions": self.transmissions, "airtime_s": num(self.airtime), "collisions": self.collisions,
                "alert_copies": self.alerts.map { $0.copies as Any } ?? NSNull(),
                "alert_within_10min": self.alerts.map { $0.within10min as Any } ?? NSNull(),
                "alert_airtime_s": num(self.alerts?.airtime)]
    }
}

/// The least an alert to everyone could cost on a scenario's map (`relay drill simulate FILE --compare`): a planner
/// that knows who hears whom picks the relays that send it (a greedy connected dominating set grown from the origin:
/// of the relays that already have it and have not sent, the one whose packet reaches the most relays still without
/// it, until every relay the origin can reach has it), with no packet lost and none colliding. Greedy is exact on a
/// chain and where one packet reaches all, and elsewhere within a logarithmic factor of the least; a strategy that
/// decides relay by relay on a lossy, shared channel does not come near it. It puts the airtime targets in proportion.
public struct AlertFloor: Sendable, Equatable {
    /// The alert's origin and when it was sent.
    public var from: String
    public var at: Double
    /// Relays the origin can reach at all (over any number of hops), itself left out.
    public var reachable: Int
    /// Packets the plan sends (the origin's included), and their airtime at the flooding strategies' packet size
    /// (`FloodSimulator.header` + the alert's bytes, one packet per `FloodSimulator.payload` bytes).
    public var transmissions: Int
    public var airtime: Double

    /// One floor per alert to everyone in the scenario, over the links of a quiet channel with no partition.
    public static func alerts(in scenario: Scenario) throws(ScenarioError) -> [AlertFloor] {
        let channel = try scenario.channel()
        let n = scenario.nodes.count
        let heard = (0..<n).map { Set(channel.neighbours(of: $0)) }
        var index: [String: Int] = [:]
        for (i, node) in scenario.nodes.enumerated() { index[node.id] = i }
        return scenario.traffic.compactMap { m -> AlertFloor? in
            guard m.kind == .alert, m.to == .everyone, let origin = index[m.from] else { return nil }
            let (senders, has) = Self.plan(origin: origin, heard: heard)
            let packets = max(1, (m.bytes + FloodSimulator.payload - 1) / FloodSimulator.payload)
            var airtime = 0.0
            for part in 0..<packets {
                let size = min(FloodSimulator.payload, m.bytes - part * FloodSimulator.payload)
                airtime += channel.airtime(bytes: FloodSimulator.header + max(size, 1))
            }
            return AlertFloor(from: m.from, at: m.at, reachable: has - 1, transmissions: senders * packets,
                              airtime: Double(senders) * airtime)
        }
    }

    /// The greedy plan from `origin` over `heard` (per relay, the relays that decode it): how many send, how many end
    /// up with it (the origin included).
    public static func plan(origin: Int, heard: [Set<Int>]) -> (senders: Int, has: Int) {
        var has: Set<Int> = [origin]
        has.formUnion(heard[origin])
        var sent: Set<Int> = [origin]
        while true {
            var best: (gain: Int, node: Int)? = nil
            for i in has.sorted() where !sent.contains(i) {
                let gain = heard[i].subtracting(has).count
                if gain > 0 && gain > (best?.gain ?? 0) { best = (gain, i) }
            }
            guard let b = best else { break }
            sent.insert(b.node)
            has.formUnion(heard[b.node])
        }
        return (sent.count, has.count)
    }

    /// A line for the comparison table's foot, set against the issue's airtime target (at most half managed
    /// flooding's alert airtime per relay reached).
    public func line(managed: StrategySummary.AlertFigures?) -> String {
        var s = String(format: "floor for %@'s alert at %g s: %d packets, %.1f s of airtime reach all %d relays it can reach (%.2f s a relay), when a planner with the whole map picks the senders and nothing is lost or collides",
                       self.from, self.at, self.transmissions, self.airtime, self.reachable,
                       self.reachable > 0 ? self.airtime / Double(self.reachable) : 0)
        if let m = managed, m.within10min > 0 {
            let half = 0.5 * m.airtime / Double(m.within10min)
            s += String(format: "; half of managed flooding's airtime per relay reached is %.2f s a relay", half)
        }
        return s
    }

    public func json() -> [String: Any] {
        ["from": self.from, "at_s": self.at, "reachable": self.reachable, "transmissions": self.transmissions,
         "airtime_s": (self.airtime * 1000).rounded() / 1000]
    }
}
