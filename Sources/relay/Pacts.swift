import ArgumentParser
import CourierNode
import CourierPacts
import CourierStore
import CourierWire
import Foundation

/// Mutual-aid pacts (issue 17, SPEC 6.15): signed records that travel through the federation like any bundle, and
/// the open ledger every member derives from them.
extension Relay {
    struct PactCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pact",
            abstract: "Mutual-aid pacts: members, what each pledges, the agreed response time, and the open ledger of requests and pledges.",
            discussion: """
                A pact is made by one member (`pact create`) and accepted by each other member with its own signed \
                record (`pact join`). `relay send --kind aid --pact NAME TEXT` asks the pact's members for aid with the \
                pact's response time; `relay pact answer ID TEXT` (or `relay send --kind offer --reference ID ...`) \
                pledges. At the deadline the requester's relay escalates on its own. `pact history` is the same on \
                every member once they have synchronised.
                """,
            subcommands: [Create.self, Join.self, Amend.self, Withdraw.self, Answer.self, Confirm.self, Show.self, List.self, History.self],
            defaultSubcommand: List.self)
    }
}

enum PactCLI {
    /// The longest response time a pact takes, in hours (a year, as `send --lifetime`).
    static let maxHours = 8_760.0

    static func seconds(_ hours: Double) throws -> UInt32 {
        guard hours.isFinite, hours > 0, hours <= self.maxHours else {
            throw RelayError.usage("--respond-within \(hours): give hours, more than 0 and at most \(Int(self.maxHours)) (fractions work: 0.5 is 30 minutes, 0.01 is 36 seconds)")
        }
        return UInt32(max(1, (hours * 3_600).rounded()))
    }

    static func text(_ s: String, _ what: String, max: Int) throws -> String {
        guard s.utf8.count <= max else { throw RelayError.usage("\(what) is \(s.utf8.count) bytes; at most \(max): shorten it") }
        return s
    }

    /// The one pact NAME (or id) names here; exit 64 naming what is known otherwise.
    static func pact(_ name: String, _ ledger: PactLedger) throws -> Pact {
        let found = ledger.find(name)
        if found.count == 1 { return found[0] }
        if found.isEmpty {
            let known = ledger.pacts.values.sorted { $0.id < $1.id }.map { "\($0.name) (\($0.id))" }
            throw RelayError.usage("no pact '\(name)' is known here\(known.isEmpty ? " (none yet: `relay pact create` makes one; a pact made elsewhere arrives with its record)" : "; known pacts: \(known.joined(separator: ", "))")")
        }
        throw RelayError.usage("the name '\(name)' fits \(found.count) pacts: \(found.map { "\($0.id) (by \($0.creator))" }.joined(separator: ", ")); give the id instead")
    }

    /// Makes and stores a bundle carrying `record`, signed, to everyone, as `relay send` does (a running relay sends
    /// it within a second). Returns its id.
    static func submit(_ dir: DataDir, _ store: Store, kind: Kind, text: String, record: PactRecord,
                       lifetimeMinutes: UInt32? = nil, respondBy: UInt32? = nil, reference: BundleID? = nil) throws -> BundleID {
        var opts = BundleOptions(kind: kind)
        if let l = lifetimeMinutes { opts.lifetime = l }
        opts.respondBy = respondBy
        opts.reference = reference
        opts.extensions = [record.extensionValue]
        let content = Array(text.utf8)
        guard content.count <= CourierBundle.maxContentSize else {
            throw RelayError.usage("the message is \(content.count) bytes; the limit is \(CourierBundle.maxContentSize): split it")
        }
        let config = try dir.nodeConfig(store: store)
        return try BundleMaker(identity: config.identity, groups: config.groups, store: store)
            .submit(kind: kind, destination: .everyone, content: content, options: opts, now: Date().timeIntervalSince1970)
    }

    /// Membership records live as long as `send` lets anything live (a year), so a member met late still gets them.
    static let recordLifetime: UInt32 = 8_760 * 60

    /// A pledge to `request` (an aid request under a pact) with `text`: to everyone, so every member's ledger has it.
    static func pledge(_ dir: DataDir, _ store: Store, request: BundleID, text: String) throws -> BundleID {
        let ledger = try PactLedger(store: store)
        guard let q = ledger.requests[request], let p = ledger.pacts[q.pact] else {
            throw RelayError.usage("\(request) is not an aid request under a pact known here (`relay inbox` lists requests; `relay pact history NAME` a pact's)")
        }
        let me = try dir.identity().0.nodeID.short
        guard me != q.from else { throw RelayError.usage("\(request) is your own request: the other members of pact \(p.name) pledge to it") }
        guard ledger.owed(q).contains(me) else {
            throw RelayError.usage("you (\(me)) are not bound by pact \(p.name) (not a member, not joined, or withdrawn): `relay pact join \(p.name) --pledge TEXT` first, or send a plain offer")
        }
        let record = try PactRecord(pact: p.id, body: .pledge(request: request, at: UInt64(Date().timeIntervalSince1970)))
        return try self.submit(dir, store, kind: .aidOffer, text: text, record: record, reference: request)
    }

    static func members(_ p: Pact, _ names: NodeNames) -> String {
        p.members.map { m in
            let state = p.withdrawn.contains(m) ? "withdrew" : p.joined.contains(m) ? "pledges \(p.pledges[m].map { $0.isEmpty ? "-" : $0 } ?? "-")" : "not joined yet"
            return "\(names.label(m)): \(state)"
        }.joined(separator: "; ")
    }

    /// The inbox note of a message that is a pact record ("" for others).
    static func inboxNote(_ m: InboxMessage, _ ledger: PactLedger, now: Double) -> String {
        if let q = ledger.requests[m.id], let p = ledger.pacts[q.pact] {
            let owed = ledger.owed(q)
            let pledged = owed.filter { q.pledges[$0] != nil }.count
            let due = Double(q.deadline)
            return "[pact \(p.name): respond by \(PactLedger.iso(due))\(due > now ? ", in \(PactLedger.duration(due - now))" : ", PAST"); \(pledged) of \(owed.count) pledged] "
        }
        for q in ledger.requests.values {
            if let pl = q.pledges.values.first(where: { $0.offer == m.id }), let p = ledger.pacts[q.pact] {
                return "[pact \(p.name): pledge to \(q.id), \(pl.at <= q.deadline ? "in time" : "LATE")] "
            }
            if q.escalation?.id == m.id, let p = ledger.pacts[q.pact] { return "[pact \(p.name): ESCALATION of \(q.id)] " }
        }
        return ""
    }

    /// `relay status` lines: the requests this relay owes an answer to, and its own, while they matter (until a day
    /// after their deadline).
    static func statusLines(_ ledger: PactLedger, me: ShortID, names: NodeNames, now: Double) -> (lines: [String], json: [[String: Any]]) {
        var lines: [String] = []
        var json: [[String: Any]] = []
        for q in ledger.requests.values.sorted(by: { $0.id < $1.id }) where Double(q.deadline) + 86_400 > now {
            guard let p = ledger.pacts[q.pact] else { continue }
            let owed = ledger.owed(q)
            let due = Double(q.deadline)
            let when = due > now ? "due \(PactLedger.iso(due)), in \(PactLedger.duration(due - now))" : "deadline passed \(PactLedger.duration(now - due)) ago"
            if q.from == me {
                let answered = owed.map { "\(names.label($0)) \(q.answer($0, now: now).rawValue)" }.joined(separator: ", ")
                lines.append("  pact \(p.name): your aid request \(q.id), \(when): \(answered)\(q.escalation != nil ? "; ESCALATED" : "")")
                json.append(["pact": p.name, "request": q.id.description, "role": "requester", "deadline": q.deadline, "escalated": q.escalation != nil,
                             "answers": Dictionary(uniqueKeysWithValues: owed.map { ($0.description, q.answer($0, now: now).rawValue) })])
            } else if owed.contains(me) {
                let a = q.answer(me, now: now)
                let what = a == .pending ? "OBLIGATION: not answered yet (`relay pact answer \(q.id) TEXT`)" : "your answer: \(a.rawValue)"
                lines.append("  pact \(p.name): aid request \(q.id) from \(names.label(q.from)), \(when): \(what)\(q.escalation != nil ? "; escalated by the requester" : "")")
                json.append(["pact": p.name, "request": q.id.description, "role": "member", "deadline": q.deadline, "answer": a.rawValue,
                             "escalated": q.escalation != nil])
            }
        }
        let leftOut = ledger.ignored.filter { !ledger.waiting.contains($0.id) }.count
        if leftOut > 0 { lines.append("  pact records left out of the ledger: \(leftOut) (not proven, or not from a member; `relay queue tail` says why)") }
        return (lines, json)
    }
}

extension Relay.PactCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a pact: its members, the agreed response time and your pledge. Prints the pact id last.")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name (1-32 bytes), e.g. river-towns.") var name: String
        @Option(name: .customLong("member"), parsing: .upToNextOption,
                help: "The other members: node ids or names (repeatable, or several after one --member).") var members: [String] = []
        @Option(help: "Hours within which members answer an aid request (fractions work: 0.5 is 30 minutes).") var respondWithin: Double
        @Option(help: "What you pledge (free text with a short code, e.g. \"WATER: 500 l a day\"; at most 200 bytes).") var pledge: String
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let names = try NodeNames(dir: dir, store: store)
                let within = try PactCLI.seconds(self.respondWithin)
                guard !self.name.isEmpty, self.name.utf8.count <= PactRecord.maxName else {
                    throw RelayError.usage("a pact's name is 1 to \(PactRecord.maxName) bytes; '\(self.name)' is \(self.name.utf8.count)")
                }
                let pledge = try PactCLI.text(self.pledge, "--pledge", max: PactRecord.maxPledge)
                guard !self.members.isEmpty else { throw RelayError.usage("name the other members: --member NODE (an id or a name `relay peers` lists)") }
                var members: [ShortID] = []
                for m in self.members {
                    let s = try names.resolve(m, unknownOK: false)
                    if s != names.me && !members.contains(s) { members.append(s) }
                }
                guard !members.isEmpty else { throw RelayError.usage("a pact needs another member than this relay") }
                guard members.count < PactRecord.maxMembers else { throw RelayError.usage("at most \(PactRecord.maxMembers - 1) other members") }
                let ledger = try PactLedger(store: store)
                if let other = ledger.find(self.name).first {
                    throw RelayError.usage("a pact named '\(other.name)' is known here already (\(other.id), made by \(names.label(other.creator))); choose another name")
                }
                let record = try PactRecord(pact: nil, body: .create(name: self.name, respondWithin: within, members: members, pledge: pledge))
                let all = ([names.me] + members).map { names.label($0) }.joined(separator: ", ")
                let text = "Pact \(self.name) made by \(names.label(names.me)): members \(all); each answers an aid request within \(PactLedger.duration(Double(within))). \(names.label(names.me)) pledges: \(pledge). Accept with: relay pact join \(self.name) --pledge TEXT"
                let id = try PactCLI.submit(dir, store, kind: .text, text: text, record: record, lifetimeMinutes: PactCLI.recordLifetime)
                if self.json {
                    try printJSON(["pact": id.description, "name": self.name, "members": ([names.me] + members).map(\.description), "respond_within_seconds": within])
                    return
                }
                say("pact \(self.name): members \(all); respond within \(PactLedger.duration(Double(within)))")
                say("sent to everyone; each member accepts with: relay pact join \(self.name) --pledge TEXT")
                print(id)
            }
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept a pact you are a member of, with your pledge (signed, to everyone).")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name or id.") var name: String
        @Option(help: "What you pledge (at most 200 bytes).") var pledge: String

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let names = try NodeNames(dir: dir, store: store)
                let p = try PactCLI.pact(self.name, try PactLedger(store: store))
                guard p.members.contains(names.me) else {
                    throw RelayError.usage("you (\(names.me)) are not a member of pact \(p.name); its members are \(p.members.map { names.label($0) }.joined(separator: ", "))")
                }
                let pledge = try PactCLI.text(self.pledge, "--pledge", max: PactRecord.maxPledge)
                let record = try PactRecord(pact: p.id, body: .join(pledge: pledge))
                let id = try PactCLI.submit(dir, store, kind: .text, text: "\(names.label(names.me)) joins pact \(p.name) (\(p.id)) and pledges: \(pledge)",
                                            record: record, lifetimeMinutes: PactCLI.recordLifetime)
                print(id)
            }
        }
    }

    struct Amend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change your pledge, or (the creator) the pact's response time.")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name or id.") var name: String
        @Option(help: "Your new pledge.") var pledge: String?
        @Option(help: "The new response time in hours (the pact's creator only).") var respondWithin: Double?

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let names = try NodeNames(dir: dir, store: store)
                let p = try PactCLI.pact(self.name, try PactLedger(store: store))
                guard p.members.contains(names.me) else { throw RelayError.usage("you (\(names.me)) are not a member of pact \(p.name)") }
                guard self.pledge != nil || self.respondWithin != nil else { throw RelayError.usage("say what changes: --pledge TEXT and/or --respond-within HOURS") }
                let within = try self.respondWithin.map(PactCLI.seconds)
                if within != nil && p.creator != names.me {
                    throw RelayError.usage("only the pact's creator (\(names.label(p.creator))) changes its response time")
                }
                let pledge = try self.pledge.map { try PactCLI.text($0, "--pledge", max: PactRecord.maxPledge) }
                let record = try PactRecord(pact: p.id, body: .amend(respondWithin: within, pledge: pledge))
                let what = [within.map { "the response time is now \(PactLedger.duration(Double($0)))" }, pledge.map { "\(names.label(names.me)) now pledges: \($0)" }]
                    .compactMap { $0 }.joined(separator: "; ")
                print(try PactCLI.submit(dir, store, kind: .text, text: "Pact \(p.name) (\(p.id)) amended: \(what)", record: record,
                                         lifetimeMinutes: PactCLI.recordLifetime))
            }
        }
    }

    struct Withdraw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leave a pact (signed, to everyone): you no longer owe answers under it.")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name or id.") var name: String

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let names = try NodeNames(dir: dir, store: store)
                let p = try PactCLI.pact(self.name, try PactLedger(store: store))
                guard p.members.contains(names.me) else { throw RelayError.usage("you (\(names.me)) are not a member of pact \(p.name)") }
                let record = try PactRecord(pact: p.id, body: .withdraw)
                print(try PactCLI.submit(dir, store, kind: .text, text: "\(names.label(names.me)) withdraws from pact \(p.name) (\(p.id))", record: record,
                                         lifetimeMinutes: PactCLI.recordLifetime))
            }
        }
    }

    struct Answer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pledge aid to a request under a pact (the same as `relay send --kind offer --reference ID`). Prints the pledge's id.")
        @OptionGroup var d: DirOption
        @Argument(help: "The aid request's id (from `relay inbox` or `relay status`).") var request: String
        @Argument(help: "What you pledge to bring, and when.") var text: String

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                guard !self.text.isEmpty else { throw RelayError.usage("the pledge is empty: say what you bring") }
                print(try PactCLI.pledge(dir, store, request: try bundleID(self.request), text: self.text))
            }
        }
    }

    struct Confirm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the requester, confirm that a member's pledged aid arrived (signed, to everyone; shown in every member's ledger).")
        @OptionGroup var d: DirOption
        @Argument(help: "Your aid request's id.") var request: String
        @Argument(help: "The member whose aid arrived: its id or name.") var member: String

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let names = try NodeNames(dir: dir, store: store)
                let id = try bundleID(self.request)
                let ledger = try PactLedger(store: store)
                guard let q = ledger.requests[id], let p = ledger.pacts[q.pact] else {
                    throw RelayError.usage("\(id) is not an aid request under a pact known here (`relay pact history NAME` lists a pact's)")
                }
                guard q.from == names.me else { throw RelayError.usage("\(id) is \(names.label(q.from))'s request: only the requester confirms what arrived") }
                let member = try names.resolve(self.member, unknownOK: false)
                guard q.pledges[member] != nil else {
                    throw RelayError.usage("\(names.label(member)) made no pledge to \(id) (pledged: \(q.pledges.keys.sorted().map { names.label($0) }.joined(separator: ", ")))")
                }
                let record = try PactRecord(pact: p.id, body: .delivered(request: id, member: member, at: UInt64(Date().timeIntervalSince1970)))
                print(try PactCLI.submit(dir, store, kind: .text, text: "Pact \(p.name): the aid \(names.label(member)) pledged to \(id) arrived, confirmed by \(names.label(names.me))",
                                         record: record, lifetimeMinutes: PactCLI.recordLifetime))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One pact: members, pledges, response time, its records.")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name or id.") var name: String
        @Flag(help: "JSON (the same object as `pact history --json`).") var json = false

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let ledger = try PactLedger(store: store)
                let p = try PactCLI.pact(self.name, ledger)
                let now = Date().timeIntervalSince1970
                if self.json {
                    try printJSON(ledger.history(p, now: now))
                    return
                }
                let names = try NodeNames(dir: dir, store: store)
                say("pact \(p.name) (\(p.id)), made by \(names.label(p.creator)); respond within \(PactLedger.duration(Double(p.respondWithin)))")
                for m in p.members {
                    let state = p.withdrawn.contains(m) ? "withdrew" : p.joined.contains(m) ? "joined" : "not joined yet"
                    say("  \(names.label(m))\(m == names.me ? " (this relay)" : ""): \(state); pledges \(p.pledges[m].map { $0.isEmpty ? "-" : $0 } ?? "-")")
                }
                say("requests: \(ledger.requests(of: p.id).count) (`relay pact history \(p.name)`)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The pacts known here.")
        @OptionGroup var d: DirOption
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let ledger = try PactLedger(store: store)
                let names = try NodeNames(dir: dir, store: store)
                let pacts = ledger.pacts.values.sorted { $0.id < $1.id }
                for p in pacts {
                    let requests = ledger.requests(of: p.id)
                    if self.json {
                        try printJSON(["pact": p.id.description, "name": p.name, "creator": p.creator.description,
                                       "members": p.members.map(\.description), "joined": p.members.filter { p.joined.contains($0) }.map(\.description),
                                       "withdrawn": p.members.filter { p.withdrawn.contains($0) }.map(\.description),
                                       "respond_within_seconds": p.respondWithin, "requests": requests.count,
                                       "member": p.members.contains(names.me)])
                    } else {
                        say("\(p.name)  \(p.id)  \(p.bound.count) of \(p.members.count) members bound, respond within \(PactLedger.duration(Double(p.respondWithin))), \(requests.count) request\(requests.count == 1 ? "" : "s")\(p.members.contains(names.me) ? "" : " (this relay is not a member)")")
                    }
                }
                if pacts.isEmpty && !self.json { say("no pacts known here (`relay pact create NAME --member NODE --respond-within HOURS --pledge TEXT` makes one)") }
                for why in ledger.damaged { FileHandle.standardError.write(Data("relay: warning: a stored pact record cannot be read: \(why)\n".utf8)) }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The pact's open ledger: requests, who pledged in time, late or not at all, escalations. The same on every member once synchronised.")
        @OptionGroup var d: DirOption
        @Argument(help: "The pact's name or id.") var name: String
        @Flag(help: "One JSON object.") var json = false
        @Flag(help: "CSV, one row per request and member (for an assembly meeting).") var csv = false

        func validate() throws {
            if self.json && self.csv { throw ValidationError("give --json or --csv, not both") }
        }

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.store()
                let ledger = try PactLedger(store: store)
                let p = try PactCLI.pact(self.name, ledger)
                let now = Date().timeIntervalSince1970
                if self.json { return try printJSON(ledger.history(p, now: now)) }
                if self.csv { return print(ledger.csv(p, now: now)) }
                let names = try NodeNames(dir: dir, store: store)
                say("pact \(p.name) (\(p.id)); respond within \(PactLedger.duration(Double(p.respondWithin)))")
                say("members: \(PactCLI.members(p, names))")
                let requests = ledger.requests(of: p.id)
                for q in requests {
                    say("request \(q.id) from \(names.label(q.from)), deadline \(PactLedger.iso(Double(q.deadline))): \(q.text)")
                    for m in ledger.owed(q) {
                        let a = q.answer(m, now: now)
                        let pl = q.pledges[m]
                        say("  \(names.label(m)): \(a.rawValue.uppercased())\(pl.map { " at \(PactLedger.iso(Double($0.at))) (\($0.offer)): \($0.text)" } ?? "")\(q.delivered[m].map { "; DELIVERED, confirmed \(PactLedger.iso(Double($0.at)))" } ?? "")")
                    }
                    if let e = q.escalation {
                        say("  ESCALATED by \(names.label(q.from)) (alert \(e.id)): no pledge in time from \(e.unmet.map { names.label($0) }.joined(separator: ", "))")
                    }
                }
                if requests.isEmpty { say("no aid requests under this pact yet (`relay send --kind aid --pact \(p.name) TEXT`)") }
                // Records about this pact that do not count, and why (the JSON keeps only what counts, the same everywhere).
                let mine = try store.pactRecords().records.filter { r in r.record.pact == p.id || r.id == p.id }
                for r in mine {
                    guard let why = ledger.ignored.first(where: { $0.id == r.id })?.why else { continue }
                    say("left out: \(r.id) (\(r.record.typeName) from \(names.label(r.id.origin))): \(why)")
                }
            }
        }
    }
}
