import CourierWire
import Foundation

/// The figures of a drill run (`DrillSimulator.result()`): what was delivered and how fast, what it cost on the
/// air, and how quickly the mesh recovered from each disruption. Times in seconds since the scenario's start.
///
/// Counting: a message to one relay is one copy to deliver; a message to everyone is one copy for each relay of
/// the scenario other than its sender (couriers are not recipients). `sent` counts copies, `delivered` copies
/// that reached their recipient's inbox within the run, `deliveryRatio` = delivered / sent.
public struct DrillResult: Sendable, Equatable {
    public struct Latency: Sendable, Equatable {
        public var kind: String
        public var sent: Int
        public var delivered: Int
        public var p50: Double?
        public var p95: Double?
        public var max: Double?
    }

    /// A disruption (partition → heal, relays down → up, quiet → unquiet) and the mesh's recovery after it.
    public struct Disruption: Sendable, Equatable {
        public var kind: String
        /// What it was, in words ("partition of 2 groups", "down: east-1").
        public var label: String
        public var start: Double
        /// The heal, or the moment the last of its relays was back (the run's end if it never was).
        public var end: Double
        public var restored: Bool
        /// Copies submitted during the disruption that had not reached their recipients by its end.
        public var queued: Int
        /// Of those, delivered by the end of the run.
        public var deliveredAfter: Int
        /// From `end` until 95% of `queued` were delivered (0 when nothing was queued; nil: not within the run).
        public var recovery: Double?
        /// The same copies on the intact mesh (the scenario without its disruptions, `DrillResult.intact`): 95% of
        /// them delivered within this many seconds of their submission (0: nothing queued; nil: not measured, or
        /// 95% never arrived there either). The target: `recovery` at most twice this.
        public var intact: Double?
        /// The copies counted in `queued`.
        var copies: [DrillSimulator.Copy] = []

        /// Whether recovery met the target (at most twice the intact time); nil when either figure is missing.
        public var targetMet: Bool? {
            guard let i = self.intact else { return nil }
            guard let r = self.recovery else { return false }
            return r <= 2 * i + 1e-9
        }
    }

    /// How an alert to everyone spread: relays that had it 1, 2, 5 and 10 minutes after it was sent, and when 99%
    /// of them had it (issue 13's target: 99% within 10 minutes).
    public struct AlertReach: Sendable, Equatable {
        public var from: String
        public var at: Double
        public var recipients: Int
        /// Relays that had it by the end of the run.
        public var reached: Int
        /// (Seconds after it was sent, relays that had it by then), for 60, 120, 300 and 600 s.
        public var reachAfter: [Seconds]
        /// Seconds after it was sent until 99% of the recipients had it (nil: not within the run).
        public var to99: Double?

        public struct Seconds: Sendable, Equatable {
            public var after: Double
            public var relays: Int
        }
    }

    public struct Offer: Sendable, Equatable {
        public var from: String
        public var sentAt: Double
        /// When it reached the requester (nil: not within the run).
        public var arrivedAt: Double?
        public var inTime: Bool
    }

    public struct AidRequest: Sendable, Equatable {
        public var from: String
        public var at: Double
        /// The respond-by moment the request carries.
        public var respondBy: Double
        public var offers: [Offer]
    }

    public struct RelayFigures: Sendable, Equatable {
        public var name: String
        public var x: Double
        public var y: Double
        public var airtime: Double
        /// Share of the run this relay sensed the channel busy or transmitted.
        public var utilisation: Double
        /// When the first alert reached it (nil: never, or it sent the alert; see `alertOrigin`).
        public var alertArrival: Double?
    }

    public var name: String
    public var duration: Double
    public var relays: Int
    public var couriers: Int
    public var messages: Int
    public var sent: Int
    public var delivered: Int
    public var deliveryRatio: Double
    public var latencyP50: Double?
    public var latencyP95: Double?
    public var latencyMax: Double?
    public var latencyByKind: [Latency]
    public var transmissions: Int
    public var airtime: Double
    public var collisions: Int
    public var captures: Int
    public var lostHalfDuplex: Int
    public var deferralsBusy: Int
    public var transmissionsPerDelivered: Double?
    public var airtimePerDelivered: Double?
    /// Mean and largest share of the run a relay sensed the channel busy (or transmitted).
    public var utilisationMean: Double
    public var utilisationMax: Double
    public var disruptions: [Disruption]
    public var aid: [AidRequest]
    public var perRelay: [RelayFigures]
    /// The first alert's sender and when it was sent (nil: no alert in the scenario).
    public var alertOrigin: String?
    public var alertAt: Double?
    /// Times (since the start) at which copies were delivered, ascending.
    public var deliveryTimes: [Double]
    public var droppedWhileDown: Int
    /// Packets the modems held for their duty cycle (handed over beyond what the limit allowed), and the longest hold.
    public var dutyCycleHeld: Int
    public var dutyCycleLongestHold: Double
    /// Bundles engines gave up on, by reason.
    public var gaveUp: [String: Int]
    /// Each alert to everyone, in the order sent.
    public var alerts: [AlertReach]
    /// Airtime (seconds) and packets by what they carried (`PacketClass`).
    public var airtimeByClass: [String: Double]
    public var packetsByClass: [String: Int]
    /// Retransmissions of directed transfers, summed over the engines (`Node.Stats.retransmissions`).
    public var retransmissions: Int
    /// The duty-cycle allowance of one relay over the run (seconds; nil: no duty cycle).
    public var allowancePerRelay: Double?

    /// The recovery time of each disruption, in order (the `recovery_s` list of `--json`).
    public var recoveryFigures: [Double?] { self.disruptions.map(\.recovery) }

    /// Nearest-rank percentile of ascending values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    init(_ sim: DrillSimulator) {
        let s = sim.scenario
        let end = min(sim.elapsed, s.duration)
        self.name = s.name
        self.duration = s.duration
        self.relays = s.nodes.count
        self.couriers = sim.names.count - s.nodes.count
        let submitted = sim.recipients.keys.sorted()
        self.messages = submitted.count
        var all: [Double] = []
        var byKind: [Scenario.TrafficKind: (sent: Int, lat: [Double])] = [:]
        var sent = 0
        for k in submitted {
            let kind = s.traffic[k].kind
            let rs = sim.recipients[k] ?? []
            sent += rs.count
            byKind[kind, default: (0, [])].sent += rs.count
            for r in rs {
                guard let t = sim.deliveredAt[.init(message: k, recipient: r)], t <= end else { continue }
                let l = t - (sim.submittedAt[k] ?? t)
                all.append(l)
                byKind[kind, default: (0, [])].lat.append(l)
            }
        }
        self.sent = sent
        self.delivered = all.count
        self.deliveryRatio = sent == 0 ? 0 : Double(all.count) / Double(sent)
        all.sort()
        self.latencyP50 = Self.percentile(all, 0.5)
        self.latencyP95 = Self.percentile(all, 0.95)
        self.latencyMax = all.last
        self.latencyByKind = Scenario.TrafficKind.allCases.compactMap { kind in
            guard let v = byKind[kind] else { return nil }
            let l = v.lat.sorted()
            return Latency(kind: kind.rawValue, sent: v.sent, delivered: l.count, p50: Self.percentile(l, 0.5),
                           p95: Self.percentile(l, 0.95), max: l.last)
        }
        let st = sim.channel.statistics
        self.transmissions = st.transmissions
        self.airtime = st.airtime
        self.collisions = st.collisions
        self.captures = st.captures
        self.lostHalfDuplex = st.lostHalfDuplex
        self.deferralsBusy = st.deferralsBusy
        self.transmissionsPerDelivered = all.isEmpty ? nil : Double(st.transmissions) / Double(all.count)
        self.airtimePerDelivered = all.isEmpty ? nil : st.airtime / Double(all.count)
        let util = (0..<s.nodes.count).map { end > 0 ? min(1, sim.sensedBusy[$0] / end) : 0 }
        self.utilisationMean = util.isEmpty ? 0 : util.reduce(0, +) / Double(util.count)
        self.utilisationMax = util.max() ?? 0
        self.deliveryTimes = sim.deliveredAt.compactMap { $0.key.recipient < s.nodes.count && $0.value <= end ? $0.value : nil }.sorted()
        self.droppedWhileDown = sim.droppedWhileDown
        self.dutyCycleHeld = sim.dutyCycleHeld
        self.dutyCycleLongestHold = sim.dutyCycleLongestHold
        var gave: [String: Int] = [:]
        for g in sim.gaveUp { gave[g.reason, default: 0] += 1 }
        self.gaveUp = gave
        self.airtimeByClass = sim.airtimeByClass
        self.packetsByClass = sim.packetsByClass
        self.retransmissions = sim.nodes.reduce(0) { $0 + $1.stats.retransmissions }
        self.allowancePerRelay = s.radio.dutyCycle.map { $0 * end }
        self.alerts = submitted.filter { s.traffic[$0].kind == .alert && s.traffic[$0].to == .everyone }.map { k in
            let at = sim.submittedAt[k] ?? s.traffic[k].at
            let rs = sim.recipients[k] ?? []
            let times = rs.compactMap { r in sim.deliveredAt[.init(message: k, recipient: r)].flatMap { $0 <= end ? $0 - at : nil } }.sorted()
            let need = Int((0.99 * Double(rs.count)).rounded(.up))
            return AlertReach(from: s.traffic[k].from, at: at, recipients: rs.count, reached: times.count,
                              reachAfter: [60.0, 120, 300, 600].map { w in .init(after: w, relays: times.filter { $0 <= w }.count) },
                              to99: need > 0 && times.count >= need ? times[need - 1] : nil)
        }

        // The first alert and when it reached each relay.
        let firstAlert = submitted.filter { s.traffic[$0].kind == .alert }.min { s.traffic[$0].at < s.traffic[$1].at }
        self.alertOrigin = firstAlert.map { s.traffic[$0].from }
        self.alertAt = firstAlert.map { s.traffic[$0].at }
        self.perRelay = s.nodes.enumerated().map { i, n in
            var arrival: Double? = nil
            if let k = firstAlert, let t = sim.deliveredAt[.init(message: k, recipient: i)], t <= end { arrival = t }
            return RelayFigures(name: n.id, x: n.x, y: n.y, airtime: sim.channel.airtimeByNode[i], utilisation: util[i],
                                alertArrival: arrival)
        }

        self.disruptions = Self.disruptions(s).map { d in
            var d = d
            var times: [Double] = []
            var queued = 0
            var copies: [DrillSimulator.Copy] = []
            for k in submitted {
                guard let at = sim.submittedAt[k], at >= d.start, at < d.end else { continue }
                for r in sim.recipients[k] ?? [] {
                    let t = sim.deliveredAt[.init(message: k, recipient: r)]
                    if let t, t <= d.end { continue }
                    queued += 1
                    copies.append(.init(message: k, recipient: r))
                    if let t, t <= end { times.append(t) }
                }
            }
            times.sort()
            d.queued = queued
            d.copies = copies
            d.deliveredAfter = times.count
            if queued == 0 {
                d.recovery = 0
            } else {
                let need = Self.ninetyFivePercent(of: queued)
                d.recovery = times.count >= need ? times[need - 1] - d.end : nil
            }
            return d
        }

        self.aid = submitted.filter { s.traffic[$0].kind == .aid }.map { k in
            let m = s.traffic[k]
            var respondBy = m.at + Double(DrillSimulator.aidRespondByMinutes) * 60
            if let id = sim.bundleOf[k] {
                respondBy = Double(CourierTime.unixSeconds(minutes: id.created)) + Double(DrillSimulator.aidRespondByMinutes) * 60
                    - DrillSimulator.epoch
            }
            let arrived = sim.offersArrived[k] ?? []
            let offers = submitted.filter { j in
                s.traffic[j].kind == .offer && s.traffic[j].to == .node(m.from) && sim.latestRequest(by: m.from, before: j) == k
            }.map { j in
                let at = arrived.first { $0.offer == j }?.at
                return Offer(from: s.traffic[j].from, sentAt: s.traffic[j].at, arrivedAt: at, inTime: at.map { $0 <= respondBy } ?? false)
            }
            return AidRequest(from: m.from, at: m.at, respondBy: respondBy, offers: offers)
        }
    }

    /// The scenario with its disruptions left out (partition, heal, down, up, quiet, unquiet; couriers still go):
    /// the intact mesh the recovery target is measured against.
    public static func intactScenario(_ s: Scenario) -> Scenario {
        var intact = s
        intact.events = s.events.filter { if case .courier = $0 { return true } else { return false } }
        return intact
    }

    /// Adds the intact mesh's figure to each disruption: the copies it queued, run on `intact` (a simulator of
    /// `intactScenario` of the same scenario, run to the same end), 95% delivered within how many seconds of their
    /// submission (nearest rank over the copies; nil when fewer than 95% arrived there).
    public mutating func intact(_ intact: DrillSimulator) {
        let end = min(intact.elapsed, intact.scenario.duration)
        for j in self.disruptions.indices {
            let d = self.disruptions[j]
            guard !d.copies.isEmpty else {
                self.disruptions[j].intact = 0
                continue
            }
            let lat = d.copies.compactMap { c -> Double? in
                guard let t = intact.deliveredAt[c], t <= end, let at = intact.submittedAt[c.message] else { return nil }
                return t - at
            }.sorted()
            let need = Self.ninetyFivePercent(of: d.copies.count)
            self.disruptions[j].intact = lat.count >= need ? lat[need - 1] : nil
        }
    }

    /// Simulated seconds between two looks at whether the intact run's figures are decided (`measureIntact`): a
    /// look reads each disruption's copies once, so a minute costs nothing against the minute simulated, and the
    /// run stops at most a minute after the moment its figures were decided.
    public static let intactCheckStep: Double = 60

    /// Whether `intact` (a simulator of `intactScenario`, run so far) has decided every disruption's intact figure:
    /// running it on cannot change what `intact(_:)` reads from it. For a disruption with `need` = ceil(0.95 x its
    /// queued copies) and L the need-th smallest latency among those delivered so far: decided once `need` are
    /// delivered and every copy not delivered yet has waited at least L since its submission (it can only arrive
    /// later, with a latency above L, so the need-th smallest stays L). A copy not submitted yet has not waited.
    /// A disruption that queued nothing is decided (its figure is 0).
    public func intactDecided(_ intact: DrillSimulator) -> Bool {
        let now = intact.elapsed
        for d in self.disruptions where !d.copies.isEmpty {
            let need = Self.ninetyFivePercent(of: d.copies.count)
            var lat: [Double] = []
            var waiting: [Double] = []
            for c in d.copies {
                guard let at = intact.submittedAt[c.message] else { return false }
                if let t = intact.deliveredAt[c] { lat.append(t - at) } else { waiting.append(now - at) }
            }
            guard lat.count >= need else { return false }
            lat.sort()
            let l = lat[need - 1]
            if waiting.contains(where: { $0 < l }) { return false }
        }
        return true
    }

    /// Runs `intact` (a new simulator of `intactScenario` of the same scenario) until every disruption's intact
    /// figure is decided (`intactDecided`, looked at every `intactCheckStep` simulated seconds) or to the scenario's
    /// end, and adds the figures (`intact(_:)`): the same figures as running it to the end, for less of the day when
    /// the disruptions end early. `progress` is called each time another `every` simulated seconds have passed, with
    /// the simulated seconds so far. Returns the moment the run stopped (seconds since the start).
    @discardableResult
    public mutating func measureIntact(_ intact: DrillSimulator, every: Double = .infinity,
                                       progress: (Double) -> Void = { _ in }) throws -> Double {
        precondition(every > 0)
        let total = intact.scenario.duration
        // (On the hour marks of `every` when forked from the day part-way.)
        var report = every.isFinite ? ((intact.elapsed / every).rounded(.down) + 1) * every : .infinity
        while intact.elapsed < total && !self.intactDecided(intact) {
            let t = min(intact.elapsed + Self.intactCheckStep, total)
            try intact.run(until: t)
            if t >= report {
                progress(t)
                report += every
            }
        }
        self.intact(intact)
        return intact.elapsed
    }

    /// How many of `count` copies make 95% (rounded up): the recovery figures' nearest rank.
    static func ninetyFivePercent(of count: Int) -> Int { Int((0.95 * Double(count)).rounded(.up)) }

    /// The scenario's disruptions, in the order they start.
    static func disruptions(_ s: Scenario) -> [Disruption] {
        var out: [Disruption] = []
        let events = s.events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        func firstReturn(of name: String, after t: Double, up: Bool) -> Double? {
            for e in events where e.at >= t {
                switch e {
                case .up(_, let ns) where up && ns.contains(name): return e.at
                case .unquiet(_, let ns) where !up && ns.contains(name): return e.at
                default: continue
                }
            }
            return nil
        }
        for e in events {
            switch e {
            case .partition(let at, let groups):
                let heal = events.first { if case .heal = $0, $0.at >= at { return true } else { return false } }?.at
                let covered = groups.reduce(0) { $0 + $1.count } == s.nodes.count
                out.append(Disruption(kind: "partition", label: "partition into \(groups.count + (covered ? 0 : 1)) groups", start: at,
                                      end: heal ?? s.duration, restored: heal != nil, queued: 0, deliveredAfter: 0, recovery: nil))
            case .down(let at, let ns), .quiet(let at, let ns):
                let isDown: Bool
                if case .down = e { isDown = true } else { isDown = false }
                let returns = ns.map { firstReturn(of: $0, after: at, up: isDown) }
                let restored = returns.allSatisfy { $0 != nil }
                let endAt = restored ? returns.compactMap { $0 }.max() ?? at : s.duration
                let who = ns.count <= 3 ? ns.joined(separator: ", ") : "\(ns.count) relays"
                out.append(Disruption(kind: isDown ? "down" : "quiet", label: "\(isDown ? "down" : "quiet"): \(who)", start: at,
                                      end: endAt, restored: restored, queued: 0, deliveredAfter: 0, recovery: nil))
            default:
                continue
            }
        }
        return out
    }
}
