import ArgumentParser
import CourierNode
import CourierPacts
import CourierStore
import CourierWire
import Foundation

/// Names of nodes and groups as this relay knows them: its own, the trust list and the announces it heard
/// (`peer` table), the origins of messages delivered here, and the groups in relay.conf.
struct NodeNames {
    let me: ShortID
    /// Node → name, when one was announced or given with `relay peers add --name`.
    var names: [ShortID: String] = [:]
    /// Every node heard of: peers, origins of messages delivered here, this relay.
    var known: Set<ShortID> = []
    var groups: [GroupID: String] = [:]

    init(dir: DataDir, store: Store) throws {
        let (id, name) = try dir.identity()
        self.me = id.nodeID.short
        self.known.insert(self.me)
        if let name { self.names[self.me] = name }
        for p in try store.peers() {
            self.known.insert(p.nodeID.short)
            if let n = p.name, !n.isEmpty { self.names[p.nodeID.short] = n }
        }
        for o in try store.inboxOrigins() { self.known.insert(o) }
        for g in dir.config().groups { self.groups[GroupID(name: g)] = g }
    }

    /// "Halabja water committee (3f059c2f)", or the id alone when no name is known.
    func label(_ s: ShortID) -> String { self.names[s].map { "\(Terminal.safe($0)) (\(s))" } ?? s.description }

    func label(_ d: Destination) -> String {
        switch d {
        case .node(let n): return self.label(n)
        case .group(let g): return self.groups[g].map { "group \(Terminal.safe($0))" } ?? "group \(g)"
        case .everyone: return "everyone"
        }
    }

    /// The known nodes, for an error line: "3f059c2f (committee), 62e3bcf5 (this relay)".
    var list: String {
        self.known.sorted { $0.rawValue < $1.rawValue }.map { s in
            s == self.me ? "\(s) (this relay)" : self.names[s].map { "\(s) (\(Terminal.safe($0)))" } ?? s.description
        }.joined(separator: ", ")
    }

    /// What `send --to` was given: a known node id, or the name of exactly one known node. An id nobody has heard of
    /// passes only with `unknownOK`.
    func resolve(_ text: String, unknownOK: Bool) throws -> ShortID {
        // The short id, or the full one (`relay id --full`), whose first 8 hex digits are the short id.
        let hex = text.count == 32 && text.allSatisfy(\.isHexDigit) ? String(text.prefix(8)) : text
        if hex.count == 8, let s = ShortID(hex: hex.lowercased()) {
            if self.known.contains(s) || unknownOK { return s }
            if let byName = try? self.byName(text) { return byName }
            throw RelayError.usage("no node \(s) is known here (never heard, not on the trust list); known nodes: \(self.list); check the id, or add --unknown-ok to queue it anyway")
        }
        return try self.byName(text)
    }

    func byName(_ text: String) throws -> ShortID {
        let matches = self.names.filter { $0.value.compare(text, options: [.caseInsensitive]) == .orderedSame }.keys.sorted { $0.rawValue < $1.rawValue }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw RelayError.usage("the name '\(text)' fits \(matches.count) nodes: \(matches.map { "\($0) (\(self.names[$0]!))" }.joined(separator: ", ")); give the id instead")
        }
        throw RelayError.usage("'\(text)' is neither a node id (8 hex digits, as `relay id` prints) nor the name of a node known here; known nodes: \(self.list)")
    }
}

/// What the running relay wrote in its status file, if a relay runs on this data directory (holds its lock).
func liveStatus(_ dir: DataDir) -> [String: Any]? {
    // Running means holding the data directory's lock (the status file is rewritten only on change, so its age
    // says nothing); the relay named its status file in the lock file.
    guard let relay = dir.runningRelay(), let data = FileManager.default.contents(atPath: relay.statusFile) else { return nil }
    do {
        return try JSONSerialization.jsonObject(with: data) as? [String: Any]
    } catch {
        // Being replaced this instant (it is written atomically, so this is rare): as if not yet written.
        return nil
    }
}

/// A time for people: UTC by default (relays in a federation compare notes in UTC), local on request.
struct TimeFormat {
    let local: Bool
    func string(_ unix: Double) -> String {
        guard self.local else { return clock(unix) }
        let f = DateFormatter()
        f.timeZone = TimeZone.current
        f.dateFormat = Calendar.current.isDate(Date(timeIntervalSince1970: unix), inSameDayAs: Date()) ? "HH:mm zzz" : "yyyy-MM-dd HH:mm zzz"
        return f.string(from: Date(timeIntervalSince1970: unix))
    }
}

func bundleID(_ text: String) throws -> BundleID {
    guard let id = BundleID(text) else { throw RelayError.usage("bad bundle id '\(text)': expected origin.created.sequence, as `relay send` printed") }
    return id
}

extension Relay.Queue {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Every queued bundle: id, kind, destination, age, size, attempts, custody, next hop, and why it waits.")
        @OptionGroup var d: DirOption
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.storeForReading()
                let names = try NodeNames(dir: dir, store: store)
                let live = liveStatus(dir)
                let quiet = try store.isQuiet()
                let now = Date().timeIntervalSince1970
                // From the running relay: next hop per destination, neighbours, airtime left per link.
                var routes: [String: (via: String, link: String)] = [:]
                for r in (live?["routes"] as? [[String: Any]]) ?? [] {
                    if let to = r["to"] as? String, let via = r["via"] as? String { routes[to] = (via, (r["link"] as? String) ?? "?") }
                }
                let neighbours = ((live?["neighbours"] as? [[String: Any]]) ?? []).compactMap { $0["node"] as? String }
                var exhausted: [String: String] = [:]
                for l in (live?["links"] as? [[String: Any]]) ?? [] {
                    if let name = l["name"] as? String, let used = l["airtimeUsed"] as? Double, let budget = l["airtimeBudget"] as? Double, used >= budget {
                        exhausted[name] = String(format: "duty cycle: %@ has used its %.0f s of airtime this hour", name, budget)
                    }
                }
                // A relay holding the data directory that waits for a full or read-only disk (no status yet).
                let waiting = live == nil && dir.runningRelay() != nil ? dir.startWait() : nil
                let items = try store.queueEntries()
                for b in items {
                    var hop: String?
                    let why: (code: String, text: String)
                    let sent = b.sentTo.map { names.label($0) }
                    if live == nil, let waiting {
                        why = ("relay-waiting", "the relay is waiting for \(waiting) (`relay status` says why); it sends once it starts")
                    } else if live == nil {
                        why = ("not-running", "the relay is not running (`relay run` sends it)")
                    } else if quiet {
                        why = ("quiet-mode", "quiet mode: transmitting nothing (`relay quiet off` resumes)")
                    } else if case .node(let dest) = b.destination {
                        if let r = routes[dest.description] {
                            hop = r.via
                            if let e = exhausted[r.link] {
                                why = ("duty-cycle", e)
                            } else if let t = b.nextRetry, Double(t) > now {
                                why = ("awaiting-ack", "sent to \(names.label(ShortID(hex: r.via) ?? dest)), waiting for its acknowledgement (retry in \(relative(Double(t) - now)))")
                            } else {
                                why = ("sending", "next in line for \(names.label(ShortID(hex: r.via) ?? dest)) on \(r.link)")
                            }
                        } else {
                            why = ("no-route", "no route to \(names.label(dest)): not heard, and no neighbour passes to it\(sent.isEmpty ? "" : "; copies given to \(sent.joined(separator: ", "))")")
                        }
                    } else if neighbours.isEmpty {
                        why = ("no-neighbour", "no neighbour in range to pass it to")
                    } else if !exhausted.isEmpty, exhausted.count == ((live?["links"] as? [[String: Any]])?.filter { $0["airtimeBudget"] is Double }.count ?? -1) {
                        why = ("duty-cycle", exhausted.values.sorted().joined(separator: "; "))
                    } else {
                        let acked = b.acknowledgedBy.map { names.label($0) }
                        var done: [String] = []
                        if b.broadcasts > 0 { done.append("broadcast \(b.broadcasts) time\(b.broadcasts == 1 ? "" : "s")") }
                        if !acked.isEmpty { done.append("acknowledged by \(acked.joined(separator: ", "))") } else if !sent.isEmpty { done.append("sent to \(sent.joined(separator: ", "))") }
                        why = done.isEmpty
                            ? (b.isLocal ? ("sending", "next in line to broadcast")
                                         : ("held-for-others", "not sent from here yet: it goes to a neighbour whose summary shows it lacks it; kept until it expires"))
                            : ("held-for-others", "\(done.joined(separator: ", ")); kept until it expires for neighbours met later")
                    }
                    let expires = Double(CourierTime.unixSeconds(minutes: 0) + b.expires * 60)
                    if self.json {
                        var o: [String: Any] = [
                            "id": b.id.description, "kind": b.kind.description, "class": "\(b.priority)", "to": b.destination.label,
                            "toName": names.label(b.destination), "received": b.received, "ageSeconds": Int(now - Double(b.received)),
                            "expires": Int64(expires), "size": b.size, "attempts": b.attempts, "broadcasts": b.broadcasts, "custody": b.custody, "local": b.isLocal,
                            "sentTo": b.sentTo.map(\.description), "acknowledgedBy": b.acknowledgedBy.map(\.description),
                            "waiting": why.code, "why": why.text]
                        if let hop { o["nextHop"] = hop; o["nextHopName"] = ShortID(hex: hop).map { names.label($0) } ?? hop }
                        try printJSON(o)
                    } else {
                        say("\(b.id)  \(b.kind.description) to \(names.label(b.destination)), \(relative(now - Double(b.received))) old, \(bytes(b.size)), \(b.attempts + b.broadcasts) transmission\(b.attempts + b.broadcasts == 1 ? "" : "s")\(b.custody ? ", in our custody" : "")\(b.isLocal ? ", made here" : "")")
                        say("    next hop: \(hop.map { ShortID(hex: $0).map { names.label($0) } ?? $0 } ?? "-"); waits: \(why.text); expires \(clock(expires))")
                    }
                }
                if items.isEmpty && !self.json { say("queue empty") }
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Take a bundle out of the queue: it is not sent on from here (the change feed records it as removed, cancelled by the operator).")
        @OptionGroup var d: DirOption
        @Argument(help: "The bundle id (from `relay queue list` or `relay send`).") var id: String
        func run() async throws {
            try await guarded {
                let id = try bundleID(self.id)
                let store = try d.dir().store()
                guard try store.cancel(id, now: Int64(Date().timeIntervalSince1970)) else {
                    throw RelayError.usage("no bundle \(id) is queued here (`relay queue list` shows what is; a delivered, expired or cancelled one has left)")
                }
                say("cancelled \(id)")
            }
        }
    }
}

extension Relay {
    struct Outbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Messages this relay sent, with how far each got: queued, sent to a neighbour, custody passed, delivered (receipt).",
            discussion: "Read from the change feed (the last 100,000 changes) and the receipts that came back.")
        @OptionGroup var d: DirOption
        @Flag(help: "One JSON object per line.") var json = false
        @Flag(help: "Times in this machine's time zone instead of UTC.") var localTime = false

        struct Entry {
            var id: String
            var kind = ""
            var to = ""
            var at: Int64 = 0
            var state = "queued"
            var detail = ""
            var stateAt: Int64 = 0
            var sentTo: [String] = []
            var custodyTo: String?
            var receipts: [(from: ShortID, at: Int64)] = []
            var ended: (String, String)?
        }

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.storeForReading()
                let names = try NodeNames(dir: dir, store: store)
                let time = TimeFormat(local: self.localTime)
                var order: [String] = []
                var entries: [String: Entry] = [:]
                for e in try store.events(ofOrigin: names.me) {
                    guard let b = e.bundle else { continue }
                    if e.type == .enqueued {
                        // What people sent: not the relay's own receipts, identity bundles and failure notices.
                        guard e.local, entries[b] == nil,
                              !["receipt", "identity", "failure"].contains(e.kind ?? "") else { continue }
                        order.append(b)
                        var x = Entry(id: b)
                        x.kind = e.kind ?? ""
                        x.at = e.at
                        x.stateAt = e.at
                        // The feed's detail is "DESTINATION, N bytes, local".
                        let label = e.detail?.components(separatedBy: ", ").first ?? ""
                        x.to = label
                        entries[b] = x
                        continue
                    }
                    guard var x = entries[b] else { continue }
                    let who = e.neighbour.flatMap { ShortID(hex: $0) }.map { names.label($0) } ?? e.neighbour ?? "?"
                    switch e.type {
                    case .fragmentSent where e.neighbour == nil:
                        // A broadcast: "broadcast on LINK to ID ID".
                        let to = (e.detail?.components(separatedBy: " to ").dropFirst().first ?? "").split(separator: " ")
                            .map { ShortID(hex: String($0)).map { names.label($0) } ?? String($0) }
                        for w in to where !x.sentTo.contains(w) { x.sentTo.append(w) }
                        if to.isEmpty && !x.sentTo.contains("everyone in range") { x.sentTo.append("everyone in range") }
                        if x.custodyTo == nil { x.stateAt = e.at }
                    case .fragmentSent, .acknowledged:
                        if !x.sentTo.contains(who) { x.sentTo.append(who) }
                        if x.custodyTo == nil { x.stateAt = e.at }
                    case .custodyReleased:
                        x.custodyTo = who
                        x.stateAt = e.at
                    case .expired: x.ended = ("expired", "its lifetime passed before a receipt came")
                    case .evicted: x.ended = ("evicted", "pushed out of the queue: \(e.detail ?? "quota")")
                    case .removed:
                        if e.detail?.hasPrefix("delivered") != true { x.ended = (e.detail == Store.cancelledReason ? "cancelled" : "removed", e.detail ?? "") }
                    default: break
                    }
                    entries[b] = x
                }
                // Failure notices (SPEC: kind 8) say a bundle was given up on, and why; they stay in the inbox too.
                var failures: [String: String] = [:]
                for f in try store.inbox(limit: 100_000) where f.kind == .failure {
                    // A malformed notice (SPEC 6.8) names no bundle for certain: none is marked; the inbox shows it as malformed.
                    let entries: [(id: BundleID, reason: FailureReason)]
                    do { entries = try FailureContent.decode(f.content) } catch { continue }
                    for x in entries { failures[x.id.description] = "\(x.reason) (notice from \(names.label(f.id.origin)))" }
                }
                for r in try store.receipts() {
                    for (id, by) in ReceiptText.confirmations(r, me: names.me) where entries[id.description] != nil {
                        entries[id.description]!.receipts.append((by, r.received))
                    }
                }
                for b in order {
                    var x = entries[b]!
                    if !x.receipts.isEmpty {
                        x.state = "delivered"
                        x.stateAt = x.receipts.map(\.at).min()!
                        x.detail = "receipt from \(x.receipts.map { names.label($0.from) }.joined(separator: ", "))"
                    } else if let why = failures[b] {
                        x.state = "not-delivered"
                        x.detail = why
                    } else if let (s, why) = x.ended {
                        x.state = s
                        x.detail = why
                    } else if let c = x.custodyTo {
                        x.state = "custody-passed"
                        x.detail = "custody passed to \(c); no receipt yet"
                    } else if !x.sentTo.isEmpty {
                        x.state = "sent"
                        x.detail = "sent to neighbour \(x.sentTo.joined(separator: ", "))"
                    } else {
                        x.detail = "waiting in the queue (`relay queue list` says why)"
                    }
                    let to = x.to.hasPrefix("node:") ? ShortID(hex: String(x.to.dropFirst(5))).map { names.label($0) } ?? x.to : x.to
                    if self.json {
                        try printJSON(["id": x.id, "kind": x.kind, "to": x.to, "toName": to, "sent": x.at, "state": x.state, "since": x.stateAt,
                                       "detail": x.detail, "receiptsFrom": x.receipts.map(\.from.description)])
                    } else {
                        say("\(x.id)  \(x.kind) to \(to), \(time.string(Double(x.at)))")
                        say("    \(x.state.replacingOccurrences(of: "-", with: " ").uppercased()) \(time.string(Double(x.stateAt))): \(x.detail)")
                    }
                }
                if order.isEmpty && !self.json { say("outbox empty (nothing sent from this relay that the change feed remembers)") }
            }
        }
    }
}

extension Relay {
    struct Inbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Messages delivered to this relay: `inbox` lists them (a cut line ends in …), `inbox show ID` shows one whole.",
            discussion: "Receipts are not listed: they confirm what this relay sent (`relay outbox`).",
            subcommands: [List.self, Show.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List messages delivered to this relay.")
            @OptionGroup var d: DirOption
            @Flag(help: "One JSON object per line.") var json = false
            @Flag(help: "Only unread messages.") var unread = false
            @Flag(help: "Mark the listed messages read.") var markRead = false
            @Flag(help: "Times in this machine's time zone instead of UTC.") var localTime = false

            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    let store = try (self.markRead ? dir.store() : dir.storeForReading())
                    let names = try NodeNames(dir: dir, store: store)
                    let msgs = try store.messages(unreadOnly: self.unread)
                    let time = TimeFormat(local: self.localTime)
                    let now = Date().timeIntervalSince1970
                    let ledger = try PactLedger(store: store)
                    for m in msgs {
                        if self.json {
                            try printJSON(InboxFormat.json(m, names: names))
                        } else {
                            let when = self.localTime ? time.string(Double(m.received)) : relative(now - Double(m.received))
                            let offers = msgs.filter { $0.kind == .aidOffer && $0.reference == m.id.description }.count
                            let pactNote = PactCLI.inboxNote(m, ledger, now: now)
                            let note = pactNote.isEmpty ? InboxFormat.note(m, offers: offers, time: time, now: now) : pactNote
                            let (text, cut) = InboxFormat.firstLine(ReceiptText.text(m, me: names.me), limit: 100)
                            say("\(m.read ? " " : "*") \(m.kind.description.padding(toLength: 9, withPad: " ", startingAt: 0)) from \(names.label(m.id.origin))  \(when + String(repeating: " ", count: max(0, 8 - when.count)))  \(m.encrypted ? "[e2e] " : "")\(m.proven ? "" : "[origin not proven] ")\(note)\(text)\(cut ? "… [whole: relay inbox show \(m.id)]" : "")")
                            if m.kind == .aidRequest { say("            \(InboxFormat.offerHint(m))") }
                        }
                        if self.markRead { try store.markRead(m.id) }
                    }
                    if msgs.isEmpty && !self.json { say("inbox empty") }
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "One message, whole, with its details; marks it read.")
            @OptionGroup var d: DirOption
            @Argument(help: "The message's bundle id (from `relay inbox`).") var id: String
            @Flag(help: "JSON.") var json = false
            @Flag(help: "Times in this machine's time zone instead of UTC.") var localTime = false

            func run() async throws {
                try await guarded {
                    let id = try bundleID(self.id)
                    let dir = try d.dir()
                    let store = try dir.store()
                    guard let m = try store.inboxMessage(id), m.kind != .receipt else {
                        throw RelayError.usage("no message \(id) in this relay's inbox (`relay inbox` lists them)")
                    }
                    let names = try NodeNames(dir: dir, store: store)
                    try store.markRead(m.id)
                    if self.json {
                        try printJSON(InboxFormat.json(m, names: names))
                        return
                    }
                    let time = TimeFormat(local: self.localTime)
                    let now = Date().timeIntervalSince1970
                    say("id:       \(m.id)")
                    say("kind:     \(m.kind)")
                    say("from:     \(names.label(m.id.origin)) (\(m.proven ? "proven: its origin signature verified" : "NOT proven: unsigned (an older relay), so any federation member could have written it"))")
                    say("to:       \(names.label(m.destination))\(m.encrypted ? " (end-to-end encrypted)" : "")")
                    say("sent:     \(time.string(Double(CourierTime.unixSeconds(minutes: m.id.created))))")
                    say("received: \(time.string(Double(m.received))) (\(relative(now - Double(m.received))) ago)")
                    if m.respondBy != nil || m.reference != nil {
                        let offers = try store.messages().filter { $0.kind == .aidOffer && $0.reference == m.id.description }.count
                        say("note:     \(InboxFormat.note(m, offers: offers, time: time, now: now).dropLast())")
                    }
                    say("")
                    say(ReceiptText.text(m, me: names.me))
                    if m.kind == .aidRequest { say("\n" + InboxFormat.offerHint(m)) }
                }
            }
        }
    }
}

/// How the inbox shows a message.
enum InboxFormat {
    /// The first line of a text, at most `limit` characters, and whether anything was cut.
    static func firstLine(_ text: String, limit: Int) -> (String, Bool) {
        let first = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let shown = String(first.prefix(limit))
        return (shown, shown.count < text.count)
    }

    /// When an aid request is due (computed in 64 bits: a huge respond-by from another relay cannot overflow).
    static func due(_ m: InboxMessage) -> Double? {
        m.respondBy.map { Double(CourierTime.unixSeconds(minutes: m.id.created)) + Double($0) * 60 }
    }

    static func note(_ m: InboxMessage, offers: Int, time: TimeFormat, now: Double) -> String {
        if let due = self.due(m) {
            return "[respond by \(time.string(due))\(due > now ? ", in \(relative(due - now))" : ", PAST")\(offers > 0 ? "; \(offers) offer\(offers == 1 ? "" : "s")" : "")] "
        }
        if let r = m.reference { return "[answers \(r)] " }
        return ""
    }

    /// A command that works as printed (the text in quotes is what to replace).
    static func offerHint(_ m: InboxMessage) -> String {
        "id \(m.id) (answer with: relay send --to \(m.id.origin) --kind offer --reference \(m.id) \"what you can give\")"
    }

    static func json(_ m: InboxMessage, names: NodeNames) -> [String: Any] {
        var o: [String: Any] = ["id": m.id.description, "kind": m.kind.description, "from": m.id.origin.description,
                                "to": m.destination.label, "received": m.received, "read": m.read,
                                "encrypted": m.encrypted, "proven": m.proven]
        if let n = names.names[m.id.origin] { o["fromName"] = n }
        let content = ReceiptText.json(m, me: names.me)
        o[content.key] = content.value
        if let due = self.due(m) { o["respondBy"] = Int64(due) }
        if let r = m.reference { o["reference"] = r }
        return o
    }
}
