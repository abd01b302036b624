import ArgumentParser
import CourierLinks
import CourierNode
import CourierPacts
import CourierRuntime
import CourierStore
import CourierWire
import Foundation
import Logging

extension Relay {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "See a federation work with no hardware: relays on virtual serial cables on this machine.",
            discussion: """
                Five relays in one process, each with its own data directory and database, joined by pairs of \
                pseudo-terminals (the same framed serial link a cable or a pair of UART radio modems uses). A \
                mutual-aid alert spreads to every relay, a grievance goes hop by hop to the water committee and its \
                receipt comes back, three relays make a mutual-aid pact and answer an aid request under it, the village \
                runs a live drill every relay answers, then the village relay's queue feed is shown. Exit code 0 when every step worked.
                """)
        @Option(help: "Where to keep the relays' data directories (default: a new folder under /tmp).") var dir: String?
        @Option(help: "Line speed of the virtual cables in bit/s (1200 feels like packet radio).") var baud: Int = 9600
        @Option(help: "Seconds to wait for each step before giving up.") var timeout: Double = 60

        func run() async throws {
            try await guarded {
                try await DemoScript(root: self.dir, baud: self.baud, timeout: self.timeout).run()
            }
        }
    }
}

struct DemoScript {
    let root: String?
    let baud: Int
    let timeout: Double

    struct Place {
        let key: String
        let name: String
    }
    static let places = [
        Place(key: "village", name: "Sargalu village"), Place(key: "ridge", name: "ridge repeater"),
        Place(key: "committee", name: "Halabja water committee"), Place(key: "clinic", name: "upper valley clinic"),
        Place(key: "market", name: "Said Sadiq market"),
    ]
    /// Cables: village - ridge, ridge - committee, ridge - clinic, committee - market, clinic - market.
    static let cables = [(0, 1), (1, 2), (1, 3), (2, 4), (3, 4)]

    func say(_ s: String = "") { print(s) }

    func run() async throws {
        let t0 = Date()
        func stamp() -> String { String(format: "[%5.1f s]", Date().timeIntervalSince(t0)) }
        let root = self.root ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("courier-demo-\(UInt32.random(in: 0...UInt32.max))")
        if FileManager.default.fileExists(atPath: root + "/village/identity.json") {
            throw RelayError.cannotCreate("\(root) already holds a demo; give another --dir or remove it")
        }
        say("Courier demo: \(Self.places.count) relays on this machine, joined by virtual serial cables")
        say("(pseudo-terminal pairs carrying Courier's framed serial link, paced as a \(self.baud) bit/s line; no hardware, no network).")
        say()
        say("    Sargalu village ── ridge repeater ── Halabja water committee")
        say("                            │                      │")
        say("                  upper valley clinic ──── Said Sadiq market")
        say()

        // Data directories: one federation, as `relay init` and `relay init --join` make them.
        let key = NetworkKey.random()
        var dirs: [DataDir] = []
        var ids: [NodeIdentity] = []
        for p in Self.places {
            let d = DataDir(path: root + "/" + p.key)
            ids.append(try d.create(name: p.name, key: key, open: false))
            // Each relay has its data directory to itself, as under `relay run`.
            try d.lockForRun(statusFile: d.statusFile)
            dirs.append(d)
        }
        // Nothing is added by hand: no trust list, no keys. Each relay floods its identity (keys and name) through
        // the federation when it starts, as `relay run` does, so a message two hops away can be end-to-end encrypted.
        say("data: \(root)  (every relay command works on these folders, e.g. --data-dir \(root)/village)")
        say()

        // Cables and relays.
        let cables = try Self.cables.map { _ in try VirtualCable() }
        defer { for c in cables { c.stop() } }
        var logger = Logger(label: "relay.demo")
        logger.logLevel = .error
        var runtimes: [Runtime] = []
        var counters: [[RecordingLink]] = []
        var stores: [Store] = []
        for (i, d) in dirs.enumerated() {
            var links: [RecordingLink] = []
            for (c, (a, b)) in Self.cables.enumerated() where a == i || b == i {
                let path = a == i ? cables[c].pathA : cables[c].pathB
                links.append(RecordingLink(try LinkFactory.make(LinkConfig("serial:\(path):\(self.baud)"), logger: logger)))
            }
            let store = try d.store()
            var config = try d.nodeConfig(store: store)
            // Receipts are batched for a minute on a real relay; the demo shortens that so you see one come back.
            config.receiptDelay = 3
            // Receipt parts (drill answers among them) ride announces on slow half-duplex lines, at most a quarter
            // interval apart: every 40 s instead of 900 s, so the drill's answers come back within a minute.
            config.announceInterval = 40
            config.floodIdentity = true
            let node = try Node(config: config, store: store, links: links.map { LinkInfo(name: $0.name, properties: $0.properties) },
                                now: Date().timeIntervalSince1970)
            runtimes.append(Runtime(node: node, store: store, links: links, statusPath: d.statusFile, logger: logger))
            counters.append(links)
            stores.append(store)
        }
        let tasks = runtimes.map { r in Task { await r.run() } }
        defer {
            for r in runtimes { r.stop() }
        }
        say("\(stamp()) \(runtimes.count) relays running")

        // 1. Neighbours.
        let degree = Self.places.indices.map { i in Self.cables.filter { $0.0 == i || $0.1 == i }.count }
        var heard = Set<Int>()
        let allHeard = try await self.wait {
            for (i, d) in dirs.enumerated() where !heard.contains(i) {
                let n = ((FileManager.default.contents(atPath: d.statusFile).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })?["neighbours"] as? [Any])?.count ?? 0
                if n >= degree[i] {
                    heard.insert(i)
                    self.say("\(stamp()) \(Self.places[i].name) hears its \(degree[i]) neighbour\(degree[i] == 1 ? "" : "s")")
                }
            }
            return heard.count == dirs.count
        }
        guard allHeard else { throw RelayError.unavailable("the relays did not hear each other within \(Int(self.timeout)) s (a loaded machine? try --timeout 180)") }

        // Keys: each relay's identity bundle reaches every other relay.
        let allKeys = try await self.wait {
            try stores.enumerated().allSatisfy { i, store in
                try ids.enumerated().allSatisfy { j, id in try i == j || recipientKeys(id.nodeID.short, store: store) != nil }
            }
        }
        guard allKeys else { throw RelayError.unavailable("the relays' keys did not reach every relay within \(Int(self.timeout)) s") }
        say("\(stamp()) every relay has the others' keys from their identity bundles (nobody exchanged keys by hand)")

        // 2. A mutual-aid alert to everyone.
        say()
        let alertText = "Flood warning: the river is rising at the lower bridge. Move families from the riverbank to the school now."
        say("1. Sargalu village sends a mutual-aid alert to everyone:")
        say("   \"\(alertText)\"")
        let before = counters.flatMap { $0 }.map(\.totals).reduce((0, 0)) { ($0.0 + $1.packets, $0.1 + $1.bytes) }
        let alert = try self.submit(dirs[0], stores[0], runtimes[0], kind: .alert, to: .everyone, text: alertText)
        let sentAt = Date()
        var got = Set<Int>([0])
        let everywhere = try await self.wait {
            for (i, s) in stores.enumerated() where !got.contains(i) {
                if try s.inboxMessage(alert) != nil {
                    got.insert(i)
                    self.say("\(stamp()) reached \(Self.places[i].name)")
                }
            }
            return got.count == stores.count
        }
        guard everywhere else { throw RelayError.unavailable("the alert reached \(got.count) of \(stores.count) relays within \(Int(self.timeout)) s") }
        let after = counters.flatMap { $0 }.map(\.totals).reduce((0, 0)) { ($0.0 + $1.packets, $0.1 + $1.bytes) }
        say(String(format: "   every relay has it, %.1f s after sending (%d packets, %d bytes on the cables meanwhile, announces included)",
                   Date().timeIntervalSince(sentAt), after.0 - before.0, after.1 - before.1))

        // 3. A grievance to the committee, hop by hop, and its receipt.
        say()
        let grievanceText = "The pump at the upper well has been broken for nine days. Families on the hill carry water 2 km."
        say("2. Sargalu village sends a grievance to Halabja water committee only (\(ids[2].nodeID.short)),")
        say("   end-to-end encrypted: the relays in between carry it but cannot read it:")
        say("   \"\(grievanceText)\"")
        let grievance = try self.submit(dirs[0], stores[0], runtimes[0], kind: .grievance, to: .node(ids[2].nodeID.short), text: grievanceText)
        let gSent = Date()
        let delivered = try await self.wait { try stores[2].inboxMessage(grievance) != nil }
        guard delivered else { throw RelayError.unavailable("the grievance did not reach the committee within \(Int(self.timeout)) s") }
        say(String(format: "\(stamp()) delivered to Halabja water committee, %.1f s after sending (custody passed village → ridge → committee)", Date().timeIntervalSince(gSent)))
        let others = [1, 3, 4].filter { (try? stores[$0].inboxMessage(grievance)) != nil }
        say("   in anyone else's inbox: \(others.isEmpty ? "no" : others.map { Self.places[$0].name }.joined(separator: ", "))")
        let receipted = try await self.wait {
            // Signed by the committee, or the parts (6.16) the village checked and kept for itself: both say who has it.
            try stores[0].inbox(limit: 1_000).contains { m in
                m.kind == .receipt && ReceiptText.confirmations(m, me: ids[0].nodeID.short).contains { $0.id == grievance && $0.by == ids[2].nodeID.short }
            }
        }
        guard receipted else { throw RelayError.unavailable("no receipt came back to the village within \(Int(self.timeout)) s") }
        say("\(stamp()) receipt back at Sargalu village: the committee has it")

        // 4. A mutual-aid pact: village, committee and clinic bind themselves to answer within the hour.
        say()
        try await self.pact(dirs: dirs, stores: stores, runtimes: runtimes, ids: ids, stamp: stamp)

        // 5. A live drill: every relay answers on its own, with its hops.
        say()
        try await self.drill(dirs: dirs, stores: stores, runtimes: runtimes, stamp: stamp)

        // 6. The queue feed, as `relay queue tail` shows it.
        say()
        say("5. The village relay's change feed (`relay queue tail --data-dir \(root)/village`):")
        for e in try stores[0].events(after: 0, limit: 1_000).suffix(12) {
            say("   " + TailFormat.line(e))
        }
        say()
        say("Every step worked. Look around:")
        say("  relay peers --data-dir \(root)/ridge")
        say("  relay inbox --data-dir \(root)/committee")
        say("  relay queue tail --data-dir \(root)/village --since 0 --no-follow")
        say("  relay pact history river-towns --data-dir \(root)/clinic")
        say("  relay drill report --data-dir \(root)/village ID   (ID: the drill's, above)")
        for r in runtimes { r.stop() }
        for t in tasks { await t.value }
        // Stopped: `relay status` on these folders must say so.
        for d in dirs { try? FileManager.default.removeItem(atPath: d.statusFile) }
    }

    /// A pact among the village (0), the committee (2) and the clinic (3), made, joined, used and tallied as the
    /// `relay pact` commands do it.
    func pact(dirs: [DataDir], stores: [Store], runtimes: [Runtime], ids: [NodeIdentity], stamp: () -> String) async throws {
        say("3. Sargalu village, Halabja water committee and upper valley clinic make a mutual-aid pact, \"river-towns\":")
        say("   each answers the others' aid requests within an hour, and everyone can see whether they did.")
        let create = try PactRecord(pact: nil, body: .create(name: "river-towns", respondWithin: 3_600,
                                                           members: [ids[2].nodeID.short, ids[3].nodeID.short], pledge: "WATER: 500 l a day"))
        let pact = try PactCLI.submit(dirs[0], stores[0], kind: .text, text: "Pact river-towns made by Sargalu village; Sargalu village pledges: WATER: 500 l a day",
                                      record: create, lifetimeMinutes: PactCLI.recordLifetime)
        runtimes[0].poll()
        say("   relay pact create river-towns --member \(ids[2].nodeID.short) \(ids[3].nodeID.short) --respond-within 1 --pledge \"WATER: 500 l a day\"")
        for (i, pledge) in [(2, "PUMP PARTS: a mechanic within a day"), (3, "MEDICINE: oral rehydration salts")] {
            guard try await self.wait({ try PactLedger(store: stores[i]).pacts[pact] != nil }) else {
                throw RelayError.unavailable("the pact did not reach \(Self.places[i].name) within \(Int(self.timeout)) s")
            }
            _ = try PactCLI.submit(dirs[i], stores[i], kind: .text, text: "\(Self.places[i].name) joins pact river-towns and pledges: \(pledge)",
                                   record: try PactRecord(pact: pact, body: .join(pledge: pledge)), lifetimeMinutes: PactCLI.recordLifetime)
            runtimes[i].poll()
            say("\(stamp()) \(Self.places[i].name) joins: relay pact join river-towns --pledge \"\(pledge)\"")
        }
        guard try await self.wait({ try PactLedger(store: stores[0]).pacts[pact]?.bound.count == 3 }) else {
            throw RelayError.unavailable("the joins did not reach the village within \(Int(self.timeout)) s")
        }
        let askText = "The pump at the upper well is broken: 200 litres of water for the hill families tonight."
        let deadline = UInt64(Date().timeIntervalSince1970) + 3_600
        let request = try PactCLI.submit(dirs[0], stores[0], kind: .aidRequest, text: askText,
                                         record: try PactRecord(pact: pact, body: .request(deadline: deadline)), respondBy: 60)
        runtimes[0].poll()
        say("\(stamp()) the village asks: relay send --kind aid --pact river-towns \"\(askText)\"")
        for (i, offer) in [(2, "A mechanic and a spare impeller by 18:00."), (3, "Two tanks of 100 l from the clinic's cistern.")] {
            guard try await self.wait({ try PactLedger(store: stores[i]).requests[request] != nil }) else {
                throw RelayError.unavailable("the request did not reach \(Self.places[i].name) within \(Int(self.timeout)) s")
            }
            _ = try PactCLI.pledge(dirs[i], stores[i], request: request, text: offer)
            runtimes[i].poll()
            say("\(stamp()) \(Self.places[i].name) pledges: relay pact answer \(request) \"\(offer)\"")
        }
        // Every member holds the request and both pledges: the same ledger everywhere.
        let tallied = try await self.wait {
            try [0, 2, 3].allSatisfy { i in
                let l = try PactLedger(store: stores[i])
                return l.requests[request].map { q in l.owed(q).allSatisfy { q.pledges[$0] != nil } } ?? false
            }
        }
        guard tallied else { throw RelayError.unavailable("the pledges did not reach every member within \(Int(self.timeout)) s") }
        let ledger = try PactLedger(store: stores[0])
        let q = ledger.requests[request]!
        say("   the village's ledger (`relay pact history river-towns`), the same on every member:")
        for m in ledger.owed(q) {
            let i = ids.firstIndex { $0.nodeID.short == m }.map { Self.places[$0].name } ?? m.description
            say("     \(i): \(q.answer(m, now: Date().timeIntervalSince1970).rawValue), \(q.pledges[m]?.text ?? "-")")
        }
    }

    /// A live drill from the village to everyone (`relay drill start`), and its report once every relay answered.
    func drill(dirs: [DataDir], stores: [Store], runtimes: [Runtime], stamp: () -> String) async throws {
        say("4. Sargalu village runs a live drill: every relay answers on its own, and the village sees who, when and how far:")
        let me = try dirs[0].identity().0.nodeID.short
        let expected = try stores[0].peers().map(\.keys.nodeID.short).filter { $0 != me }.sorted { $0.rawValue < $1.rawValue }
        let id = try LiveDrill.start(dirs[0], stores[0], scope: nil, expected: expected,
                                     text: "DRILL: a test of the relay network. Relays answer on their own; nothing to do.", now: Date().timeIntervalSince1970)
        runtimes[0].poll()
        say("\(stamp()) relay drill start --everyone  →  \(id)")
        let drill = try stores[0].drill(id)!
        // Polled gently (one small query a quarter second): the relays run in this process and share its threads.
        var answered = false
        let end = Date().addingTimeInterval(self.timeout)
        while !answered && Date() < end {
            try await Task.sleep(for: .milliseconds(250))
            answered = try Set(stores[0].drillAnswers(id).map(\.node)).isSuperset(of: expected)
        }
        guard answered else {
            let r = try LiveDrill.report(drill, dir: dirs[0], store: stores[0], now: Date().timeIntervalSince1970)
            throw RelayError.unavailable("\(r.answered.count) of \(expected.count) relays answered the drill within \(Int(self.timeout)) s")
        }
        say("\(stamp()) every relay answered: relay drill report \(id)")
        for l in try LiveDrill.report(drill, dir: dirs[0], store: stores[0], now: Date().timeIntervalSince1970).lines { say("   " + l) }
    }

    /// Stores a local submission the way `relay send` does, then wakes the runtime to send it at once.
    func submit(_ dir: DataDir, _ store: Store, _ runtime: Runtime, kind: Kind, to: Destination, text: String) throws -> BundleID {
        let config = try dir.nodeConfig(store: store)
        var opts = BundleOptions(kind: kind)
        if case .node(let n) = to {
            guard let keys = try recipientKeys(n, store: store) else {
                throw RelayError.unavailable("the keys of \(n) are not known at \(dir.path): the message would not be end-to-end encrypted")
            }
            opts.encryptTo = keys
        }
        let id = try BundleMaker(identity: config.identity, groups: config.groups, store: store)
            .submit(kind: kind, destination: to, content: Array(text.utf8), options: opts, now: Date().timeIntervalSince1970)
        runtime.poll()
        return id
    }

    /// Polls `condition` every 50 ms until it holds or the step's time is up.
    func wait(_ condition: () throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(self.timeout)
        while Date() < end {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try condition()
    }
}
