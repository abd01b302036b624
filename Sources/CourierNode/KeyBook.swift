import CourierMedium
import enum CourierStore.Acceptance
import struct CourierStore.WaitingBundle
import CourierWire
import Foundation

/// The key book: nodes' keys (`keys`, `directory`), identity bundles, key requests and their answers, bundles kept
/// unread until their origin's keys arrive (`keyExchange`), and the network key rotation (SPEC 3.7, 9.1).
extension Node {
    /// Learns a node's keys; bundles kept unread from it are read at the next tick. True when they were new.
    @discardableResult
    func learn(_ k: NodePublicKeys) -> Bool {
        guard self.keyBook.learn(k) else { return false }
        if k.nodeID != self.me { self.keyExchange.arrived.insert(k.nodeID.short) }
        return true
    }

    /// Learns the keys the store knows that the engine does not yet (put on the trust list, or learnt by another
    /// process, while running).
    public func refreshKeys() {
        do { for p in try self.store.peers() { self.learn(p.keys) } } catch {
            self.rejectStorage("cannot read the known keys: \(error)", error)
        }
    }

    /// Seals and opens under the keys the rotation gives for `now`, saying so when they change.
    func applyKeyRotation(now: Double) {
        // Nothing scheduled (no next key, no replaced one): the keys are the current one alone, what `keys` would say,
        // checked without building them (that and comparing the arrays, at every tick, was 1.4% of a 1,000-relay drill).
        let rotation = self.config.keyRotation, current = self.config.networkKey
        if rotation.next == nil, rotation.previous == nil, self.networkKeys.send == current,
            self.networkKeys.accept.count == 1, self.networkKeys.accept[0] == current { return }
        let k = rotation.keys(current: current, at: now)
        guard k.send != self.networkKeys.send || k.accept != self.networkKeys.accept else { return }
        self.networkKeys = k
        self.sealer = PacketSealer(networkKey: k.send, sender: self.config.identity.nodeID, open: self.config.openMode)
        self.opener = PacketOpener(networkKeys: k.accept, acceptOpen: self.config.openMode)
        self.opener.recent = self.shared?.opened
        self.emit(.event(.networkKeys(sending: k.send.fingerprint, accepting: k.accept.map(\.fingerprint))))
    }

    /// Keeps a bundle this node cannot check yet (its origin's keys are unknown) and asks the origin for its keys.
    func holdForKeys(_ b: CourierBundle, source: String?, now: Double) -> Acceptance {
        let why = "signed by \(b.origin), whose keys are not known here yet: kept unread, not passed on, until they arrive (asked for them)"
        let kept = self.keepUntilKeys(b, why: why, source: source, now: now)
        // A flood: the neighbour that passed it on most likely holds the origin's identity flood (9.1), which our
        // summary brings sooner than the key request's answer.
        if case .waiting = kept {
            if case .node = b.destination {} else { self.wantSummary(nil, now: now, Tuning.keysWantedSummaryDelay.min, Tuning.keysWantedSummaryDelay.max) }
        }
        return kept
    }

    /// Keeps a bundle unread until its origin's keys arrive (`why` says what for), tells the operator and asks the
    /// origin for its keys.
    func keepUntilKeys(_ b: CourierBundle, why: String, source: String?, now: Double) -> Acceptance {
        self.keepWaiting(b, why: why, source: source, now: now) { self.requestKeys(of: b.origin, now: now) }
    }

    /// Keeps a bundle unread until what it waits for arrives (`why`), tells the operator (feed, status, log), then
    /// `ask`s for it. Not stored: not acknowledged, so its sender keeps it.
    func keepWaiting(_ b: CourierBundle, why: String, source: String?, now: Double, ask: () -> Void) -> Acceptance {
        do {
            guard try self.store.keepUnread(b, reason: why, from: source, now: Int64(now)) else { return .duplicate }
        } catch {
            self.rejectStorage("cannot keep \(b.id), not acknowledged (kept by its sender): \(error)", error)
            return .notStored("cannot keep: \(error)")
        }
        self.emit(.event(.waiting(b.id, reason: why)))
        ask()
        return .waiting(why)
    }

    /// Reads the bundles kept for want of the keys that arrived since the last tick.
    func readWaiting(now: Double) {
        let arrived = self.keyExchange.arrived
        self.keyExchange.arrived = []
        let kept: [WaitingBundle]
        do { kept = try self.store.waiting(origin: nil) } catch {
            self.rejectStorage("cannot read the bundles waiting for keys: \(error)", error)
            return
        }
        for w in kept where arrived.contains(w.id.origin) {
            let b: CourierBundle
            do { b = try CourierBundle(decoding: w.data) } catch {
                do {
                    try self.store.dropUnread(w.id, gaveUp: "damaged in the store: \(error)", now: Int64(now))
                } catch let dropError {
                    self.rejectStorage("cannot drop the damaged waiting bundle \(w.id): \(dropError)", dropError)
                }
                continue
            }
            switch self.judge(b) {
            case .keysUnknown: continue
            case .refused(let why):
                // The keys came, and the signature is not the origin's: a forgery, refused and reported.
                do { try self.store.dropUnread(b.id, gaveUp: nil, now: Int64(now)) } catch { self.rejectStorage("cannot drop \(b.id): \(error)", error) }
                self.reject(why)
                self.refuse(b, why: why, from: nil, now: now)
                continue
            case .proven, .unproven: break
            }
            // Still unreadable for want of keys, or of a dictionary (read when that arrives, Dictionaries.swift).
            switch self.read(b) {
            case .needKeys, .needDictionary: continue
            case .content, .unreadable: break
            }
            // Taken in now as if it had just arrived: delivered (and receipted), flooded on, or given up on.
            do { try self.store.releaseUnread(b.id) } catch {
                self.rejectStorage("cannot take in \(b.id) kept for keys: \(error)", error)
                continue
            }
            switch self.accept(b, from: nil, source: "kept for keys", now: now) {
            case .stored: self.afterStoring(b, from: nil, now: now, local: false)
            case .delivered:
                // It has waited already: its receipt goes out now rather than after the aggregation delay.
                if b.kind != .receipt && b.kind != .failure && b.kind != .identity { self.queueReceipt(for: b.id, now: now, within: 1) }
            case .duplicate, .waiting, .failed, .notStored: break
            }
        }
    }

    /// Reads an identity bundle (SPEC 9.1): learns and remembers the keys it carries, and answers a key request
    /// for this node with our own identity. Returns why it is refused (keys not the origin's, bad signature).
    func takeIdentity(_ b: CourierBundle, now: Double) -> String? {
        let c: IdentityContent
        do { c = try IdentityContent.verified(b, compressor: self.compressor) } catch { return "identity bundle \(b.id): \(error)" }
        let id = c.keys.nodeID
        guard id != self.me else { return nil }
        if self.learn(c.keys) { self.emit(.event(.keysLearnt(id, name: c.name))) }
        if let name = c.name, self.neighbours[id] != nil { self.neighbours[id]!.name = name }
        do { try self.store.rememberKeys(c.keys, name: c.name) } catch { self.rejectStorage("cannot remember the keys of \(id.short): \(error)", error) }
        if c.wantsAnswer, case .node(let d) = b.destination, d == self.me.short,
           now - (self.keyExchange.answered[b.origin] ?? -1e9) >= self.config.keyRequestInterval {
            self.keyExchange.answered[b.origin] = now
            self.sendIdentity(to: .node(b.origin), wantsAnswer: false, now: now)
        }
        return nil
    }

    /// Makes our identity bundle: flooded to everyone, or to one node (a key request when `wantsAnswer`, or the
    /// answer to one).
    func sendIdentity(to destination: Destination, wantsAnswer: Bool, now: Double) {
        let content = IdentityContent(keys: self.config.identity.publicKeys, name: self.config.name, wantsAnswer: wantsAnswer).encode()
        var opts = BundleOptions(kind: .identity)
        // Requests and answers are for now; the flood lasts a week and is renewed at half its life.
        if case .node = destination { opts.lifetime = Tuning.keyRequestLifetime }
        do { _ = try self.make(kind: .identity, destination: destination, content: content, options: opts, now: now) } catch {
            self.rejectStorage("cannot make our identity bundle: \(error)", error)
        }
    }

    /// Asks an origin for its keys (a directed identity bundle with Q set, carrying ours), at most once per
    /// `keyRequestInterval`.
    func requestKeys(of origin: ShortID, now: Double) {
        guard origin != self.me.short, now - (self.keyExchange.requested[origin] ?? -1e9) >= self.config.keyRequestInterval else { return }
        self.keyExchange.requested[origin] = now
        // One made by another process on this store (`relay import`) and not yet passed on is enough.
        do {
            if try self.store.held(kind: .identity, origin: self.me.short).contains(where: { $0.destination == .node(origin) }) { return }
        } catch {
            self.rejectStorage("cannot read our key requests: \(error)", error)
        }
        self.sendIdentity(to: .node(origin), wantsAnswer: true, now: now)
    }

    /// Floods our identity bundle when we hold none with more than half its lifetime left.
    func renewIdentity(now: Double) {
        let nowMinutes = Int64(CourierTime.minutes(unixSeconds: Int64(now)))
        let held: [(id: BundleID, destination: Destination, expires: Int64)]
        do { held = try self.store.held(kind: .identity, origin: self.me.short) } catch {
            self.rejectStorage("cannot read our identity bundle: \(error)", error)
            return
        }
        let fresh = held.contains { $0.destination == .everyone && $0.expires - nowMinutes > Int64(Kind.identity.defaultLifetime / 2) }
        if !fresh { self.sendIdentity(to: .everyone, wantsAnswer: false, now: now) }
    }
}

/// Nodes' keys, a value of its own: the engine holds one (`Node.keyBook`), and so does `relay import`, which judges
/// bundles without an engine (`BundleJudge`, `ArchiveImport`).
public struct KeyBook: Sendable {
    /// Every node's keys known here, by node id.
    public private(set) var keys: [NodeID: NodePublicKeys] = [:]
    /// The node ids known under each short id (a short id may name more than one node, SPEC 2.3).
    public private(set) var directory: [ShortID: [NodeID]] = [:]

    public init() {}

    /// The book of a node: its own keys, the trust list's (`trust = peers`) and those the store remembers.
    public init(identity: NodeIdentity, trust: TrustPolicy, peers: [NodePublicKeys]) {
        self.learn(identity.publicKeys)
        if case .members(let members) = trust { for k in members { self.learn(k) } }
        for k in peers { self.learn(k) }
    }

    /// Learns a node's keys. True when they were new.
    @discardableResult
    public mutating func learn(_ k: NodePublicKeys) -> Bool {
        let id = k.nodeID
        guard self.keys[id] == nil else { return false }
        self.keys[id] = k
        self.directory[id.short, default: []].append(id)
        return true
    }

    /// The keys known for a short id (every candidate, 2.3).
    public func candidates(_ short: ShortID) -> [NodePublicKeys] {
        (self.directory[short] ?? []).compactMap { self.keys[$0] }
    }
}

/// What the key book keeps of its exchanges; no other part uses it.
struct KeyExchangeState {
    /// Origins whose keys we asked for with a key request, and when.
    var requested: [ShortID: Double] = [:]
    /// Requesters we answered with our identity, and when.
    var answered: [ShortID: Double] = [:]
    /// Short ids whose keys were learnt since the last tick: bundles kept unread from them are read then.
    var arrived: Set<ShortID> = []

    /// Forgets requests and answers older than `interval` (they no longer hold the next one back).
    mutating func prune(now: Double, interval: Double) {
        self.requested = self.requested.filter { now - $0.value < interval }
        self.answered = self.answered.filter { now - $0.value < interval }
    }
}
