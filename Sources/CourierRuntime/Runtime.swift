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
    public let links: [String: any Link]
    let logger: Logger
    let statusPath: String?
    let inputs: AsyncStream<Input>
    let continuation: AsyncStream<Input>.Continuation
    var senders: [String: AsyncStream<[UInt8]>.Continuation] = [:]
    var lastEvent: Int64 = 0
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

    public init(node: Node, links: [any Link], statusPath: String? = nil, logger: Logger) {
        self.node = node
        self.links = Dictionary(uniqueKeysWithValues: links.map { ($0.name, $0) })
        self.logger = logger
        self.statusPath = statusPath
        (self.inputs, self.continuation) = AsyncStream.makeStream(of: Input.self)
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
        self.lastEvent = (try? self.node.store.lastEventSeq()) ?? 0
        self.trustVersion = (try? self.node.store.trustVersion()) ?? 0
        for (name, link) in self.links {
            let c = self.continuation
            Task { for await e in link.events { c.yield(.link(name, e)) } }
            let (stream, sc) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(1_024))
            self.senders[name] = sc
            Task {
                for await packet in stream {
                    do { try await link.send(packet) } catch {
                        self.logger.debug("send failed", metadata: ["link": "\(name)", "error": "\(error)"])
                    }
                }
            }
            link.start()
        }
        // A clock: wake at least every second (the change feed, quiet mode) and when the engine asks.
        let c = self.continuation
        let ticker = Task { [self] in
            while !Task.isCancelled {
                // At the engine's next wake-up (an ack due in 200 ms, a fragment's turn), at most 250 ms apart.
                let wait = min(0.25, max(0.005, self.wakeAt.withLock { $0 } - Date().timeIntervalSince1970))
                try? await Task.sleep(for: .milliseconds(Int(wait * 1_000)))
                c.yield(.wake)
            }
        }
        var lastPoll = Date.distantPast
        for await input in self.inputs {
            if self.stopped.withLock({ $0 }) { break }
            let now = Date().timeIntervalSince1970
            var out: [NodeOutput] = []
            switch input {
            case .link(let name, .frame(let bytes)): out = self.node.receive(bytes, on: name, now: now)
            case .link(let name, .up):
                self.linkUp[name] = true
                out = self.node.linkUp(name, now: now)
            case .link(let name, .down(let why)):
                self.linkUp[name] = false
                self.node.linkDown(name, now: now)
                self.logger.warning("link down", metadata: ["link": "\(name)", "reason": "\(why)"])
            case .wake:
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
            if changed || Date().timeIntervalSince(lastPoll) >= 1 {
                lastPoll = Date()
                out += self.pollStore(now: now)
                self.writeStatus(now: now)
            }
            self.perform(out)
            let next = self.node.nextWakeup(now: Date().timeIntervalSince1970)
            self.wakeAt.withLock { $0 = next }
        }
        ticker.cancel()
        for l in self.links.values { l.stop() }
        for s in self.senders.values { s.finish() }
    }

    func perform(_ outputs: [NodeOutput]) {
        for o in outputs {
            switch o {
            case .send(let link, let packet, _): self.senders[link]?.yield(packet)
            case .delivered(let m):
                self.logger.notice("delivered", metadata: ["bundle.id": "\(m.id)", "kind": "\(m.kind)", "from": "\(m.id.origin)"])
            case .event(let e):
                switch e {
                case .neighbourHeard(let id, let name, let link):
                    self.logger.info("neighbour heard", metadata: ["node": "\(id.short)", "name": "\(name ?? "-")", "link": "\(link)"])
                case .rejected(let why): self.logger.warning("rejected", metadata: ["why": "\(why)"])
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
                case .keysLearnt(let id, let name):
                    self.logger.info("keys learnt", metadata: ["node": "\(id.short)", "name": "\(name ?? "-")"])
                case .stalled(let id, let to):
                    self.logger.warning("next hop stopped answering; bundle kept, will try again", metadata: ["bundle.id": "\(id)", "to": "\(to)"])
                default: break
                }
            }
        }
    }

    /// Bundles another process stored locally; quiet mode switched from the command line.
    func pollStore(now: Double) -> [NodeOutput] {
        var out: [NodeOutput] = []
        if let quiet = try? self.node.store.isQuiet(), quiet != self.node.isQuiet {
            self.logger.notice(quiet ? "quiet mode on: receiving only" : "quiet mode off: transmitting again")
            out += (try? self.node.setQuiet(quiet, now: now)) ?? []
        }
        if let v = try? self.node.store.trustVersion(), v != self.trustVersion {
            self.trustVersion = v
            self.logger.notice("trust list changed: applying it")
            self.onReload?(self.node)
        }
        // All new local and imported bundles at once, so the first packet can carry several.
        var adopt: [(id: BundleID, imported: Bool)] = []
        while let events = try? self.node.store.events(after: self.lastEvent, limit: 500), !events.isEmpty {
            for e in events {
                self.lastEvent = e.seq
                if e.type == .removed, e.detail == Store.cancelledReason, let s = e.bundle, let id = BundleID(s) {
                    self.node.cancelled(id)
                    continue
                }
                guard e.type == .enqueued, let s = e.bundle, let id = BundleID(s) else { continue }
                if e.detail?.hasSuffix(", local") == true {
                    adopt.append((id, false))
                } else if e.neighbour == Node.importedFrom {
                    adopt.append((id, true))
                }
            }
        }
        if !adopt.isEmpty { out += self.node.adopt(adopt, now: now) }
        return out
    }

    /// A small JSON file `relay status` reads: links, neighbours, airtime, quiet mode.
    func writeStatus(now: Double) {
        guard let path = self.statusPath else { return }
        struct Status: Codable {
            struct L: Codable { let name: String; let up: Bool; let mtu: Int; let airtimeUsed: Double?; let airtimeBudget: Double? }
            struct N: Codable { let node: String; let name: String?; let link: String; let lastHeard: Double }
            let pid: Int32
            let updated: Double
            let started: Double
            let quiet: Bool
            let info: [String: String]
            let links: [L]
            let neighbours: [N]
            /// Next hop of a directed bundle, per destination (`relay queue list`).
            let routes: [R]
            struct R: Codable { let to: String; let via: String; let link: String }
        }
        let air = Dictionary(uniqueKeysWithValues: self.node.airtime().map { ($0.link, $0) })
        let s = Status(
            pid: getpid(), updated: now, started: self.startedAt.timeIntervalSince1970, quiet: self.node.isQuiet, info: self.statusInfo,
            links: self.links.values.sorted { $0.name < $1.name }.map { l in
                let a = air[l.name]
                return .init(name: l.name, up: self.linkUp[l.name] ?? false, mtu: l.properties.mtu,
                             airtimeUsed: a?.budget.map { b in max(0, b - (a?.tokens ?? b)) }, airtimeBudget: a?.budget)
            },
            neighbours: self.node.neighbourList(now: now).map { .init(node: $0.id.short.description, name: $0.name, link: $0.link, lastHeard: $0.lastHeard) },
            routes: self.node.nextHops(now: now).map { .init(to: $0.to.description, via: $0.via.description, link: $0.link) })
        if let data = try? JSONEncoder().encode(s) {
            try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }
}
