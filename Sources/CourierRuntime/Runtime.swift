import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Logging
import Synchronization

/// Drives the engine with real links and the real clock: one loop owns the node; link events, timer wake-ups and
/// the store's change feed (for bundles that `relay send` stored from another process) come to it in order.
public final class Runtime: @unchecked Sendable {
    enum Input: Sendable {
        case link(String, LinkEvent)
        case wake
        case reload
        case poll
        case stop
    }

    public let node: Node
    /// The store the engine was given (the runtime also follows its change feed, records storage health and pacts).
    public let store: Store
    public let links: [String: any Link]
    let logger: Logger
    let statusPath: String?
    let inputs: AsyncStream<Input>
    let continuation: AsyncStream<Input>.Continuation
    var senders: [String: AsyncStream<[UInt8]>.Continuation] = [:]
    var lastEvent: Int64 = 0
    /// The last poll read a command's change (a cancel, new local or imported bundles): the status file is written
    /// at once, so `relay status` shows the relay took it up.
    var readCommands = false
    /// Set by `stop()` from any thread (the signal thread); read by the loop.
    let stopped = Mutex(false)
    var linkUp: [String: Bool] = [:]
    var startedAt = Date()
    var trustVersion: Int64 = 0
    let wakeAt = Mutex<Double>(0)
    /// Called on the loop (owning the node) after SIGHUP (`reload()`) and when another process edits the trust
    /// list: re-read the configuration and apply what can change without a restart. (relay.conf itself is re-read
    /// on SIGHUP only, as daemons do: a half-saved edit is never applied.)
    public var onReload: (@Sendable (Node) -> Void)?
    /// Written as `info` into the status file for `relay status` (the relay puts its callsign and open/sealed mode).
    public var statusInfo: [String: String] = [:]
    /// Per link, what the engine refused and what the health check says (owned by the loop).
    var health: [String: LinkHealth] = [:]
    /// Refusal log lines, aggregated per reason per minute (owned by the loop).
    var refusals = RefusalLog()
    /// Storage failing now (owned by the loop): shown in `relay status`; transmission is paused meanwhile.
    var storage: StorageFailure?
    /// Per link, packets not sent (link down, write failed, send queue full) and seconds on air; written by the
    /// sending tasks.
    let traffic = Mutex<[String: (dropped: Int, airtime: Double)]>([:])
    /// The last status file written: its content (without the time) and what must be written at once when it changes.
    var lastStatus: (full: Data, key: Data, at: Double)?
    /// A status whose only changes are counters and times is written at most this often (the file is read by
    /// `relay status`; a flash card should not be written every second).
    public var statusCountersInterval: Double = 5

    public init(node: Node, store: Store, links: [any Link], statusPath: String? = nil, logger: Logger) {
        self.node = node
        self.store = store
        self.links = Dictionary(uniqueKeysWithValues: links.map { ($0.name, $0) })
        self.logger = logger
        self.statusPath = statusPath
        (self.inputs, self.continuation) = AsyncStream.makeStream(of: Input.self)
        // The change feed is read on from where the engine's index of held bundles ends (`Node.feedPosition`), not
        // from the feed's end when the runtime runs: a bundle `relay send` stored after the engine started is in the
        // feed after it, and adopted at the first poll.
        self.lastEvent = node.feedPosition
    }

    /// Ends `run()` after the input it is handling, from any thread; before `run()`, makes it return at once.
    public func stop() {
        self.stopped.withLock { $0 = true }
        self.continuation.yield(.stop)
        self.continuation.finish()
    }

    /// Asks the loop to call `onReload` (the relay calls this on SIGHUP).
    public func reload() { self.continuation.yield(.reload) }

    /// Asks the loop to read the store's change feed now (a bundle was just stored by another `Node` on the same
    /// database), instead of within the next second.
    public func poll() { self.continuation.yield(.poll) }

    /// Runs until `stop()`.
    public func run() async {
        if self.stopped.withLock({ $0 }) { return }
        let started = Date().timeIntervalSince1970
        do { self.trustVersion = try self.store.trustVersion() } catch {
            self.storageFailed("read the trust list's version", link: nil, error: error, now: started)
        }
        for (name, link) in self.links {
            let c = self.continuation
            Task { for await e in link.events { c.yield(.link(name, e)) } }
            let (stream, sc) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(1_024))
            self.senders[name] = sc
            let air = link.properties
            Task {
                for await packet in stream {
                    do {
                        try await link.send(packet)
                        self.traffic.withLock { $0[name, default: (0, 0)].airtime += air.airtime(bytes: packet.count) }
                    } catch {
                        self.traffic.withLock { $0[name, default: (0, 0)].dropped += 1 }
                        self.logger.debug("packet not sent; it stays queued", metadata: ["link": "\(name)", "error": "\(error)"])
                    }
                }
            }
            let keys = self.node.networkKeyFingerprints
            link.networkKeysChanged(sending: keys.sending, accepting: keys.accepting)
            link.start()
        }
        // A clock: wake at least every second (the change feed, quiet mode) and when the engine asks.
        let c = self.continuation
        let ticker = Task { [self] in
            while !Task.isCancelled {
                // At the engine's next wake-up (an ack due in 200 ms, a fragment's turn), at most 250 ms apart.
                let wait = min(0.25, max(0.005, self.wakeAt.withLock { $0 } - Date().timeIntervalSince1970))
                // Cancelled (the loop ended): no more wake-ups.
                do { try await Task.sleep(for: .milliseconds(Int(wait * 1_000))) } catch { break }
                c.yield(.wake)
            }
        }
        var lastPoll = Date.distantPast
        for await input in self.inputs {
            if self.stopped.withLock({ $0 }) { break }
            let now = Date().timeIntervalSince1970
            var out: [NodeOutput] = []
            var receivedOn: String?
            switch input {
            case .link(let name, .frame(let bytes, let signal)):
                out = self.node.receive(bytes, on: name, now: now, snr: signal?.snr, rssi: signal?.rssi)
                receivedOn = name
            case .link(let name, .up):
                self.linkUp[name] = true
                out = self.node.linkUp(name, now: now)
            case .link(let name, .down(let why)):
                self.linkUp[name] = false
                self.node.linkDown(name, now: now)
                self.logger.warning("link down", metadata: ["link": "\(name)", "reason": "\(why)"])
            case .wake:
                self.probeStorage(now: now)
                out = self.node.tick(now: now)
            case .reload:
                self.onReload?(self.node)
            case .poll:
                lastPoll = .distantPast
            case .stop:
                break
            }
            // Once a second, and at once when a link or a neighbour changes, so `relay status` is current.
            let changed: Bool
            switch input {
            case .link(_, .up), .link(_, .down): changed = true
            default: changed = out.contains { if case .event(.neighbourHeard) = $0 { return true } else { return false } }
            }
            self.perform(out, receivedOn: receivedOn)
            if changed || Date().timeIntervalSince(lastPoll) >= 1 {
                lastPoll = Date()
                let polled = self.pollStore(now: now)
                self.perform(polled, receivedOn: nil)
                self.checkHealth(now: now)
                self.checkPacts(now: now)
                self.logRefusalSummaries(now: now)
                self.writeStatus(now: now, force: changed || self.readCommands)
                self.readCommands = false
            }
            let next = self.node.nextWakeup(now: Date().timeIntervalSince1970)
            self.wakeAt.withLock { $0 = next }
        }
        ticker.cancel()
        // Receipts still being aggregated are stored now, to go out at the next start.
        self.perform(self.node.stopping(now: Date().timeIntervalSince1970), receivedOn: nil)
        for l in self.links.values { l.stop() }
        for s in self.senders.values { s.finish() }
    }

    /// `receivedOn`: the link whose packet these outputs answer (refusals are counted against it).
    func perform(_ outputs: [NodeOutput], receivedOn: String?) {
        let now = Date().timeIntervalSince1970
        for o in outputs {
            switch o {
            case .send(let link, let packet, _):
                if case .dropped = self.senders[link]?.yield(packet) {
                    self.traffic.withLock { $0[link, default: (0, 0)].dropped += 1 }
                    self.logger.debug("packet not sent: the link's send queue is full; it stays queued", metadata: ["link": "\(link)"])
                }
            case .delivered(let m):
                self.logger.notice("delivered", metadata: ["bundle.id": "\(m.id)", "kind": "\(m.kind)", "from": "\(m.id.origin)"])
            case .event(let e):
                switch e {
                case .neighbourHeard(let id, let name, let link):
                    self.logger.info("neighbour heard", metadata: ["node": "\(id.short)", "name": "\(name ?? "-")", "link": "\(link)"])
                    self.health[link, default: LinkHealth()].neighboursHeard += 1
                case .rejected(let why):
                    // Counted always; junk (what names no bundle) logged per reason at most about once a minute (the
                    // first in full, then a count), a bundle refused or not stored each time.
                    let reason = RefusalLog.reason(ofRejection: why)
                    let full: Bool
                    if RefusalLog.isAggregated(reason) {
                        full = self.refusals.note(reason, now: now)
                    } else {
                        self.refusals.count(reason)
                        full = true
                    }
                    if let l = receivedOn {
                        self.health[l, default: LinkHealth()].refused += 1
                        self.health[l, default: LinkHealth()].refusedBy[reason, default: 0] += 1
                        if full { self.logger.warning("rejected", metadata: ["link": "\(l)", "reason": "\(reason)", "why": "\(why)"]) }
                    } else if full {
                        self.logger.warning("rejected", metadata: ["reason": "\(reason)", "why": "\(why)"])
                    }
                case .packetRefused(let link, let reason, let detail):
                    switch reason {
                    case .authentication: self.health[link, default: LinkHealth()].authFailures += 1
                    case .unknownSender: self.health[link, default: LinkHealth()].unknownSender += 1
                    case .replay:
                        self.health[link, default: LinkHealth()].duplicates += 1
                        self.health[link, default: LinkHealth()].replays += 1
                    }
                    if self.refusals.note("packet " + reason.rawValue, now: now) {
                        self.logger.debug("refused packet", metadata: ["link": "\(link)", "reason": "\(reason.rawValue)", "detail": "\(detail)"])
                    }
                case .duplicate(let id):
                    if let l = receivedOn { self.health[l, default: LinkHealth()].duplicates += 1 }
                    // Each one, with its id (SPEC 11.5: a copy names its bundle, and comes at most as often as real
                    // traffic does; a replayed packet is refused before): what became of every copy a noisy line
                    // brought can be read in the log.
                    self.refusals.count("duplicate bundle")
                    self.logger.debug("refused bundle", metadata: ["link": "\(receivedOn ?? "-")", "reason": "duplicate", "bundle.id": "\(id)"])
                case .custodyReleased(let id, let to):
                    self.logger.info("custody moved on", metadata: ["bundle.id": "\(id)", "to": "\(to)"])
                case .receipt(let id, let by): self.logger.info("receipt", metadata: ["bundle.id": "\(id)", "by": "\(by)"])
                case .waiting(let id, let why):
                    self.logger.warning("cannot read it yet; kept", metadata: ["bundle.id": "\(id)", "why": "\(why)"])
                case .gaveUp(let id, let why):
                    self.logger.warning("gave up on a bundle", metadata: ["bundle.id": "\(id)", "why": "\(why)"])
                case .expired(let id): self.logger.info("bundle expired", metadata: ["bundle.id": "\(id)"])
                case .failureNotice(let id, let reason, let by):
                    self.logger.warning("not delivered: a relay gave up on our bundle", metadata: ["bundle.id": "\(id)", "reason": "\(reason)", "by": "\(by)"])
                case .networkKeys(let sending, let accepting):
                    for l in self.links.values { l.networkKeysChanged(sending: sending, accepting: accepting) }
                    self.logger.notice("network keys: sending under \(sending), accepting \(accepting.joined(separator: ", "))")
                case .dictionary(let what):
                    self.logger.notice("\(what)")
                case .keysLearnt(let id, let name):
                    self.logger.info("keys learnt", metadata: ["node": "\(id.short)", "name": "\(name ?? "-")"])
                case .stalled(let id, let to):
                    self.logger.warning("next hop stopped answering; bundle kept, will try again", metadata: ["bundle.id": "\(id)", "to": "\(to)"])
                case .storageFailed(let operation, let link, let error):
                    self.storageFailed(operation, link: link, error: error, now: now)
                default: break
                }
            }
        }
    }

    /// Once a minute per reason still coming: how many refusals were counted and not logged (SPEC 11.5). At the level
    /// their first one was logged at (engine refusals: warning; whole packets: debug). Duplicates are logged each.
    func logRefusalSummaries(now: Double) {
        for (reason, more) in self.refusals.due(now: now) {
            let line: Logger.Message = "\(more) more \(reason) refusals in the last minute"
            if reason.hasPrefix("packet ") {
                self.logger.debug(line)
            } else {
                self.logger.warning(line, metadata: ["total": "\(self.refusals.counts[reason] ?? 0)"])
            }
        }
    }

    /// Bundles another process stored locally; quiet mode switched from the command line.
    func pollStore(now: Double) -> [NodeOutput] {
        var out: [NodeOutput] = []
        // What cannot be read is reported (storage failed) and read again at the next poll.
        do {
            let quiet = try self.store.isQuiet()
            if quiet != self.node.isQuiet {
                self.logger.notice(quiet ? "quiet mode on: receiving only" : "quiet mode off: transmitting again")
                out += try self.node.setQuiet(quiet, now: now)
            }
        } catch {
            self.storageFailed("read or apply quiet mode", link: nil, error: error, now: now)
        }
        do {
            let v = try self.store.trustVersion()
            if v != self.trustVersion {
                self.trustVersion = v
                self.logger.notice("trust list changed: applying it")
                self.onReload?(self.node)
            }
        } catch {
            self.storageFailed("read the trust list's version", link: nil, error: error, now: now)
        }
        // All new local and imported bundles at once, so the first packet can carry several.
        var adopt: [(id: BundleID, imported: Bool)] = []
        while true {
            let events: [StoreEvent]
            do { events = try self.store.events(after: self.lastEvent, limit: 500) } catch {
                self.storageFailed("read the change feed (bundles `relay send` stored)", link: nil, error: error, now: now)
                break
            }
            if events.isEmpty { break }
            for e in events {
                self.lastEvent = e.seq
                if e.type == .removed, e.detail == Store.cancelledReason, let s = e.bundle, let id = BundleID(s) {
                    self.node.cancelled(id)
                    self.readCommands = true
                    continue
                }
                guard e.type == .enqueued, let s = e.bundle, let id = BundleID(s) else { continue }
                if e.local {
                    adopt.append((id, false))
                } else if e.neighbour == Node.importedFrom {
                    adopt.append((id, true))
                }
            }
        }
        if !adopt.isEmpty {
            out += self.node.adopt(adopt, now: now)
            self.readCommands = true
        }
        return out
    }

    /// Looks at each link's last minute: mostly damaged frames mean a wrong baud rate or a bad cable; mostly
    /// packets failing authentication mean another federation or network key. Warns once when a condition starts
    /// (and says when it ends); `relay status` shows it meanwhile.
    func checkHealth(now: Double) {
        for (name, link) in self.links {
            let c = link.counters
            var h = self.health[name] ?? LinkHealth()
            h.window.append(.init(at: now, damaged: c.crcErrors + c.framingErrors, good: c.framesIn, auth: h.authFailures,
                                  unknown: h.unknownSender))
            h.window.removeAll { now - $0.at > LinkHealth.windowSeconds }
            guard let first = h.window.first, let last = h.window.last else { continue }
            let damaged = last.damaged - first.damaged
            let good = last.good - first.good
            let auth = last.auth - first.auth
            let unknown = last.unknown - first.unknown
            let minute = "in the last \(Int(LinkHealth.windowSeconds)) s"
            // Damage: at least 5 frames and a quarter of what arrived; cleared below one in ten.
            if damaged >= 5 && damaged * 4 >= damaged + good {
                if h.damageWarning == nil {
                    let w = "\(damaged) of \(damaged + good) frames damaged \(minute) (\(c.crcErrors) CRC, \(c.framingErrors) framing errors so far): wrong baud or bad cable? Both ends need the same baud rate; check the cable, connectors and radio levels"
                    self.logger.warning("link \(name): \(w)")
                    h.damageWarning = w
                }
            } else if h.damageWarning != nil && (damaged < 2 || damaged * 10 < damaged + good) {
                h.damageWarning = nil
                self.logger.notice("link \(name): \(good > 0 ? "frames arrive intact again" : "no damaged frames any more")")
            }
            // Another federation: its announces fail authentication and its other packets come from senders this
            // relay never learns. (Unknown senders alone are normal for a moment: keys come with announces.)
            let foreign = auth + unknown
            // A relay that joined with another federation's code hears a few packets a quarter of an hour (its
            // neighbours' announces), never five a minute: no neighbour heard on the link since the start and every
            // packet failing authentication says the same.
            let stranger = h.neighboursHeard == 0 && h.authFailures >= LinkHealth.strangerFailures
            if (foreign >= 5 && auth >= 1 && foreign * 2 >= good) || stranger {
                if h.authWarning == nil {
                    let w = foreign >= 5
                        ? "\(foreign) of \(good) packets refused \(minute) (\(auth) failed authentication, \(unknown) from unknown senders): another federation on this channel, or a different network key? Compare the fingerprints `relay init` printed on both relays"
                        : "\(h.authFailures) packets failed authentication since the start and no neighbour was heard on this link: another federation on this channel, or a different network key (joined with another federation's code)? Compare the fingerprints `relay init` printed on both relays"
                    self.logger.warning("link \(name): \(w)")
                    h.authWarning = w
                }
            } else if h.authWarning != nil && (foreign < 2 || foreign * 10 < good) {
                h.authWarning = nil
                self.logger.notice("link \(name): packets authenticate again")
            }
            self.health[name] = h
        }
    }

    /// A small JSON file `relay status` reads: links, neighbours, airtime, quiet mode.
    /// Written when something in it changed: at once for links, neighbours, quiet mode and warnings, at most every
    /// `statusCountersInterval` seconds when only counters and times did (or always with `force`).
    func writeStatus(now: Double, force: Bool = false) {
        guard let path = self.statusPath else { return }
        struct Status: Codable {
            struct L: Codable {
                let name: String; let up: Bool; let mtu: Int; let airtimeUsed: Double?; let airtimeBudget: Double?
                /// Frames and bytes each way, CRC and framing errors (the link's own counts).
                let counters: LinkCounters
                /// Packets refused by the engine: failed authentication, from a sender not known yet, and copies
                /// already received (packets replayed, bundles already held); other refusals (untrusted origin...).
                let authFailures: Int; let unknownSender: Int; let duplicates: Int; let refused: Int
                /// Of `duplicates`, whole packets whose counter was already received (replays, SPEC 4.8).
                let replays: Int
                /// The other refusals (`refused`) by reason (untrusted origin, bad fragment, undecodable bundle...).
                let refusedBy: [String: Int]
                /// Packets not sent (they stay queued) and seconds on air since the start.
                let dropped: Int; let airtimeSeconds: Double
                let warnings: [String]
                /// A link through a server (an MQTT broker): connected, or (re)connecting since when, last error.
                let connection: LinkConnection?
            }
            /// `rssi` (dBm) and `snr` (dB): the last packet's, when the link's modem reports them (an RNode).
            struct N: Codable { let node: String; let name: String?; let link: String; let lastHeard: Double; let rssi: Double?; let snr: Double? }
            var pid: Int32
            var updated: Double
            var started: Double
            var quiet: Bool
            var info: [String: String]
            var links: [L]
            var neighbours: [N]
            /// Next hop of a directed bundle, per destination (`relay queue list`).
            var routes: [R]
            struct R: Codable { let to: String; let via: String; let link: String }
            /// Announces sent in answer to hellos, and hellos not answered at once (rate limits, SPEC 9 rule 7).
            var hellos: H
            struct H: Codable { let answered: Int; let limited: Int }
            /// Storage failing now (nil when it works): transmission is paused meanwhile.
            var storage: S?
            struct S: Codable { let message: String; let operation: String; let link: String?; let error: String; let since: Double; let failures: Int }
        }
        struct Key: Codable { let quiet: Bool; let info: [String: String]; let links: [String]; let neighbours: [String]; let routes: [String]; let storage: String? }
        let air = Dictionary(uniqueKeysWithValues: self.node.airtime().map { ($0.link, $0) })
        let traffic = self.traffic.withLock { $0 }
        var s = Status(
            pid: getpid(), updated: 0, started: self.startedAt.timeIntervalSince1970, quiet: self.node.isQuiet, info: self.statusInfo,
            links: self.links.values.sorted { $0.name < $1.name }.map { l in
                let a = air[l.name]
                let h = self.health[l.name] ?? LinkHealth()
                let t = traffic[l.name] ?? (0, 0)
                return .init(name: l.name, up: self.linkUp[l.name] ?? false, mtu: l.properties.mtu,
                             airtimeUsed: a?.budget.map { b in max(0, b - (a?.tokens ?? b)) }, airtimeBudget: a?.budget,
                             counters: l.counters, authFailures: h.authFailures, unknownSender: h.unknownSender,
                             duplicates: h.duplicates, refused: h.refused, replays: h.replays, refusedBy: h.refusedBy, dropped: t.dropped, airtimeSeconds: t.airtime,
                             warnings: [h.damageWarning, h.authWarning].compactMap { $0 }, connection: l.connection)
            },
            neighbours: self.node.neighbourList(now: now).map {
                .init(node: $0.id.short.description, name: $0.name, link: $0.link, lastHeard: $0.lastHeard, rssi: $0.rssi, snr: $0.snr)
            },
            routes: self.node.nextHops(now: now).map { .init(to: $0.to.description, via: $0.via.description, link: $0.link) },
            hellos: .init(answered: self.node.stats.helloAnswers, limited: self.node.stats.hellosLimited),
            storage: self.storage.map { .init(message: $0.summary, operation: $0.operation, link: $0.link, error: "\($0.error)", since: $0.since, failures: $0.count) })
        let key = Key(quiet: s.quiet, info: s.info,
                      links: s.links.map { "\($0.name) \($0.up) \($0.warnings) \($0.connection.map { "\($0.state) \($0.lastError ?? "")" } ?? "")" },
                      neighbours: s.neighbours.map { "\($0.node) \($0.name ?? "") \($0.link)" },
                      routes: s.routes.map { "\($0.to) \($0.via) \($0.link)" }, storage: s.storage?.message)
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        do {
            let full = try enc.encode(s)
            let k = try enc.encode(key)
            if let last = self.lastStatus, !force {
                if last.full == full { return }
                if last.key == k && now - last.at < self.statusCountersInterval { return }
            }
            s.updated = now
            let data = try enc.encode(s)
            do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                // A full disk has no room for the copy an atomic write makes: the file is rewritten in place, in the
                // space it had (so `relay status` can say the disk is full). A reader may see it half written for
                // a moment and is told to try again.
                guard let h = FileHandle(forWritingAtPath: path) else { throw error }
                defer {
                    do { try h.close() } catch { self.logger.debug("status file not closed cleanly", metadata: ["path": "\(path)", "error": "\(error)"]) }
                }
                try h.truncate(atOffset: 0)
                try h.write(contentsOf: data)
            }
            self.lastStatus = (full, k, now)
        } catch {
            // Once per failure kind would be nicer; a status file that cannot be written is rare (a full disk).
            if self.lastStatus?.at != -1 {
                self.logger.warning("cannot write the status file `relay status` reads", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            self.lastStatus = (Data(), Data(), -1)
        }
    }
}

/// What the engine refused on one link, and the warnings its last minute raised.
struct LinkHealth {
    struct Sample { let at: Double; let damaged: Int; let good: Int; let auth: Int; let unknown: Int }
    static let windowSeconds = 60.0
    /// Packets failing authentication, with no neighbour ever heard on the link, that make the "another federation
    /// or network key?" warning: two, not one, so that one damaged frame whose checksum happened to pass is not it.
    static let strangerFailures = 2
    /// Neighbours heard on the link since the start (`.neighbourHeard`).
    var neighboursHeard = 0
    var authFailures = 0
    var unknownSender = 0
    var duplicates = 0
    var replays = 0
    var refused = 0
    var refusedBy: [String: Int] = [:]
    var window: [Sample] = []
    var damageWarning: String?
    var authWarning: String?
}
