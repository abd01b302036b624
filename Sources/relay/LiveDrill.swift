import ArgumentParser
import CourierNode
import CourierPacts
import CourierStore
import CourierWire
import Foundation

/// Live drills (issue 13 point 6, SPEC 6.17): `relay drill start` floods a drill alert that every relay answers on
/// its own (its receipt part, with the hops it is from here); `relay drill report` shows who answered, when, over how
/// many hops, and who is silent.
extension Relay.Drill {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a live drill: an alert every relay answers on its own. Prints the drill's id as its last line.",
            discussion: """
                The drill goes to every relay (a flood, like an alert); each relay that reads it answers with its \
                receipt part, which says how many hops from here it got the drill. `relay drill report ID` shows who \
                answered, when, over how many hops, and which relays expected to answer are silent: every relay whose \
                keys are known here (--everyone), or the members of a pact (--group PACT). People at each relay see \
                the drill in their inbox as an alert; there is nothing for them to do.
                """)
        @OptionGroup var d: DirOption
        @Flag(help: "Every relay of the federation known here is expected to answer (the default).") var everyone = false
        @Option(help: "The members of this pact (`relay pact list`) are expected to answer.") var group: String?
        @Argument(help: "What people see in their inbox.") var text = "DRILL: a test of the relay network. Relays answer on their own; nothing to do."

        func run() async throws {
            try await guarded {
                if self.everyone && self.group != nil {
                    throw RelayError.usage("--everyone and --group go alone: give one (none means --everyone)")
                }
                guard !self.text.isEmpty, self.text.utf8.count <= 1_024 else {
                    throw RelayError.usage("the drill's text is \(self.text.utf8.count) bytes: give 1 to 1024")
                }
                let dir = try d.dir()
                let store = try dir.store()
                let me = try dir.identity().0.nodeID.short
                let scope: String?
                var expected: [ShortID]
                if let g = self.group {
                    let p = try PactCLI.pact(g, try PactLedger(store: store))
                    scope = p.name
                    expected = p.members.filter { $0 != me }
                } else {
                    scope = nil
                    expected = try store.peers().map(\.keys.nodeID.short).filter { $0 != me }
                }
                expected = Array(Set(expected)).sorted { $0.rawValue < $1.rawValue }
                let id = try LiveDrill.start(dir, store, scope: scope, expected: expected, text: self.text, now: Date().timeIntervalSince1970)
                let names = try NodeNames(dir: dir, store: store)
                say("drill to \(scope.map { "the members of pact \($0)" } ?? "everyone"): \(expected.count) relay\(expected.count == 1 ? "" : "s") expected to answer\(expected.isEmpty ? "" : ": " + expected.map { names.label($0) }.joined(separator: ", "))")
                say("`relay drill report \(id)` shows the answers")
                print(id)
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Who answered a live drill, when (seconds after it started), over how many hops, and who is silent.")
        @OptionGroup var d: DirOption
        @Argument(help: "The drill's id, as `relay drill start` printed it.") var id: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            try await guarded {
                let id = try bundleID(self.id)
                let dir = try d.dir()
                let store = try dir.storeForReading()
                guard let drill = try store.drill(id) else {
                    let known = try store.drills().prefix(5).map(\.id.description)
                    throw RelayError.usage("no drill \(id) was started here\(known.isEmpty ? " (none yet: `relay drill start` starts one)" : "; the latest: \(known.joined(separator: ", "))")")
                }
                let report = try LiveDrill.report(drill, dir: dir, store: store, now: Date().timeIntervalSince1970)
                if self.json { try printJSON(report.json) } else { for l in report.lines { say(l) } }
            }
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The live drills this relay started, newest first: id, when, for whom, answered of expected.")
        @OptionGroup var d: DirOption
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let store = try dir.storeForReading()
                let now = Date().timeIntervalSince1970
                // Newest first; two started in the same second by their sequence numbers (the later one first).
                let drills = try store.drills().sorted { ($0.started, $0.id.created, $0.id.sequence) > ($1.started, $1.id.created, $1.id.sequence) }
                var rows: [[String: Any]] = []
                var lines: [String] = []
                for drill in drills {
                    let r = try LiveDrill.report(drill, dir: dir, store: store, now: now)
                    // Answers from relays not on the expected list (a pact's drill: every relay answers) are not counted.
                    let expected = Set(drill.expected)
                    let answered = r.answered.filter { expected.contains($0.node) }.count
                    rows.append(["drill": drill.id.description, "started": drill.started, "scope": drill.scope,
                                 "expected": drill.expected.count, "answered": answered, "silent": r.silent.count,
                                 "answers": r.answered.count])
                    let scope = drill.scope == "everyone" ? "everyone" : "pact \(drill.scope)"
                    lines.append("\(drill.id)  started \(clock(Double(drill.started))) (\(relative(now - Double(drill.started))) ago)  to \(scope)  \(answered) of \(drill.expected.count) answered\(r.silent.isEmpty ? "" : ", \(r.silent.count) silent")")
                }
                if self.json {
                    try printJSON(["drills": rows])
                } else if drills.isEmpty {
                    say("no drills yet: `relay drill start` starts one")
                } else {
                    for l in lines { say(l) }
                }
            }
        }
    }
}

enum LiveDrill {
    /// Makes the drill alert (extension type 6) and stores it as `relay send` does (a running relay adopts it from the
    /// change feed and floods it), and records the drill. Returns its id.
    static func start(_ dir: DataDir, _ store: Store, scope: String?, expected: [ShortID], text: String, now: Double) throws -> BundleID {
        var opts = BundleOptions(kind: .alert)
        opts.extensions = [DrillMark.make(scope: scope)]
        let config = try dir.nodeConfig(store: store)
        let id = try BundleMaker(identity: config.identity, groups: config.groups, store: store)
            .submit(kind: .alert, destination: .everyone, content: Array(text.utf8), options: opts, now: now)
        try store.startDrill(StoredDrill(id: id, started: Int64(now), scope: scope ?? "everyone", expected: expected))
        return id
    }

    /// Who answered (with hops from the receipt parts; relays that answered with a signed receipt, hops not said),
    /// when, and who is silent: as lines and as the `--json` object.
    static func report(_ drill: StoredDrill, dir: DataDir, store: Store, now: Double) throws -> (lines: [String], json: [String: Any], answered: [DrillAnswer], silent: [ShortID]) {
        let id = drill.id
        let names = try NodeNames(dir: dir, store: store)
        var answers = try store.drillAnswers(id)
        // Relays that could not send a part (the drill's keys unknown there, or no relay carrying parts on the
        // way) answered with a signed receipt: it says who and when, not the hops.
        var seen = Set(answers.map(\.node))
        for r in try store.receipts() {
            for (bid, by) in ReceiptText.confirmations(r, me: names.me) where bid == id && !seen.contains(by) {
                seen.insert(by)
                answers.append(DrillAnswer(node: by, at: r.received, hops: nil))
            }
        }
        answers.sort { ($0.at, $0.node.rawValue) < ($1.at, $1.node.rawValue) }
        let silent = drill.expected.filter { !seen.contains($0) }
        let json: [String: Any] = [
            "drill": id.description, "scope": drill.scope, "started": drill.started,
            "expected": drill.expected.map(\.description),
            "answered": answers.map { a -> [String: Any] in
                ["node": a.node.description, "name": names.names[a.node] ?? NSNull(), "seconds": max(0, a.at - drill.started),
                 "hops": a.hops.map { Int($0) as Any } ?? NSNull()]
            },
            "silent": silent.map(\.description)]
        var lines = ["drill \(id) to \(drill.scope == "everyone" ? "everyone" : "the members of pact \(drill.scope)"), started \(clock(Double(drill.started))) (\(relative(now - Double(drill.started))) ago): \(answers.count) answered, \(silent.count) silent"]
        for a in answers {
            let hops = a.hops.map { "\($0) hop\($0 == 1 ? "" : "s")" } ?? "hops not said"
            lines.append("  answered  \(names.label(a.node)) after \(max(0, a.at - drill.started)) s, \(hops)")
        }
        for s in silent { lines.append("  SILENT    \(names.label(s)): no answer yet") }
        return (lines, json, answers, silent)
    }
}
