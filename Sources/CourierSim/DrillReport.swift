import CourierMedium
import Foundation

/// The ways `relay drill simulate` shows a `DrillResult`: lines for a person, one JSON object for a program.
extension DrillResult {
    static func seconds(_ v: Double?) -> String { v.map { String(format: "%.1f s", $0) } ?? "-" }
    static func percent(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }

    /// The radio in words.
    public static func describe(_ radio: Scenario.RadioSpec) -> String {
        var s: String
        switch radio.kind {
        case .lora(let p): s = "LoRa SF\(p.spreadingFactor)/\(p.bandwidthHz / 1000) kHz CR4/\(p.codingRate)"
        case .afsk1200: s = "AFSK 1200"
        }
        if let d = radio.dutyCycle { s += ", duty cycle \(String(format: "%g", d * 100))%" }
        s += ", carrier sense \(radio.carrierSense.rawValue)"
        return s
    }

    /// The report for a person, one figure a line.
    public func text(radio: Scenario.RadioSpec, seed: UInt64) -> [String] {
        var out: [String] = []
        let couriers = self.couriers > 0 ? " and \(self.couriers) courier\(self.couriers == 1 ? "" : "s")" : ""
        out.append("drill \(self.name): \(self.relays) relays\(couriers), \(String(format: "%g", self.duration)) s simulated, \(Self.describe(radio)), seed \(seed)")
        out.append("delivered \(self.delivered) of \(self.sent) copies (\(Self.percent(self.deliveryRatio))) of \(self.messages) messages")
        out.append("latency: p50 \(Self.seconds(self.latencyP50)), p95 \(Self.seconds(self.latencyP95)), max \(Self.seconds(self.latencyMax))")
        for l in self.latencyByKind {
            let name = l.kind.padding(toLength: 10, withPad: " ", startingAt: 0)
            out.append("  \(name) \(l.delivered)/\(l.sent) delivered, p50 \(Self.seconds(l.p50)), p95 \(Self.seconds(l.p95)), max \(Self.seconds(l.max))")
        }
        let perTx = self.transmissionsPerDelivered.map { String(format: "%.2f", $0) } ?? "-"
        let perAir = self.airtimePerDelivered.map { String(format: "%.2f s", $0) } ?? "-"
        out.append("on the air: \(self.transmissions) transmissions, \(String(format: "%.1f", self.airtime)) s of airtime; per delivered copy \(perTx) transmissions, \(perAir) of airtime")
        out.append("collisions: \(self.collisions) receptions lost to overlapping packets (\(self.captures) survived by capture), \(self.lostHalfDuplex) missed while the receiver transmitted, \(self.deferralsBusy) sends deferred on a busy channel")
        if radio.dutyCycle != nil {
            out.append("duty cycle: \(self.dutyCycleHeld) packets held by their modem for the limit (handed over beyond it), longest \(String(format: "%.1f", self.dutyCycleLongestHold)) s")
        }
        out.append("channel utilisation: mean \(Self.percent(self.utilisationMean)), busiest relay \(Self.percent(self.utilisationMax))")
        out += self.airtimeLines()
        out += self.alertLines()
        if self.disruptions.isEmpty {
            out.append("disruptions: none")
        } else {
            let intact = self.disruptions.contains { $0.intact != nil && $0.queued > 0 }
                ? "; intact mesh: the same copies on the scenario without its disruptions, 95% delivered within that many seconds of being sent; target: recovery at most 2x that"
                : ""
            out.append("disruptions (recovery: from the heal or the relays' return until 95% of the copies queued meanwhile were delivered\(intact)):")
            for d in self.disruptions {
                let span = "\(String(format: "%g", d.start))-\(String(format: "%g", d.end)) s\(d.restored ? "" : " (never restored)")"
                let rec: String
                if d.queued == 0 {
                    rec = "nothing queued meanwhile"
                } else if let r = d.recovery {
                    rec = "\(d.queued) copies queued, \(d.deliveredAfter) delivered later; recovery \(String(format: "%.1f", r)) s"
                } else {
                    rec = "\(d.queued) copies queued, \(d.deliveredAfter) delivered later; not recovered within the run"
                }
                out.append("  \(d.label), \(span): \(rec)\(Self.intactText(d))")
            }
        }
        if !self.aid.isEmpty {
            out.append("aid requests (offers against the request's respond-by):")
            for a in self.aid {
                let inTime = a.offers.filter(\.inTime).count
                let list = a.offers.map { o in
                    "\(o.from) \(o.arrivedAt.map { String(format: "arrived %.1f s", $0) } ?? "not arrived")\(o.inTime ? "" : o.arrivedAt == nil ? "" : " (late)")"
                }.joined(separator: ", ")
                out.append("  \(a.from) at \(String(format: "%g", a.at)) s, respond by \(String(format: "%g", a.respondBy)) s: \(a.offers.count) offer\(a.offers.count == 1 ? "" : "s") sent, \(inTime) in time\(list.isEmpty ? "" : " (\(list))")")
            }
        }
        if self.droppedWhileDown > 0 || !self.gaveUp.isEmpty {
            let gave = self.gaveUp.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            out.append("given up: \(self.gaveUp.values.reduce(0, +)) bundles\(gave.isEmpty ? "" : " (\(gave))"); \(self.droppedWhileDown) packets the engine handed a switched-off modem")
        }
        return out
    }

    /// The intact mesh's figure for a disruption and whether recovery met its target (empty when not measured).
    static func intactText(_ d: Disruption) -> String {
        guard d.queued > 0 else { return "" }
        guard let i = d.intact else { return "" }
        let met = d.targetMet == true ? "met" : "not met"
        return String(format: "; intact mesh %.1f s, target %.1f s (2x): %@", i, 2 * i, met)
    }

    /// Where the airtime went: per relay against its allowance, and by what the packets carried.
    func airtimeLines() -> [String] {
        var out: [String] = []
        let air = self.perRelay.map(\.airtime)
        if !air.isEmpty {
            let mean = air.reduce(0, +) / Double(air.count)
            var line = String(format: "airtime per relay: mean %.1f s, max %.1f s", mean, air.max() ?? 0)
            if let a = self.allowancePerRelay, a > 0 {
                let full = air.filter { $0 >= 0.95 * a }.count
                line += String(format: " of an allowance of %.1f s (duty cycle over the run); %d relays used 95%% or more", a, full)
            }
            out.append(line)
        }
        let total = self.airtimeByClass.values.reduce(0, +)
        if total > 0 {
            let parts = self.airtimeByClass.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { c, t in
                String(format: "%@ %.1f s (%.1f%%, %d packets)", c, t, 100 * t / total, self.packetsByClass[c] ?? 0)
            }
            out.append("airtime by what it carried: " + parts.joined(separator: ", ") + "; \(self.retransmissions) directed retransmissions")
        }
        return out
    }

    /// Each alert to everyone: its reach after 1, 2, 5 and 10 minutes and when 99% of the relays had it.
    func alertLines() -> [String] {
        guard !self.alerts.isEmpty else { return [] }
        var out = ["alerts (relays that had it after 1, 2, 5, 10 minutes; target: 99% within 10 minutes):"]
        for a in self.alerts {
            let steps = a.reachAfter.map { "\($0.relays)" }.joined(separator: ", ")
            let pct = a.recipients > 0 ? Double(a.reachAfter.last?.relays ?? 0) / Double(a.recipients) : 0
            let to99 = a.to99.map { String(format: "99%% after %.1f s", $0) } ?? "99% not reached"
            out.append("  \(a.from) at \(String(format: "%g", a.at)) s to \(a.recipients) relays: \(steps) (\(Self.percent(pct)) in 10 min), \(a.reached) by the end; \(to99)")
        }
        return out
    }

    /// One JSON object (keys sorted; missing figures are null).
    public func json() -> [String: Any] {
        func num(_ v: Double?) -> Any { v.map { (($0 * 1000).rounded() / 1000) as Any } ?? NSNull() }
        var o: [String: Any] = [
            "name": self.name, "duration_s": self.duration, "relays": self.relays, "couriers": self.couriers,
            "messages": self.messages, "sent": self.sent, "delivered": self.delivered,
            "delivery_ratio": num(self.deliveryRatio),
            "latency_p50_s": num(self.latencyP50), "latency_p95_s": num(self.latencyP95), "latency_max_s": num(self.latencyMax),
            "transmissions": self.transmissions, "airtime_s": num(self.airtime), "collisions": self.collisions,
            "captures": self.captures, "lost_half_duplex": self.lostHalfDuplex, "deferrals_busy": self.deferralsBusy,
            "transmissions_per_delivered": num(self.transmissionsPerDelivered),
            "airtime_per_delivered_s": num(self.airtimePerDelivered),
            "channel_utilisation_mean": num(self.utilisationMean), "channel_utilisation_max": num(self.utilisationMax),
            "recovery_s": self.disruptions.map { num($0.recovery) },
            "intact_s": self.disruptions.map { num($0.intact) },
            "airtime_by_class_s": self.airtimeByClass.mapValues { ($0 * 1000).rounded() / 1000 },
            "packets_by_class": self.packetsByClass,
            "retransmissions": self.retransmissions,
            "airtime_per_relay_max_s": num(self.perRelay.map(\.airtime).max()),
            "allowance_per_relay_s": num(self.allowancePerRelay),
            "dropped_while_down": self.droppedWhileDown, "gave_up": self.gaveUp,
            "duty_cycle_held": self.dutyCycleHeld, "duty_cycle_longest_hold_s": num(self.dutyCycleLongestHold),
        ]
        o["latency_by_kind"] = Dictionary(uniqueKeysWithValues: self.latencyByKind.map { l in
            (l.kind, ["sent": l.sent, "delivered": l.delivered, "p50_s": num(l.p50), "p95_s": num(l.p95), "max_s": num(l.max)] as [String: Any])
        })
        o["disruptions"] = self.disruptions.map { d in
            ["kind": d.kind, "label": d.label, "start_s": d.start, "end_s": d.end, "restored": d.restored,
             "queued": d.queued, "delivered_after": d.deliveredAfter, "recovery_s": num(d.recovery),
             "intact_s": num(d.intact), "target_met": d.targetMet.map { $0 as Any } ?? NSNull()] as [String: Any]
        }
        o["alerts"] = self.alerts.map { a in
            ["from": a.from, "at_s": a.at, "recipients": a.recipients, "reached": a.reached,
             "reach_after": a.reachAfter.map { ["after_s": $0.after, "relays": $0.relays] },
             "to_99_s": num(a.to99)] as [String: Any]
        }
        o["aid"] = self.aid.map { a in
            ["from": a.from, "at_s": a.at, "respond_by_s": a.respondBy, "offers_sent": a.offers.count,
             "offers_in_time": a.offers.filter(\.inTime).count,
             "offers": a.offers.map { ["from": $0.from, "sent_s": $0.sentAt, "arrived_s": num($0.arrivedAt), "in_time": $0.inTime] as [String: Any] }]
            as [String: Any]
        }
        return o
    }
}
