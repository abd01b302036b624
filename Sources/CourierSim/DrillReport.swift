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
        out.append("channel utilisation: mean \(Self.percent(self.utilisationMean)), busiest relay \(Self.percent(self.utilisationMax))")
        if self.disruptions.isEmpty {
            out.append("disruptions: none")
        } else {
            out.append("disruptions (recovery: from the heal or the relays' return until 95% of the copies queued meanwhile were delivered):")
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
                out.append("  \(d.label), \(span): \(rec)")
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
            "dropped_while_down": self.droppedWhileDown, "gave_up": self.gaveUp,
        ]
        o["latency_by_kind"] = Dictionary(uniqueKeysWithValues: self.latencyByKind.map { l in
            (l.kind, ["sent": l.sent, "delivered": l.delivered, "p50_s": num(l.p50), "p95_s": num(l.p95), "max_s": num(l.max)] as [String: Any])
        })
        o["disruptions"] = self.disruptions.map { d in
            ["kind": d.kind, "label": d.label, "start_s": d.start, "end_s": d.end, "restored": d.restored,
             "queued": d.queued, "delivered_after": d.deliveredAfter, "recovery_s": num(d.recovery)] as [String: Any]
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
