import ArgumentParser
import CourierLinks
import CourierNode
import CourierPacts
import CourierRuntime
import CourierStore
import CourierWire
import Foundation
import Logging

/// The process entry point. It stays synchronous: the signals are blocked before any thread exists, the command
/// runs as a task, and the main thread waits for signals (see `ProcessSignals` for why an `async` main cannot).
@main
enum RelayMain {
    static func main() {
        ProcessSignals.blockAtStart()
        JournalLogHandler.bootstrap()
        // Detached: `main` is on the main actor, whose queue nobody drains here (the main thread waits for signals).
        Task.detached {
            await Relay.runCommand()
            Foundation.exit(0)
        }
        ProcessSignals.dispatchForever()
    }
}

struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Run a Courier relay: store-and-forward messaging over radio modems, relay to relay.",
        discussion: """
            Exit codes: 0 ok; 1 `relay run` cut short by a second stop signal; 3 not running (`relay status`: no relay holds the data directory); 64 wrong arguments; 65 bad data; 66 no data directory (or no file to read); 69 device or port \
            unavailable; 73 cannot create; 74 database error; 75 temporary failure: another relay holds the data \
            directory, or the queue is full (try again later); 77 the data directory is another user's (run as that user); 78 damaged configuration.
            """,
        version: "0.1.0",
        subcommands: [Init.self, Invite.self, Id.self, Run.self, Send.self, Inbox.self, Outbox.self, Queue.self, Status.self,
                      Quiet.self, Ports.self, Peers.self, Rekey.self, Export.self, Import.self, PactCommand.self, Dict.self, Demo.self, Drill.self])

    static func runCommand() async {
        do {
            var command = try parseAsRoot()
            if var c = command as? AsyncParsableCommand { try await c.run() } else { try command.run() }
        } catch let e as ExitCodeError {
            Foundation.exit(e.code)
        } catch {
            // A mistake on the command line (a missing argument, an unknown option): one line, as every other
            // refusal, not argument-parser's error, help and usage (`--help` still prints the whole usage).
            let code = Self.exitCode(for: error)
            if code == .validationFailure, let line = Self.oneLine(for: error) {
                FileHandle.standardError.write(Data("relay: \(line)\n".utf8))
                Foundation.exit(code.rawValue)
            }
            exit(withError: error)
        }
    }

    /// argument-parser's message for a command-line mistake in one line: the command, what is wrong (for a missing
    /// argument, what to give, from its help), and where the rest is (`relay CMD --help`). nil when its text is not
    /// the expected `Error:` / `Help:` / `Usage:` lines (then its own message is printed).
    static func oneLine(for error: any Error) -> String? {
        let lines = Self.fullMessage(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let usage = lines.first(where: { $0.hasPrefix("Usage: ") }) else { return nil }
        let words = usage.dropFirst("Usage: ".count).split(separator: " ").prefix { !($0.hasPrefix("[") || $0.hasPrefix("<") || $0.hasPrefix("-")) }
        let command = words.joined(separator: " ")
        let sub = words.dropFirst().joined(separator: " ")
        let what = Self.message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
        guard !what.isEmpty else { return nil }
        func lowerFirst<S: StringProtocol>(_ t: S) -> String {
            guard let f = t.first, t.dropFirst().first.map({ $0.isLowercase || $0 == " " }) ?? true else { return String(t) }
            return f.lowercased() + t.dropFirst()
        }
        // "Missing expected argument '<state>'" with "Help:  <state>  on or off": "quiet needs <state>: on or off".
        if what.hasPrefix("Missing expected argument '"), let help = lines.first(where: { $0.hasPrefix("Help:") }) {
            let parts = help.dropFirst("Help:".count).trimmingCharacters(in: .whitespaces)
                .components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if parts.count >= 2 {
                let text = parts.dropFirst().joined(separator: " ")
                let said = lowerFirst(text.hasSuffix(".") ? String(text.dropLast()) : text)
                // A help text that ends with its own example in parentheses needs no pointer to --help.
                return "\(sub.isEmpty ? command : sub) needs \(parts[0]): \(said)" + (said.hasSuffix(")") ? "" : " (`\(command) --help` shows the rest)")
            }
        }
        // `relay sned ...`: a mistyped command; say which there are.
        let names = Self.configuration.subcommands.map { $0.configuration.commandName ?? "\($0)".lowercased() }
        if sub.isEmpty, let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-"), !names.contains(first) {
            return "unknown command '\(first)': the commands are \(names.joined(separator: ", ")) (`relay --help` says what each does)"
        }
        let said = lowerFirst(what.hasSuffix(".") ? String(what.dropLast()) : what)
        return "\(sub.isEmpty ? "" : sub + ": ")\(said) (`\(command) --help` shows what it takes)"
    }
}

struct DirOption: ParsableArguments {
    @Option(name: .long, help: "The relay's data directory (or set RELAY_DATA_DIR).") var dataDir: String?
    func dir() throws -> DataDir { try DataDir.resolve(self.dataDir) }
}

extension Relay {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create this relay's identity, data directory and config file; create a federation or join one.")
        @OptionGroup var d: DirOption
        @Option(help: "A name other relays see (e.g. \"Sargalu clinic\").") var name: String?
        @Option(help: "Join the federation of this code (from `relay invite` on another relay).") var join: String?
        @Flag(help: "Create an open federation (amateur bands: readable, authenticated, origin-signed).") var open = false
        @Flag(help: "Make a new identity in a directory whose identity.json is gone but whose database remains (the old database is moved aside).")
        var forceNewIdentity = false
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await guarded {
                if let n = self.name, let wrong = DataDir.nameProblem(n) { throw RelayError.usage("--name \(wrong)") }
                let dir = try d.dir()
                if FileManager.default.fileExists(atPath: dir.identityFile) {
                    throw RelayError.cannotCreate("\(dir.path) already holds a relay identity; use another directory (nothing was changed)")
                }
                let (key, open) = try self.join.map(JoinCode.parse) ?? (NetworkKey.random(), self.open)
                // The mode is the federation's, fixed when it was made: --open cannot make a sealed one open.
                if self.open && !open {
                    throw RelayError.usage("--open makes a new federation; this join code is of a sealed (encrypted) one, which a relay joins as it is: leave out --open, or, for amateur bands, join with the code of a federation made with `relay init --open`")
                }
                // The identity was lost but its database (queued bundles under the old origin, its counters) remains:
                // a new identity there would keep those bundles under an origin nobody holds any more.
                let left = [dir.database, dir.floorFile].filter { FileManager.default.fileExists(atPath: $0) }
                if !left.isEmpty {
                    guard self.forceNewIdentity else {
                        throw RelayError.cannotCreate("\(dir.path) has no identity.json but still holds \(left.map { ($0 as NSString).lastPathComponent }.joined(separator: " and ")) of a relay: restore identity.json and network.json from a backup, or give --force-new-identity to make a new node here (the old database is moved aside; its queued messages stay under the old identity)")
                    }
                    let aside = "before-new-identity-\(Int(Date().timeIntervalSince1970))"
                    for f in [dir.database, dir.database + "-wal", dir.database + "-shm", dir.floorFile]
                    where FileManager.default.fileExists(atPath: f) {
                        do { try FileManager.default.moveItem(atPath: f, toPath: f + "." + aside) } catch {
                            throw RelayError.cannotCreate("cannot move \(f) aside: \(error.localizedDescription)")
                        }
                    }
                    FileHandle.standardError.write(Data("relay: note: the old database was moved aside to \(dir.database).\(aside)\n".utf8))
                }
                let id = try dir.create(name: self.name, key: key, open: open)
                if self.json {
                    let o: [String: Any] = ["dataDir": dir.path, "node": id.nodeID.short.description, "nodeID": id.nodeID.description,
                                            "network": key.fingerprint, "open": open, "joinCode": JoinCode.make(key: key, open: open),
                                            "identityCode": IdentityCode.make(id.publicKeys)]
                    try printJSON(o)
                    return
                }
                print("relay initialised in \(dir.path)")
                print("node id:   \(id.nodeID.short)  (\(id.nodeID))")
                print("network:   \(self.join == nil ? "new federation" : "joined") \(key.fingerprint)\(open ? " (open mode)" : "")")
                print("join code: \(JoinCode.make(key: key, open: open))")
            }
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the one-line code another relay joins this federation with.")
        @OptionGroup var d: DirOption
        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                try dir.requireInitialised()
                let open = try dir.network().1
                print(JoinCode.make(key: try dir.sendingKey(), open: open))
            }
        }
    }

    struct Id: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print this relay's node id (the short id others send to).")
        @OptionGroup var d: DirOption
        @Flag(help: "Print the full 16-byte id too.") var full = false
        func run() async throws {
            try await guarded {
                let (id, _) = try d.dir().identity()
                print(self.full ? "\(id.nodeID.short) \(id.nodeID)" : id.nodeID.short.description)
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the relay on its links until SIGTERM or SIGINT.",
            discussion: "SPEC: \(LinkSpec.help), each with an optional ,mtu=N.")
        @OptionGroup var d: DirOption
        @Option(name: .customLong("link"), help: "A link to run (repeatable); default: the links in relay.conf.") var links: [String] = []
        @Option(help: "Amateur-band callsign CALL[-SSID]: KISS packets go in AX.25 UI frames from this station (needs an open federation).") var callsign: String?
        @Flag(name: .customLong("i-know-this-is-not-amateur"),
              help: "This station is not on an amateur band (e.g. an ISM-band LoRa KISS TNC): KISS without --callsign, or --callsign on a sealed federation, are allowed.")
        var notAmateur = false
        @Flag(help: "Start even when a link's port or TNC is not there yet: report it down and retry (1 s doubling to 60 s). Without it, relay run exits 69 at start.")
        var waitForLinks = false
        @Option(help: "Radio duty-cycle limit in percent (e.g. 1 or 10).") var dutyCycle: Double?
        @Option(help: "RNode: frequency in Hz (default 869525000).") var frequency: UInt32?
        @Option(help: "RNode: bandwidth in Hz (7800 to 500000; default 125000).") var bandwidth: UInt32?
        @Option(help: "RNode: spreading factor 5-12 (default 9).") var spreadingFactor: UInt8?
        @Option(help: "RNode: coding rate 5-8, meaning 4/5 to 4/8 (default 5).") var codingRate: UInt8?
        @Option(help: "RNode: transmit power in dBm (0-22; default 14).") var txPower: UInt8?
        @Option(help: "Log level: debug, info, notice, warning (default: relay.conf's log-level, else info).") var logLevel: String?

        func run() async throws {
            // From here on SIGTERM and SIGINT stop the relay (at once if it is still starting) and SIGHUP reloads.
            let stops = StopRequests()
            ProcessSignals.setHandler { stops.handle($0) }
            try await guarded {
                if let duty = self.dutyCycle, !(duty.isFinite && duty > 0 && duty <= 100) {
                    throw RelayError.usage("--duty-cycle \(duty): use a percentage above 0 and at most 100 (EU868: 1 or 10); leave it out for no limit")
                }
                let dir = try d.dir()
                try dir.requireInitialised()
                let cfg = dir.config()
                if let p = cfg.problems.first { throw RelayError.config(p) }
                let specs = self.links.isEmpty ? cfg.links : self.links
                guard !specs.isEmpty else {
                    throw RelayError.usage("no links: give --link SPEC (\(LinkSpec.help)) or add `link = ...` lines to \(dir.configFile)")
                }
                let configs: [LinkConfig]
                do { configs = try specs.map { try LinkConfig($0) } } catch let e as LinkError { throw RelayError.usage(e.description) }
                // The same link (or port) twice on the command line (relay.conf's are checked with its lines).
                for (i, c) in configs.enumerated() {
                    if let first = configs[..<i].first(where: { DataDir.sameTarget($0.spec, c.spec) }) {
                        throw RelayError.usage(first.spec.description == c.spec.description
                            ? "--link \(c.spec) is given twice: keep one"
                            : "--link \(c.spec) opens the same port as --link \(first.spec): a port carries one link; keep one")
                    }
                }
                let open = try dir.network().1
                var opts = LinkOptions()
                // A port that fails is retried 1 s, 2 s, 4 s ... then every 60 s, one log line per failure.
                opts.backoff = Backoff(initial: 1, maximum: 60)
                opts.callsign = try self.amateurCheck(configs.map(\.spec), config: cfg, open: open)
                opts.rnodeRadio = try self.radio(cfg)
                let (key, _) = try dir.network()
                opts.mqttIdentity = (federation: key.fingerprint, node: try dir.identity().0.nodeID.short.description)
                // A name edited into identity.json by hand is not refused (the relay runs), but the operator hears
                // what others will see: a name cut to 32 bytes, or control characters shown escaped.
                if let name = try dir.identity().1, let wrong = DataDir.nameProblem(name) {
                    Logger(label: "relay").warning("\(dir.identityFile): the name \(wrong); others see it cut to 32 bytes or with its control characters escaped")
                }
                var logger = Logger(label: "relay")
                let level = self.logLevel ?? cfg.logLevel ?? "info"
                guard let l = Logger.Level(rawValue: level) else { throw RelayError.usage("unknown log level '\(level)': use debug, info, notice or warning") }
                logger.logLevel = l
                // One relay per data directory (exit 75 naming the other's pid); held until this process exits.
                let statusFile = DataDir.runStatusFile(dataDir: dir)
                // On a full disk the lock is held though its pid could not be written: written once there is space.
                let lock = try dir.lockForRun(statusFile: statusFile)
                var links: [any Link] = []
                do { for c in configs { links.append(try LinkFactory.make(c, options: opts, logger: logger)) } } catch let e as LinkError {
                    throw RelayError.unavailable(e.description)
                }
                // Ports and TNCs must be there at start (exit 69, one line) unless asked to wait for them. A `tcp:`
                // link to another relay is always retried: that relay may simply not be up yet.
                if !(self.waitForLinks || cfg.waitForLinks) {
                    for (c, link) in zip(configs, links) where c.spec.isLocalDevice {
                        do throws(LinkError) { try link.openAtStart() } catch {
                            switch error {
                            case .notFound, .unreachable:
                                throw RelayError.unavailable("\(error.description) (--wait-for-links waits for it)")
                            default: throw RelayError.unavailable(error.description)
                            }
                        }
                    }
                }
                // A relay box whose disk filled up while the relay was stopped: it waits for space (a service would
                // otherwise restart it in a loop), then starts by itself. Nothing could be stored meanwhile anyway.
                guard let store = try await Self.storeWaitingForSpace(dir, stops: stops, logger: logger) else {
                    logger.notice(Disk.readOnly(dir.path) != nil
                        ? "stopped while waiting for the disk to be writable; everything queued is kept for the next start"
                        : "stopped while waiting for space on the disk; everything queued is kept for the next start")
                    return
                }
                switch lock {
                case .recorded: break
                case .unrecorded: try dir.recordLock(statusFile: statusFile)
                case .notTaken: try dir.lockForRun(statusFile: statusFile)
                }
                if let raised = store.floorRaised { logger.notice("\(raised)") }
                // A key change whose moment passed while the relay was stopped: the files say so first (SPEC 3.7).
                try dir.settleKeyRotation(now: Date().timeIntervalSince1970)
                // identity.json and network.json from before there were checksums get one now.
                for f in try dir.addMissingChecks() { logger.notice("added a checksum to \(f)") }
                var nodeConfig = try dir.nodeConfig(store: store)
                // A running relay tells the federation its keys (and renews that), so members can encrypt to it.
                nodeConfig.floodIdentity = true
                let node = try Node(
                    config: nodeConfig, store: store,
                    links: links.map { LinkInfo(name: $0.name, properties: $0.properties,
                                                dutyCycle: $0.properties.airtime == .none ? nil : (self.dutyCycle ?? cfg.dutyCycle.map { $0 * 100 }).map { $0 / 100 }) },
                    now: Date().timeIntervalSince1970)
                let runtime = Runtime(node: node, store: store, links: links, statusPath: statusFile, logger: logger)
                let callsign = opts.callsign.map(\.description) ?? "none"
                // The quota and inbox bound in force (`relay status` compares them with relay.conf's).
                runtime.statusInfo = ["mode": open ? "open" : "sealed", "callsign": callsign,
                                      "quota": String(store.quotaBytes), "inbox": String(store.inboxBytes)]
                // SIGHUP (and an edit of the trust list): groups, trust, duty cycle apply at once; links need a restart.
                let radios = links.filter { $0.properties.airtime != .none }.map(\.name)
                let flagDuty = self.dutyCycle
                let startLinks = specs
                let linksFromFlags = !self.links.isEmpty
                let startAmateur = (callsign: cfg.callsign, notAmateur: cfg.notAmateur)
                let log = logger
                runtime.onReload = { [weak runtime] node in
                    let conf = dir.config()
                    if let p = conf.problems.first {
                        log.error("reload refused, the running settings are kept: \(p)")
                        return
                    }
                    node.setGroups(Set(conf.groups.map(GroupID.init(name:))))
                    do { node.setNetworkKey(try dir.network().0, rotation: try dir.keyRotation(), now: Date().timeIntervalSince1970) } catch {
                        log.error("reload: cannot read the network keys; keeping the ones in use", metadata: ["error": "\(error)"])
                    }
                    do { node.setTrust(try dir.trustPolicy(conf, store: store)) } catch {
                        log.error("reload: cannot read the trust list; keeping the old one", metadata: ["error": "\(error)"])
                    }
                    let duty = flagDuty.map { $0 / 100 } ?? conf.dutyCycle
                    for r in radios { node.setDutyCycle(duty, on: r) }
                    // The queue's quota and the inbox bound: for what is received and queued from now on.
                    let (quota, inbox) = (conf.quota ?? Store.Configuration().quotaBytes, conf.inbox ?? Store.Configuration().inboxBytes)
                    let (oldQuota, oldInbox) = (store.quotaBytes, store.inboxBytes)
                    if quota != oldQuota || inbox != oldInbox {
                        store.setLimits(quota: quota, inbox: inbox)
                        if quota != oldQuota { log.notice("quota-mb now \(megabytes(quota)) (was \(megabytes(oldQuota)))") }
                        if inbox != oldInbox { log.notice("inbox-mb now \(megabytes(inbox)) (was \(megabytes(oldInbox)))") }
                        runtime?.statusInfo["quota"] = String(quota)
                        runtime?.statusInfo["inbox"] = String(inbox)
                    }
                    if !linksFromFlags && conf.links != startLinks {
                        log.warning("relay.conf: the links changed; restart the relay to use them (kept: \(startLinks.joined(separator: " ")))")
                    }
                    if conf.callsign != startAmateur.callsign || conf.notAmateur != startAmateur.notAmateur {
                        log.warning("relay.conf: callsign or not-amateur changed; restart the relay to use them (kept: callsign \(callsign))")
                    }
                    log.notice("configuration applied", metadata: [
                        "trust": "\(conf.trustPeersOnly ? "peers" : "network")", "groups": "\(conf.groups.joined(separator: ","))",
                        "duty-cycle": "\(duty.map { "\($0 * 100)%" } ?? "none")"])
                }
                logger.notice("relay running", metadata: ["node": "\(node.me.short)", "links": "\(links.map(\.name).joined(separator: " "))",
                                                          "mode": "\(open ? "open" : "sealed")", "callsign": "\(callsign)"])
                stops.attach(runtime, logger: logger, configFile: dir.configFile)
                await runtime.run()
                do {
                    try store.checkpoint()
                } catch {
                    logger.warning("could not fold the write-ahead log into the database at stop; it is kept and read at the next start",
                                   metadata: ["error": "\(error)"])
                }
                do {
                    try FileManager.default.removeItem(atPath: statusFile)
                } catch {
                    logger.debug("status file not removed", metadata: ["error": "\(error)"])
                }
                logger.notice("stopped; everything queued is kept for the next start")
            }
        }

        /// The store, once it can be opened for writing. On a full disk (SQLite cannot make its shared-memory file or
        /// write its schema version; counters.json cannot be written) or one mounted read-only (an SD card the kernel
        /// remounted `ro` after errors): one error line naming the disk (its free space, or that it is read-only and
        /// what to do), then a probe each `Runtime.storageProbeInterval` and a line each `Runtime.storageLogInterval`,
        /// until it can write. nil when the relay was asked to stop meanwhile. Any other failure throws as before.
        static func storeWaitingForSpace(_ dir: DataDir, stops: StopRequests, logger: Logger) async throws -> Store? {
            var since: Double? = nil
            var lastLogged = 0.0
            var probes = 0
            var lastWhy = ""
            while true {
                do {
                    let store = try dir.store()
                    if let since {
                        logger.notice("storage works again after \(Int(Date().timeIntervalSince1970 - since)) s of \(lastWhy) at start (\(probes) probes); nothing queued was lost; starting")
                    }
                    return store
                } catch let e as StoreError {
                    // Waited out: a full disk, and any failure to write on a disk mounted read-only.
                    let readOnly = Disk.readOnly(dir.path) != nil
                    if case .diskFull = e {} else if !readOnly { throw e }
                    let why = readOnly ? "a read-only disk" : "disk full"
                    let now = Date().timeIntervalSince1970
                    if since == nil || why != lastWhy {
                        since = since ?? now
                        lastLogged = now
                        lastWhy = why
                        if readOnly {
                            logger.error("storage failed at start: cannot write \(dir.path): \(Disk.readOnlyProblem(dir.path)); waiting until it can write, nothing is sent or received until then; queued messages are safe; the relay starts by itself once the disk is writable")
                        } else {
                            logger.error("storage failed at start: \(e.description) (\(Disk.freeSpace(dir.path))); waiting for space, nothing is sent or received until then; the relay starts by itself once space is freed")
                        }
                    } else if now - lastLogged >= Runtime.storageLogInterval {
                        lastLogged = now
                        logger.error(readOnly
                            ? "storage still failing at start: \(Disk.readOnlyProblem(dir.path)); \(probes) probes in \(Int(now - since!)) s; waiting until it can write"
                            : "storage still failing at start: disk full (\(Disk.freeSpace(dir.path))), \(probes) probes in \(Int(now - since!)) s; waiting for space")
                    }
                }
                let until = Date().addingTimeInterval(Runtime.storageProbeInterval)
                while Date() < until {
                    if stops.stopAsked { return nil }
                    try await Task.sleep(nanoseconds: 100_000_000)
                }
                if stops.stopAsked { return nil }
                probes += 1
            }
        }
    }

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a message: to a node, a group or everyone. Prints its bundle id. Works while `relay run` is running.")
        @OptionGroup var d: DirOption
        @Option(help: "The destination node: its id (8 hex digits, from `relay id`) or its name, as `relay peers` lists it.") var to: String?
        @Flag(help: "Queue it for a node id nobody here has heard of (not heard, not on the trust list, no message from it).") var unknownOk = false
        @Option(help: "A group name (e.g. water-committee).") var group: String?
        @Flag(help: "Everyone in the federation.") var everyone = false
        @Option(help: "alert, aid, offer, grievance, minutes or text.") var kind: String = "text"
        @Option(help: "Read the message from this file (one trailing newline is dropped).") var file: String?
        @Option(help: "Lifetime in hours, more than 0 and at most 8760 (one year); default per kind.") var lifetime: Double?
        @Option(help: "For aid requests only: answer within this many hours (within the lifetime).") var respondBy: Double?
        @Option(help: "For offers: the id of the aid request it answers (a request this relay has).") var reference: String?
        @Option(help: "For aid requests: ask the members of this pact (name or id), with its response time (`relay pact list`).") var pact: String?
        @Flag(help: "Do not encrypt end to end (by default a message to a node whose keys are known is readable only by it).") var noEncrypt = false
        @Flag(help: "Origin-sign it even when end-to-end encrypted (64 bytes more; for a recipient, or a relay on the way, that runs a Courier from before issue 16 with trust = peers).") var sign = false
        @Argument(help: "The message (or - to read standard input; one trailing newline is dropped).") var text: String?

        /// The longest lifetime `relay send` gives (SPEC 6.6 allows up to 2^32-1 minutes; a year keeps a mistyped
        /// value from sitting in every queue of the federation for decades).
        static let maxLifetimeHours = 8_760.0

        /// Hours given on the command line, as whole minutes (at least one); refused when not a number of hours in
        /// (0, `max`] (so no conversion can overflow).
        static func minutes(_ hours: Double, _ option: String, max: Double, why: String) throws -> UInt32 {
            guard hours.isFinite, hours > 0, hours <= max else {
                let given = hours.isFinite && hours == hours.rounded() && abs(hours) < 1e15 ? String(Int64(hours)) : "\(hours)"
                throw RelayError.usage("\(option) \(given): give hours, more than 0 and at most \(String(format: "%g", max)) (\(why))")
            }
            return UInt32(Swift.max(1, (hours * 60).rounded()))
        }

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let kinds: [String: Kind] = ["alert": .alert, "aid": .aidRequest, "offer": .aidOffer, "grievance": .grievance, "minutes": .minutes, "text": .text]
                guard let kind = kinds[self.kind] else { throw RelayError.usage("unknown kind '\(self.kind)': use one of alert, aid, offer, grievance, minutes, text") }
                let dests = [self.to != nil, self.group != nil, self.everyone].filter { $0 }.count
                if let pact = self.pact {
                    // An aid request under a pact goes to everyone with the pact's response time (SPEC 6.15).
                    guard kind == .aidRequest else { throw RelayError.usage("--pact is for aid requests (--kind aid); pledge to one with `relay pact answer ID TEXT`") }
                    guard self.to == nil && self.group == nil else {
                        throw RelayError.usage("an aid request under a pact goes to everyone, so that every member's ledger has it: leave out --to and --group")
                    }
                    guard self.respondBy == nil else { throw RelayError.usage("--respond-by comes from the pact (its response time): leave it out") }
                    return try self.sendUnderPact(pact, dir: dir)
                }
                guard dests == 1 else { throw RelayError.usage("say where it goes: exactly one of --to NODE, --group NAME, --everyone") }
                if kind == .alert && self.to != nil {
                    throw RelayError.usage("an alert goes to everyone or a group, which pass it on at once; use --everyone or --group NAME (or another kind for one node)")
                }
                if self.file != nil && self.text != nil {
                    throw RelayError.usage("give the message as TEXT or with --file, not both")
                }
                if self.respondBy != nil && kind != .aidRequest {
                    throw RelayError.usage("--respond-by is for aid requests (--kind aid) only")
                }
                if self.reference != nil && kind != .aidOffer {
                    throw RelayError.usage("--reference is for offers (--kind offer), which answer an aid request")
                }
                if kind == .aidOffer && self.reference == nil {
                    throw RelayError.usage("an offer answers an aid request: give --reference REQUEST-ID (the id `relay inbox` shows under the request)")
                }
                var opts = BundleOptions(kind: kind)
                if self.sign { opts.sign = true }
                if let h = self.lifetime { opts.lifetime = try Self.minutes(h, "--lifetime", max: Self.maxLifetimeHours, why: "one year") }
                if let h = self.respondBy {
                    let lifetimeHours = Double(opts.lifetime) / 60
                    opts.respondBy = try Self.minutes(h, "--respond-by", max: lifetimeHours, why: "the message's lifetime; --lifetime gives a longer one")
                }
                let store = try dir.store()
                if let r = self.reference {
                    let id = try bundleID(r)
                    let request = try store.inboxMessage(id).map(\.kind) ?? store.bundle(id)?.kind
                    guard request == .aidRequest else {
                        throw RelayError.usage(request == nil
                            ? "no aid request \(id) is known here (`relay inbox` lists the requests this relay has); check the id"
                            : "\(id) is a \(request!), not an aid request: an offer answers an aid request")
                    }
                    opts.reference = id
                    // An offer to a request under a pact is a pledge: it goes to everyone, for every member's ledger.
                    let ledger = try PactLedger(store: store)
                    if let q = ledger.requests[id], ledger.owed(q).contains(try dir.identity().0.nodeID.short) {
                        if self.to.map({ (try? NodeNames(dir: dir, store: store).resolve($0, unknownOK: true)) != id.origin }) == true || self.group != nil {
                            throw RelayError.usage("\(id) is an aid request under a pact: the offer answers its requester (\(id.origin)); give --to \(id.origin)")
                        }
                        let text = try self.messageText()
                        FileHandle.standardError.write(Data("relay: note: \(id) is an aid request under a pact: this offer is a pledge, sent to everyone so every member's ledger records it\n".utf8))
                        print(try PactCLI.pledge(dir, store, request: id, text: String(decoding: text, as: UTF8.self)))
                        return
                    }
                }
                let dest: Destination
                if let t = self.to {
                    dest = .node(try NodeNames(dir: dir, store: store).resolve(t, unknownOK: self.unknownOk))
                } else if let g = self.group { dest = .group(GroupID(name: g)) } else { dest = .everyone }
                let content = try self.messageText()
                if case .node(let to) = dest, !self.noEncrypt, !(try dir.network().1) {
                    if let keys = try recipientKeys(to, store: store) {
                        opts.encryptTo = keys
                    } else {
                        FileHandle.standardError.write(Data("relay: note: the keys of \(to) are not known here (never heard, not on the trust list), so the message is not end-to-end encrypted; `relay peers add CODE` fixes that\n".utf8))
                    }
                }
                // Made and stored here; the running relay adopts it from the change feed and sends it.
                let config = try dir.nodeConfig(store: store)
                let id = try BundleMaker(identity: config.identity, groups: config.groups, store: store)
                    .submit(kind: kind, destination: dest, content: content, options: opts, now: Date().timeIntervalSince1970)
                print(id)
            }
        }

        /// Where the message goes, as typed (for a line that shows the whole command).
        var destinationHint: String {
            self.to.map { "--to \($0)" } ?? self.group.map { "--group \($0)" } ?? "--everyone"
        }

        /// The message: TEXT, a file, or standard input (one trailing newline dropped from the last two).
        func messageText() throws -> [UInt8] {
            var content: [UInt8]
            if let f = self.file {
                guard let data = FileManager.default.contents(atPath: f) else {
                    let why = FileManager.default.fileExists(atPath: f) ? "permission denied, or not a file" : "no such file"
                    throw RelayError.noInput("cannot read \(f) (\(why)): check the path given to --file; nothing was queued")
                }
                content = [UInt8](data)
            } else if self.text == nil || self.text == "-" {
                // `relay send --everyone` typed at a terminal, the text forgotten: say so rather than wait on the keyboard.
                if self.text == nil && isatty(STDIN_FILENO) == 1 {
                    throw RelayError.usage("give the message: relay send \(self.destinationHint) \"TEXT\" (or --file PATH, or - to read it from standard input)")
                }
                content = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            } else {
                content = Array(self.text!.utf8)
            }
            // A file or standard input ends in the newline editors and `echo` add: it is not part of the message.
            if (self.file != nil || self.text == nil || self.text == "-"), content.last == 0x0A {
                content.removeLast()
                if content.last == 0x0D { content.removeLast() }
            }
            guard !content.isEmpty, !String(decoding: content, as: UTF8.self).allSatisfy(\.isWhitespace) else {
                throw RelayError.usage("the message is \(content.isEmpty ? "empty" : "only spaces"): give the text to send; nothing was queued")
            }
            guard content.count <= CourierBundle.maxContentSize else {
                throw RelayError.usage("the message is \(content.count) bytes; the limit is \(CourierBundle.maxContentSize): split it")
            }
            return content
        }

        /// `send --kind aid --pact NAME`: to everyone, with the pact's response time (a deadline to the second in the
        /// pact record, whole minutes in the respond-by field older relays read), signed.
        func sendUnderPact(_ name: String, dir: DataDir) throws {
            let store = try dir.store()
            let ledger = try PactLedger(store: store)
            let p = try PactCLI.pact(name, ledger)
            let me = try dir.identity().0.nodeID.short
            guard p.bound.contains(me) else {
                throw RelayError.usage("you (\(me)) are not bound by pact \(p.name) (not a member, not joined yet, or withdrawn): `relay pact join \(p.name) --pledge TEXT` first")
            }
            let content = try self.messageText()
            let now = Date().timeIntervalSince1970
            let respondBy = UInt32(max(1, (Double(p.respondWithin) / 60).rounded(.up)))
            var lifetime = max(Kind.aidRequest.defaultLifetime, respondBy + 1_440)
            if let h = self.lifetime { lifetime = max(try Self.minutes(h, "--lifetime", max: Self.maxLifetimeHours, why: "one year"), respondBy) }
            let record = try PactRecord(pact: p.id, body: .request(deadline: UInt64(now) + UInt64(p.respondWithin)))
            print(try PactCLI.submit(dir, store, kind: .aidRequest, text: String(decoding: content, as: UTF8.self), record: record,
                                     lifetimeMinutes: lifetime, respondBy: respondBy))
        }
    }

    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What is queued: totals by class and destination; `queue list` each bundle and why it waits; `queue cancel ID`; `queue tail` follows every change live.",
            subcommands: [Show.self, List.self, Cancel.self, Tail.self], defaultSubcommand: Show.self)

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "A snapshot of the queue.")
            @OptionGroup var d: DirOption
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await guarded {
                    let s = try d.dir().storeForReading().snapshot()
                    if self.json {
                        var o: [String: Any] = ["count": s.total.count, "bytes": s.total.bytes, "quota": s.quota, "unread": s.inboxUnread,
                                                "expired": s.expiredTotal, "evicted": s.evictedTotal]
                        o["byClass"] = Dictionary(uniqueKeysWithValues: s.byClass.map { ("\($0.key)", ["count": $0.value.count, "bytes": $0.value.bytes]) })
                        o["byDestination"] = s.byDestination.mapValues { ["count": $0.count, "bytes": $0.bytes] }
                        try printJSON(o)
                        return
                    }
                    print("queued: \(s.total.count) bundles, \(bytes(s.total.bytes)) of \(bytes(s.quota)) quota")
                    for p in PriorityClass.allCases {
                        let l = s.byClass[p] ?? .init(count: 0, bytes: 0)
                        print("  \("\(p)".padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(l.count).leftPadded(6))  \(bytes(l.bytes))")
                    }
                    for (d, l) in s.byDestination.sorted(by: { $0.key < $1.key }) { print("  to \(d): \(l.count)") }
                    if let o = s.oldest { print("oldest: \(o.id), \(relative(Date().timeIntervalSince1970 - Double(o.received))) ago") }
                    print("inbox unread: \(s.inboxUnread); expired so far: \(s.expiredTotal); evicted: \(s.evictedTotal)")
                }
            }
        }

        struct Tail: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "tail", abstract: "Follow the change feed like tail -f: enqueued, sent, acknowledged, custody, delivered, expired, evicted, refused, waiting (for keys), gave-up, failed (a failure notice), stalled, storage (storage failed or works again), pact (mutual-aid pacts: obligations, reminders, escalations, records).")
            @OptionGroup var d: DirOption
            @Option(help: "Start after this sequence number (default: the last 20 events).") var since: Int64?
            @Flag(help: "One JSON event per line.") var json = false
            @Flag(help: "Print what is there and stop.") var noFollow = false

            func run() async throws {
                try await guarded {
                    let store = try d.dir().storeForReading()
                    var last = try self.since ?? max(0, store.lastEventSeq() - 20)
                    while true {
                        let events = try store.events(after: last, limit: 500)
                        for e in events {
                            last = e.seq
                            // Unbuffered, so a pipe sees each event as it happens.
                            if self.json {
                                FileHandle.standardOutput.write(try JSONEncoder().encode(e) + Data("\n".utf8))
                            } else {
                                FileHandle.standardOutput.write(Data((Terminal.safe(TailFormat.line(e)) + "\n").utf8))
                            }
                        }
                        if self.noFollow && events.count < 500 { return }
                        if events.isEmpty { try await Task.sleep(for: .milliseconds(300)) }
                    }
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Links (traffic, errors, warnings), neighbours, airtime, queue and quiet mode at a glance.",
            discussion: "Exit status 0 when a relay runs on the data directory, 3 when none does (as `systemctl status`).")
        @OptionGroup var d: DirOption
        @Flag(help: "JSON.") var json = false
        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let (id, name) = try dir.identity()
                let store = try dir.storeForReading()
                let s = try store.snapshot()
                // Running means holding the data directory's lock; the relay named its status file there.
                let relay = dir.runningRelay()
                var live: [String: Any]?
                if let relay, let data = FileManager.default.contents(atPath: relay.statusFile) {
                    do { live = try JSONSerialization.jsonObject(with: data) as? [String: Any] } catch {
                        throw RelayError.data("\(relay.statusFile) is damaged (\(error.localizedDescription)); it is rewritten within seconds, try again")
                    }
                }
                let running = relay != nil
                let readOnlyDisk = Disk.readOnly(dir.path) != nil
                // A running relay whose status file is on a disk that went read-only under it (no systemd runtime
                // directory) cannot say so itself: the file stays as it was. Said here instead, as the relay would.
                if var l = live, l["storage"] == nil, let relay, relay.statusFile.hasPrefix(dir.path + "/"), readOnlyDisk {
                    let updated = (l["updated"] as? Double) ?? Date().timeIntervalSince1970
                    l["storage"] = ["message": Runtime.storageSummary(Disk.readOnlyProblem(dir.path)),
                                    "operation": "write the status file (\(relay.statusFile) is on that disk: the rest of this status is from \(relative(Date().timeIntervalSince1970 - updated)) ago)",
                                    "error": "read-only file system", "since": updated, "failures": 1] as [String: Any]
                    live = l
                }
                // A relay that holds the data directory but has written no status yet: starting, or waiting for a
                // full or read-only disk (it writes its status once it can).
                let waitingFor: String? = !running || live != nil ? nil : dir.startWait()
                let stateWord = !running ? "not running" : live == nil ? (waitingFor.map { "waiting for \($0)" } ?? "starting") : "running"
                let mode = try dir.network().1 ? "open" : "sealed"
                let rotation = try dir.keyRotation()
                let keyNow = Date().timeIntervalSince1970
                let keys = rotation.keys(current: try dir.network().0, at: keyNow)
                let pending = rotation.next.flatMap { keyNow < rotation.switchAt ? ($0.fingerprint, Rekey.utc(rotation.switchAt)) : nil }
                if self.json {
                    var o: [String: Any] = ["node": id.nodeID.short.description, "running": running, "quiet": try store.isQuiet(), "queued": s.total.count,
                                            "mode": mode, "networkKey": keys.send.fingerprint, "networkKeysAccepted": keys.accept.map(\.fingerprint)]
                    if let pending { o["networkKeyNext"] = ["key": pending.0, "at": pending.1] }
                    if let pid = relay?.pid { o["pid"] = Int(pid) }
                    o["state"] = stateWord
                    if let live { o["live"] = live }
                    // Storage failing now (the running relay's view): transmission is paused until it works again.
                    if let storage = live?["storage"] as? [String: Any] { o["storage"] = storage }
                    o["waiting"] = s.waiting.map { w -> [String: Any] in
                        ["id": w.id.description, "kind": w.kind.description, "from": w.id.origin.description, "since": w.since, "reason": w.reason]
                    }
                    o["gaveUp"] = ["expired": s.expiredTotal, "evicted": s.evictedTotal, "refused": s.refusedTotal, "unreadable": s.unreadableTotal, "hopLimit": s.hopLimitTotal]
                    o["failureNotices"] = s.failedTotal
                    o["unsignedRefused"] = s.unsignedRefused
                    let pactLedger = try PactLedger(store: store)
                    o["pactRecordsLeftOut"] = pactLedger.ignored.filter { !pactLedger.waiting.contains($0.id) }.count
                    o["pacts"] = PactCLI.statusLines(try PactLedger(store: store), me: id.nodeID.short, names: try NodeNames(dir: dir, store: store),
                                                     now: Date().timeIntervalSince1970).json
                    o["inbox"] = ["bytes": s.inboxBytes, "limit": s.inboxLimit, "unread": s.inboxUnread, "refusedFull": s.inboxRefused,
                                  "readRemoved": s.inboxRemoved]
                    try printJSON(o)
                    if !running { throw ExitCodeError(code: 3) }
                    return
                }
                // The callsign is what the running relay uses (flag or relay.conf), from its status file.
                var callsign = ""
                if let c = (live?["info"] as? [String: String])?["callsign"] { callsign = c == "none" ? ", no callsign" : ", callsign \(c)" }
                let state = running ? "running\(relay?.pid.map { " (pid \($0))" } ?? "")\(waitingFor.map { ", waiting for \($0)" } ?? "")" : "not running"
                say("relay \(id.nodeID.short)\(name.map { " (\($0))" } ?? ""): \(state), \(mode) federation\(callsign)\(try store.isQuiet() ? ", QUIET MODE (transmitting nothing)" : "")")
                let replaced = keys.accept.filter { $0 != keys.send && $0 != rotation.next }.map(\.fingerprint)
                say("  network key \(keys.send.fingerprint)\(pending.map { "; switching to \($0.0) at \($0.1)" } ?? "")\(replaced.isEmpty ? "" : "; still accepting replaced key \(replaced.joined(separator: ", "))")")
                if let live {
                    if let st = live["storage"] as? [String: Any], let message = st["message"] as? String {
                        let since = relative(Date().timeIntervalSince1970 - ((st["since"] as? Double) ?? 0))
                        say("  WARNING: \(message) (for \(since): \((st["failures"] as? Int) ?? 0) failed operations, last: \(Terminal.safe((st["operation"] as? String) ?? "?")): \(Terminal.safe((st["error"] as? String) ?? "?")))")
                    }
                    for l in (live["links"] as? [[String: Any]]) ?? [] {
                        let used = (l["airtimeUsed"] as? Double).map { String(format: "%.0f s", $0) } ?? "-"
                        let budget = (l["airtimeBudget"] as? Double).map { String(format: " of %.0f s/h", $0) } ?? " (no limit)"
                        say("  link \((l["name"] as? String) ?? "?"): \((l["up"] as? Bool) == true ? "up" : "DOWN"), airtime \(used)\(budget)")
                        let c = (l["counters"] as? [String: Any]) ?? [:]
                        func n(_ d: [String: Any], _ k: String) -> Int { (d[k] as? Int) ?? 0 }
                        say("    in \(n(c, "framesIn")) frames (\(bytes(n(c, "bytesIn")))), out \(n(c, "framesOut")) frames (\(bytes(n(c, "bytesOut")))), on air \(String(format: "%.1f s", (l["airtimeSeconds"] as? Double) ?? 0))")
                        say("    errors: \(n(c, "crcErrors")) CRC, \(n(c, "framingErrors")) framing; refused: \(n(l, "authFailures")) failed authentication, \(n(l, "unknownSender")) unknown sender, \(n(l, "duplicates")) duplicates, \(n(l, "refused")) other; \(n(l, "dropped")) not sent")
                        if let by = l["refusedBy"] as? [String: Int], !by.isEmpty {
                            say("    other refusals: " + by.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
                        }
                        if n(c, "connectionsRefused") + n(c, "connectionsTimedOut") > 0 {
                            say("    connections: \(n(c, "connectionsRefused")) refused (peer limit reached), \(n(c, "connectionsTimedOut")) closed for silence")
                        }
                        for w in (l["warnings"] as? [String]) ?? [] { say("    WARNING: \(w)") }
                        if let c = l["connection"] as? [String: Any] { say("    \(ConnectionFormat.line(c, now: Date().timeIntervalSince1970))") }
                    }
                    let now = Date().timeIntervalSince1970
                    for n in (live["neighbours"] as? [[String: Any]]) ?? [] {
                        // The last packet's signal, when the modem reports it (an RNode): SNR then RSSI.
                        let signal = [(n["snr"] as? Double).map { String(format: "SNR %.1f dB", $0) },
                                      (n["rssi"] as? Double).map { String(format: "RSSI %.0f dBm", $0) }].compactMap { $0 }
                        say("  neighbour \((n["node"] as? String) ?? "?") \(Terminal.safe((n["name"] as? String) ?? "")) on \((n["link"] as? String) ?? "?"), heard \(relative(now - ((n["lastHeard"] as? Double) ?? now))) ago" + (signal.isEmpty ? "" : ", " + signal.joined(separator: ", ")))
                    }
                    if let h = live["hellos"] as? [String: Any], let a = h["answered"] as? Int, let m = h["limited"] as? Int, a + m > 0 {
                        say("  hellos: \(a) answered with an announce, \(m) not answered at once (at most one per neighbour in 2 min, 3 then 1 a minute per link)")
                    }
                } else if running {
                    // A relay that started on a full or read-only disk waits before it writes any status.
                    say(waitingFor == nil ? "  (starting: no status yet)" : readOnlyDisk
                        ? "  (starting: waiting for the disk to be writable: \(Disk.readOnlyProblem(dir.path)); queued messages are safe; it starts by itself once it can write)"
                        : "  (starting: waiting for space on the disk, \(Disk.freeSpace(dir.path)); it starts by itself once space is freed)")
                }
                say("  queue: \(s.total.count) bundles (\(PriorityClass.allCases.map { "\($0) \(s.byClass[$0]?.count ?? 0)" }.joined(separator: ", ")))\(s.identities > 0 ? ", \(s.identities) of them nodes' keys" : "")")
                // The quota the running relay uses, and relay.conf's when it differs (an edit not yet reloaded).
                if let info = live?["info"] as? [String: String], let inForce = info["quota"].flatMap(Int.init) {
                    let file = dir.config().quota ?? Store.Configuration().quotaBytes
                    say("  quota: \(bytes(s.total.bytes)) of \(megabytes(inForce)) in force" + (file == inForce ? "" :
                        "; relay.conf says \(megabytes(file)): reload it (systemctl reload relay, or kill -HUP \(relay?.pid.map(String.init) ?? "PID"))"))
                }
                if let o = s.oldest { say("  oldest: \(o.id), \(relative(Date().timeIntervalSince1970 - Double(o.received))) ago") }
                let now = Date().timeIntervalSince1970
                // Kept for a federation dictionary this relay lacks (SPEC 7.6), or for their origin's keys (9.1).
                let forDictionary = s.waiting.filter { $0.reason.hasPrefix("compressed with dictionary") }
                let forKeys = s.waiting.filter { !$0.reason.hasPrefix("compressed with dictionary") }
                if !forKeys.isEmpty {
                    say("  waiting for their origin's keys (kept unread, keys asked for): \(forKeys.count)")
                    for w in forKeys.prefix(10) {
                        say("    \(w.id) \(w.kind) from \(w.id.origin), \(relative(now - Double(w.since))) ago")
                    }
                }
                if !forDictionary.isEmpty {
                    say("  waiting for a dictionary (kept unread, asked the neighbours for it): \(forDictionary.count)")
                    for w in forDictionary.prefix(10) {
                        say("    \(w.id) \(w.kind) from \(w.id.origin), \(relative(now - Double(w.since))) ago: \(w.reason)")
                    }
                }
                say("  given up: \(s.expiredTotal) expired, \(s.evictedTotal) evicted, \(s.refusedTotal) refused (\(s.unsignedRefused) unsigned), \(s.unreadableTotal) unreadable, \(s.hopLimitTotal) out of hops; failure notices about ours: \(s.failedTotal) (`relay queue tail` says why)")
                let pacts = PactCLI.statusLines(try PactLedger(store: store), me: id.nodeID.short, names: try NodeNames(dir: dir, store: store), now: Date().timeIntervalSince1970)
                for l in pacts.lines { say(l) }
                let inboxFull = s.inboxBytes * 10 >= s.inboxLimit * 9
                say("  inbox: \(s.inboxUnread) unread, \(bytes(s.inboxBytes)) of \(bytes(s.inboxLimit)) (inbox-mb)\(inboxFull ? " - FULL: new messages are refused; read them (`relay inbox --mark-read`) or raise inbox-mb" : ""); refused for a full inbox: \(s.inboxRefused), read messages removed to make room: \(s.inboxRemoved)")
                if !running { throw ExitCodeError(code: 3) }
            }
        }
    }

    struct Quiet: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Radio silence: on, the relay receives and stores but transmits nothing; off, it resumes.")
        @OptionGroup var d: DirOption
        @Argument(help: "on or off (relay quiet on | relay quiet off)") var state: String
        func run() async throws {
            try await guarded {
                guard self.state == "on" || self.state == "off" else { throw RelayError.usage("say `relay quiet on` or `relay quiet off`") }
                try d.dir().store().setQuiet(self.state == "on")
                print("quiet mode \(self.state)")
            }
        }
    }

    struct Ports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serial ports with their USB identity and a guess of the modem.")
        @Flag(help: "JSON.") var json = false
        func run() async throws {
            let ports = SerialPorts.list()
            if self.json {
                for p in ports { print(String(decoding: try JSONEncoder().encode(p), as: UTF8.self)) }
                return
            }
            if ports.isEmpty { print("no serial ports found (plug the modem in; `dmesg -w` shows what the kernel sees)") }
            for p in ports {
                print("\(p.name)  \(p.usbID ?? "-")  \(p.product ?? p.description)  \(p.guess.map { "-> \($0)" } ?? "")")
            }
        }
    }
}

extension LinkSpec {
    /// KISS links put a callsign in every frame (AX.25 UI); no other link type can carry one.
    var carriesCallsign: Bool {
        switch self {
        case .kiss, .kissTCP: return true
        default: return false
        }
    }

    /// A port or TNC on this box, which must be there when the relay starts (unless --wait-for-links).
    var isLocalDevice: Bool {
        switch self {
        case .serial, .kiss, .kissTCP, .rnode, .meshtastic, .meshtasticTCP: return true
        case .tcp, .tcpListen, .mqtt: return false
        }
    }
}

extension Relay.Run {
    /// Amateur-band rules, checked before anything is opened (exit 64, one line): a KISS link transmits on amateur
    /// bands unless told otherwise, and those need a callsign in every frame and no encryption; a callsign is only
    /// carried by KISS links. Returns the station to put in AX.25 frames.
    func amateurCheck(_ specs: [LinkSpec], config cfg: DataDir.Config, open: Bool) throws -> AX25.Station? {
        let notAmateur = self.notAmateur || cfg.notAmateur
        // A rule broken by what relay.conf says is relay.conf's error (exit 78, file and line); by a flag, 64.
        let linksFromConf = self.links.isEmpty
        guard let text = self.callsign ?? cfg.callsign else {
            if let i = specs.firstIndex(where: \.carriesCallsign), !notAmateur {
                let m = "\(specs[i]): a KISS TNC transmits on amateur bands, which need your callsign in every frame: give --callsign CALL[-SSID] (or `callsign =` in relay.conf), or --i-know-this-is-not-amateur (`not-amateur = yes`) for a KISS modem outside them"
                if linksFromConf, i < cfg.linkOrigins.count { throw RelayError.config("\(cfg.linkOrigins[i]): \(m)") }
                throw RelayError.usage(m)
            }
            return nil
        }
        let fromConf = self.callsign == nil
        func refuse(_ m: String) -> RelayError {
            fromConf ? .config("\(cfg.origin["callsign"] ?? "relay.conf"): \(m)") : .usage(m)
        }
        let given = fromConf ? "callsign = \(text)" : "--callsign \(text)"
        guard let station = AX25.Station(text) else { throw refuse("bad callsign '\(text)': expected CALL or CALL-SSID (SSID 0-15)") }
        if let other = specs.first(where: { !$0.carriesCallsign && $0.isLocalDevice }) {
            throw refuse("\(given): \(other) cannot carry a callsign, only kiss: and kiss-tcp: links can; run that link from a relay without one")
        }
        guard specs.contains(where: \.carriesCallsign) else {
            throw refuse("\(given): \(specs.map(\.description).joined(separator: ", ")) cannot carry a callsign, only kiss: and kiss-tcp: links can; leave it out")
        }
        if !open && !notAmateur {
            throw refuse("\(given) means amateur bands, where encryption is not allowed, but this relay's federation is sealed (encrypted): use one made with `relay init --open`, or add --i-know-this-is-not-amateur (`not-amateur = yes`)")
        }
        return station
    }

    /// RNode radio settings: flags first, then relay.conf, then the defaults; checked against what LoRa allows.
    func radio(_ cfg: DataDir.Config) throws -> RNode.Radio {
        var r = RNode.Radio()
        r.frequency = self.frequency ?? cfg.rnodeFrequency ?? r.frequency
        r.bandwidth = self.bandwidth ?? cfg.rnodeBandwidth ?? r.bandwidth
        r.spreadingFactor = self.spreadingFactor ?? cfg.rnodeSpreadingFactor ?? r.spreadingFactor
        r.codingRate = self.codingRate ?? cfg.rnodeCodingRate ?? r.codingRate
        r.txPower = self.txPower ?? cfg.rnodeTxPower ?? r.txPower
        guard (137_000_000...1_020_000_000).contains(r.frequency) || (2_400_000_000...2_500_000_000).contains(r.frequency) else {
            throw RelayError.usage("frequency \(r.frequency) Hz is outside what RNode radios tune (137-1020 MHz, 2.4-2.5 GHz); give Hz, e.g. 869525000")
        }
        let bandwidths = DataDir.loraBandwidths
        guard bandwidths.contains(r.bandwidth) else {
            throw RelayError.usage("bandwidth \(r.bandwidth) Hz is not a LoRa bandwidth; use one of \(bandwidths.prefix(10).map(String.init).joined(separator: ", ")) (Hz)")
        }
        guard (5...12).contains(r.spreadingFactor) else { throw RelayError.usage("spreading factor \(r.spreadingFactor): use 5 to 12") }
        guard (5...8).contains(r.codingRate) else { throw RelayError.usage("coding rate \(r.codingRate): use 5 to 8 (4/5 to 4/8)") }
        guard r.txPower <= 22 else { throw RelayError.usage("transmit power \(r.txPower) dBm: RNode radios take 0 to 22 dBm (check your band's legal limit)") }
        return r
    }
}

/// The public keys of a destination node, if this relay knows them (heard, or on the trust list) and they are
/// unambiguous.
func recipientKeys(_ to: ShortID, store: Store) throws -> NodePublicKeys? {
    let known = try store.peers().filter { $0.nodeID.short == to }
    return known.count == 1 ? known[0].keys : nil
}

/// A wall-clock time in UTC, as HH:MM (with the date when it is not today).
func clock(_ unix: Double) -> String {
    let f = DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = Calendar.current.isDate(Date(timeIntervalSince1970: unix), inSameDayAs: Date()) ? "HH:mm 'UTC'" : "yyyy-MM-dd HH:mm 'UTC'"
    return f.string(from: Date(timeIntervalSince1970: unix))
}

func relative(_ seconds: Double) -> String {
    let s = max(0, seconds)
    if s < 60 { return "\(Int(s)) s" }
    if s < 3_600 { return "\(Int(s / 60)) min" }
    if s < 86_400 { return String(format: "%.1f h", s / 3_600) }
    return String(format: "%.1f d", s / 86_400)
}

func bytes(_ n: Int) -> String {
    if n < 1_024 { return "\(n) B" }
    if n < 1_048_576 { return String(format: "%.1f KB", Double(n) / 1_024) }
    return String(format: "%.1f MB", Double(n) / 1_048_576)
}

/// A quota or bound as relay.conf gives it: "4 MB" when whole megabytes, else bytes.
func megabytes(_ n: Int) -> String {
    n % 1_048_576 == 0 ? "\(n / 1_048_576) MB" : "\(n) bytes"
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: " ", count: max(0, n - self.count)) + self }
}
