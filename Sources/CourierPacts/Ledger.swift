import CourierStore
import CourierWire
import Foundation

/// A mutual-aid pact as its signed records say (SPEC 6.15): who is in it, what each pledges, the agreed response
/// time.
public struct Pact: Sendable {
    public let id: BundleID
    public let name: String
    public var creator: ShortID { self.id.origin }
    /// Everyone the creator named, the creator included, in id order.
    public let members: [ShortID]
    /// Seconds within which members answer an aid request under the pact.
    public var respondWithin: UInt32
    /// What each member pledges (from its create, join or amend record).
    public var pledges: [ShortID: String] = [:]
    /// Members that accepted with their own signed record (the creator by creating it).
    public var joined: Set<ShortID> = []
    public var withdrawn: Set<ShortID> = []
    /// The records that made it, in order: (record id, type, member, text).
    public var history: [(id: BundleID, type: String, node: ShortID, detail: String)] = []

    /// Members bound by the pact now: accepted and not withdrawn.
    public var bound: [ShortID] { self.members.filter { self.joined.contains($0) && !self.withdrawn.contains($0) } }
}

/// An aid request under a pact, and what came of it.
public struct PactRequest: Sendable {
    public struct Pledge: Sendable {
        public let offer: BundleID
        /// Unix seconds, as the pledging member signed it (kept within the minute its bundle id says).
        public let at: UInt64
        public let text: String
    }
    public let id: BundleID
    public let pact: BundleID
    public var from: ShortID { self.id.origin }
    public let text: String
    /// Unix seconds, as the requesting member signed it.
    public let deadline: UInt64
    /// The first pledge of each member.
    public var pledges: [ShortID: Pledge] = [:]
    public var escalation: (id: BundleID, unmet: [ShortID])?
    /// Members whose pledged aid the requester confirmed arrived: (the confirming record, when, as signed).
    public var delivered: [ShortID: (id: BundleID, at: UInt64)] = [:]

    public enum Answer: String, Sendable {
        case inTime = "in time", late, none, pending
    }

    public func answer(_ node: ShortID, now: Double) -> Answer {
        if let p = self.pledges[node] { return p.at <= self.deadline ? .inTime : .late }
        // Over once the deadline's second is: a pledge signed in that second is in time.
        return now >= Double(self.deadline) + 1 ? .none : .pending
    }
}

/// The open ledger: every pact, request, pledge and escalation, derived only from the signed records every member
/// holds, so two members with the same records show the same ledger.
public struct PactLedger: Sendable {
    public var pacts: [BundleID: Pact] = [:]
    public var requests: [BundleID: PactRequest] = [:]
    /// Records left out, with why (an unproven origin, a member that is not one, a request of an unknown pact).
    public var ignored: [(id: BundleID, why: String)] = []
    /// Those of them that a record still to come can make count (a join or pledge that came before its pact or
    /// request): not reported as refused.
    public var waiting: Set<BundleID> = []
    /// Records the store could not read back (a damaged database).
    public var damaged: [String] = []

    public init(store: Store) throws(StoreError) {
        let (records, damaged) = try store.pactRecords()
        self.init(records: records)
        self.damaged = damaged
    }

    public init(records: [StoredPactRecord]) {
        // Pacts first, then what members said about them, then requests, then pledges and escalations: a record
        // is judged against the whole set, whatever order the records arrived in.
        let order: (StoredPactRecord) -> Int = {
            switch $0.record.body {
            case .create: return 0
            case .join, .amend, .withdraw: return 1
            case .request: return 2
            case .pledge, .escalation: return 3
            case .delivered: return 4
            }
        }
        for r in records.sorted(by: { (order($0), $0.id) < (order($1), $1.id) }) {
            if let why = self.take(r) {
                self.ignored.append((r.id, why))
                if why.hasPrefix("no pact ") || why.hasPrefix("no request ") { self.waiting.insert(r.id) }
            }
        }
    }

    /// Applies one record; returns why it is left out.
    mutating func take(_ r: StoredPactRecord) -> String? {
        guard r.proven else { return "its origin signature was not verified here" }
        guard r.kind == r.record.carrierKind else { return "a pact \(r.record.typeName) must travel as \(r.record.carrierKind), not \(r.kind)" }
        let node = r.id.origin
        if case .create(let name, let within, let members, let pledge) = r.record.body {
            var p = Pact(id: r.id, name: name, members: Array(Set(members + [node])).sorted(), respondWithin: within)
            p.pledges[node] = pledge
            p.joined.insert(node)
            p.history.append((r.id, "create", node, "\(name): members \(p.members.map(\.description).joined(separator: ", ")); respond within \(Self.duration(Double(within))); pledges \(pledge)"))
            self.pacts[r.id] = p
            return nil
        }
        guard let pactID = r.record.pact, var p = self.pacts[pactID] else { return "no pact \(r.record.pact.map(\.description) ?? "-") is known here" }
        guard p.members.contains(node) else { return "\(node) is not a member of pact \(p.name)" }
        switch r.record.body {
        case .create: return nil
        case .join(let pledge):
            p.joined.insert(node)
            p.withdrawn.remove(node)
            p.pledges[node] = pledge
            p.history.append((r.id, "join", node, "pledges \(pledge)"))
        case .amend(let within, let pledge):
            if within != nil && node != p.creator { return "only the pact's creator changes its response time" }
            if let within { p.respondWithin = within }
            if let pledge { p.pledges[node] = pledge }
            let what = [within.map { "respond within \(Self.duration(Double($0)))" }, pledge.map { "pledges \($0)" }].compactMap { $0 }
            p.history.append((r.id, "amend", node, what.joined(separator: "; ")))
        case .withdraw:
            p.withdrawn.insert(node)
            p.history.append((r.id, "withdraw", node, "withdrew"))
        case .request(let deadline):
            guard p.bound.contains(node) else { return "\(node) has not joined pact \(p.name) (or withdrew)" }
            self.requests[r.id] = PactRequest(id: r.id, pact: pactID, text: r.text, deadline: deadline)
            return nil
        case .pledge(let request, let at):
            guard var q = self.requests[request], q.pact == pactID else { return "no request \(request) under pact \(p.name) is known here" }
            guard r.reference == request else { return "its reference is not the request it pledges to" }
            guard node != q.from else { return "the requester does not pledge to its own request" }
            // The signed time must lie within the minute the bundle id says it was made.
            let lo = UInt64(CourierTime.unixSeconds(minutes: r.id.created))
            let at = min(max(at, lo), lo + 59)
            if q.pledges[node] == nil || at < q.pledges[node]!.at { q.pledges[node] = .init(offer: r.id, at: at, text: r.text) }
            self.requests[request] = q
            return nil
        case .escalation(let request, let unmet):
            guard var q = self.requests[request], q.pact == pactID else { return "no request \(request) under pact \(p.name) is known here" }
            guard node == q.from else { return "only the requester escalates its request" }
            if q.escalation == nil { q.escalation = (r.id, unmet) }
            self.requests[request] = q
            return nil
        case .delivered(let request, let member, let at):
            guard var q = self.requests[request], q.pact == pactID else { return "no request \(request) under pact \(p.name) is known here" }
            guard node == q.from else { return "only the requester confirms a delivery" }
            guard q.pledges[member] != nil else { return "\(member) made no pledge to \(request)" }
            if q.delivered[member] == nil { q.delivered[member] = (r.id, at) }
            self.requests[request] = q
            return nil
        }
        self.pacts[pactID] = p
        return nil
    }

    /// Members who owe an answer to a request: bound by its pact, other than the requester.
    public func owed(_ q: PactRequest) -> [ShortID] {
        (self.pacts[q.pact]?.bound ?? []).filter { $0 != q.from }
    }

    /// Pacts by name or id (a name several pacts share gives them all).
    public func find(_ text: String) -> [Pact] {
        if let id = BundleID(text), let p = self.pacts[id] { return [p] }
        return self.pacts.values.filter { $0.name.compare(text, options: .caseInsensitive) == .orderedSame }.sorted { $0.id < $1.id }
    }

    public func requests(of pact: BundleID) -> [PactRequest] {
        self.requests.values.filter { $0.pact == pact }.sorted { $0.id < $1.id }
    }

    /// The pact's ledger as one JSON object: only what the signed records say (no local times), so every member
    /// that holds the same records prints the same object.
    public func history(_ p: Pact, now: Double) -> [String: Any] {
        let members: [[String: Any]] = p.members.map { m in
            ["node": m.description, "pledge": p.pledges[m] ?? "", "joined": p.joined.contains(m), "withdrawn": p.withdrawn.contains(m)]
        }
        let requests: [[String: Any]] = self.requests(of: p.id).map { q in
            let pledges: [[String: Any]] = self.owed(q).map { m in
                let a = q.answer(m, now: now)
                var o: [String: Any] = ["node": m.description, "in_time": a == .inTime, "answer": a.rawValue]
                if let pl = q.pledges[m] {
                    o["at"] = pl.at
                    o["offer"] = pl.offer.description
                    o["text"] = pl.text
                }
                o["delivered"] = q.delivered[m] != nil
                if let d = q.delivered[m] { o["delivered_at"] = d.at }
                return o
            }
            var o: [String: Any] = ["id": q.id.description, "from": q.from.description, "text": q.text, "deadline": q.deadline,
                                    "pledges": pledges, "escalated": q.escalation != nil]
            if let e = q.escalation {
                o["escalation"] = e.id.description
                o["unmet"] = e.unmet.map(\.description)
            }
            return o
        }
        let records: [[String: Any]] = p.history.map { ["id": $0.id.description, "type": $0.type, "node": $0.node.description, "detail": $0.detail] }
        return ["pact": p.id.description, "name": p.name, "creator": p.creator.description, "members": members,
                "respond_within_seconds": p.respondWithin, "records": records, "requests": requests]
    }

    /// The ledger for an assembly meeting: one row per request and member owed an answer.
    public func csv(_ p: Pact, now: Double) -> String {
        var lines = ["pact,request,requested_by,request_text,deadline_utc,member,pledge_promised,answer,in_time,answered_utc,offer,offer_text,delivered_utc,escalated"]
        for q in self.requests(of: p.id) {
            for m in self.owed(q) {
                let a = q.answer(m, now: now)
                let pl = q.pledges[m]
                let row = [p.name, q.id.description, q.from.description, q.text, Self.iso(Double(q.deadline)), m.description, p.pledges[m] ?? "",
                           a.rawValue, a == .inTime ? "yes" : "no", pl.map { Self.iso(Double($0.at)) } ?? "", pl?.offer.description ?? "",
                           pl?.text ?? "", q.delivered[m].map { Self.iso(Double($0.at)) } ?? "", q.escalation != nil ? "yes" : "no"]
                lines.append(row.map(Self.csvField).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func iso(_ unix: Double) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: unix))
    }

    /// "36 s", "15 min", "6 h", "1.5 h".
    public static func duration(_ s: Double) -> String {
        if s < 60 { return "\(Int(s.rounded())) s" }
        if s < 3_600 { return String(format: "%g min", (s / 60 * 10).rounded() / 10) }
        return String(format: "%g h", (s / 3_600 * 100).rounded() / 100)
    }
}

/// What a relay does about its pacts as time passes (SPEC 6.15): show an obligation when a request arrives, remind
/// when its deadline nears without the pledges the pact promises, and, at the requester, escalate at the deadline.
public enum PactDuty: Sendable, Equatable {
    /// A request this relay's operator owes an answer to.
    case obligation(request: BundleID, pact: String, deadline: UInt64)
    /// The deadline nears and these members (this relay among them, or this relay is the requester) have not pledged.
    case reminder(request: BundleID, pact: String, deadline: UInt64, missing: [ShortID])
    /// This relay asked, the deadline passed, and these members did not pledge in time: escalate.
    case escalate(request: BundleID, pact: BundleID, name: String, unmet: [ShortID], text: String)
    /// This relay asked and every member pledged in time.
    case kept(request: BundleID, pact: String)

    /// The subject and the kind of notice, for doing each once.
    public var key: (String, String) {
        switch self {
        case .obligation(let r, _, _): return (r.description, "obligation")
        case .reminder(let r, _, _, _): return (r.description, "reminder")
        case .escalate(let r, _, _, _, _): return (r.description, "escalated")
        case .kept(let r, _): return (r.description, "kept")
        }
    }
}

extension PactLedger {
    /// How long before a deadline a reminder comes: a quarter of the pact's response time, at most an hour.
    public static func reminderLead(_ respondWithin: UInt32) -> Double { min(3_600, max(1, Double(respondWithin) / 4)) }

    /// What `me` should do now (each duty is acted on once; the caller remembers which).
    public func duties(me: ShortID, now: Double) -> [PactDuty] {
        var out: [PactDuty] = []
        for q in self.requests.values.sorted(by: { $0.id < $1.id }) {
            guard let p = self.pacts[q.pact] else { continue }
            let owed = self.owed(q)
            let missing = owed.filter { q.pledges[$0] == nil }
            // Pledge times are signed in whole seconds and a pledge made in the deadline's second is in time
            // (`answer`), so the deadline has passed only once that second is over.
            let deadline = Double(q.deadline) + 1
            if owed.contains(me), q.pledges[me] == nil, now < deadline {
                out.append(.obligation(request: q.id, pact: p.name, deadline: q.deadline))
            }
            if now < deadline, now >= deadline - Self.reminderLead(p.respondWithin), !missing.isEmpty,
               q.from == me || missing.contains(me) {
                out.append(.reminder(request: q.id, pact: p.name, deadline: q.deadline, missing: missing))
            }
            if q.from == me, now >= deadline, q.escalation == nil {
                let unmet = owed.filter { q.answer($0, now: now) != .inTime }
                out.append(unmet.isEmpty ? .kept(request: q.id, pact: p.name)
                                         : .escalate(request: q.id, pact: p.id, name: p.name, unmet: unmet, text: q.text))
            }
        }
        return out
    }
}
