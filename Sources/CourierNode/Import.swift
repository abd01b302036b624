import enum CourierStore.StoreError
import struct CourierStore.StoredDictionary
import CourierWire

/// What became of one bundle from an archive.
public enum ImportOutcome: Sendable, Equatable {
    /// Held for others (custody for a directed bundle, or a flood to pass on).
    case stored
    /// Delivered to this node's inbox (and held to pass on, for a group or everyone).
    case delivered
    /// Already seen here: nothing changed.
    case duplicate
    case expired
    /// For this relay, but what it needs is not here yet (its origin's keys, or the dictionary it names): kept,
    /// read when it arrives.
    case waiting(String)
    /// Refused, with the reason (untrusted origin, bad signature, damaged bundle, unreadable, no room): in the
    /// change feed and `relay status`.
    case rejected(String)
    /// Not stored: the database refused the write (a full disk, a damaged file). Nothing of it was kept; the
    /// same archive can be imported again once the store is writable (what is already here is skipped).
    case notStored(String)
}

extension Node {
    /// The change feed's `neighbour` for bundles taken from an archive.
    public static let importedFrom = ArchiveImport.source
}

/// Bundles carried by hand: an archive written by `relay export` on one relay, read on another by `relay import`,
/// with the checks a bundle from a link gets, and no engine: the bundle is judged by a `BundleJudge` over the node's
/// `KeyBook` (the same judge the engine's intake uses), stored or delivered through the store, receipted and, when
/// it is given up on, its origin told, with bundles made by a `BundleMaker`. The running relay adopts what was stored
/// (the change feed marks it imported) and sends it on, with the receipts and key requests made here.
///
/// What differs from a link, since no neighbour is here: nothing is acknowledged, no route is learnt, nobody is
/// noted as holding the bundle, and an alert's receipt is a plain receipt (receipt parts ride packets, 6.16).
public struct ArchiveImport {
    /// The change feed's `neighbour` for bundles taken from an archive.
    public static let source = "import"

    public let store: any NodeStorage
    public private(set) var judge: BundleJudge
    let compressor: BodyCompressor
    let maker: BundleMaker
    /// The node's name, in the identity bundles made here (key requests and answers).
    let name: String?
    /// Receipts owed, per origin, made by `finish` (aggregated as the engine aggregates them).
    private(set) var receipts: [ShortID: [BundleID]] = [:]
    /// Origins asked for their keys, and requesters answered, in this run (once each).
    private var askedKeys: Set<ShortID> = []
    private var answered: Set<ShortID> = []
    /// Bundles reported refused in this run (an archive may list one twice).
    private var refusedReported: Set<BundleID> = []
    /// What went wrong on the way that refused no bundle (a failure notice, a feed entry not written): one line each.
    public private(set) var problems: [String] = []

    /// Reads what judging needs from the store: the keys it remembers (with the node's own and the trust list's)
    /// and the federation dictionaries it holds.
    public init(config: NodeConfig, store: any NodeStorage, compressor: BodyCompressor = BodyCompressor()) throws(StoreError) {
        self.store = store
        self.compressor = compressor
        self.judge = BundleJudge(identity: config.identity, groups: config.groups, trust: config.trust, openMode: config.openMode,
                                 book: KeyBook(identity: config.identity, trust: config.trust, peers: try store.peers().map(\.keys)))
        self.maker = BundleMaker(identity: config.identity, groups: config.groups, store: store, compressor: compressor)
        self.name = config.name
        for d in try store.dictionaries() {
            do { try compressor.shelf.put(id: d.id, bytes: d.bytes) } catch {
                self.problems.append("federation dictionary \(d.id) in the store is damaged, not used: \(error)")
            }
        }
    }

    var me: NodeID { self.judge.identity.nodeID }

    /// Takes in one bundle with the checks a bundle from a link gets: decoding, lifetime, dedupe, trust and origin
    /// signature, then the intake's: keys learnt from identities, dictionaries kept, receipts releasing copies,
    /// delivery, storage (custody for a directed one) in its admitted class. Receipts are owed until `finish`.
    public mutating func take(_ bytes: [UInt8], now: Double) -> ImportOutcome {
        let b: CourierBundle
        do { b = try CourierBundle(decoding: bytes) } catch { return .rejected("damaged bundle: \(error)") }
        if b.expires <= UInt64(CourierTime.minutes(unixSeconds: Int64(now))) { return .expired }
        do { if try self.store.hasSeen(b.id) { return .duplicate } } catch { return .notStored("cannot read the database: \(error)") }
        let proof = self.judge.judge(b)
        if case .refused(let why) = proof {
            self.refuse(b, why: why, now: now)
            return .rejected(why)
        }
        let forHere = self.judge.isForHere(b)
        var passingThrough = false
        if case .node = b.destination, !forHere { passingThrough = true }
        if proof == .keysUnknown, !passingThrough {
            let why = "signed by \(b.origin), whose keys are not known here yet: kept unread, not passed on, until they arrive (asked for them)"
            return self.keepForKeys(b, why: why, now: now)
        }
        if b.kind == .receipt, proof == .proven { self.releaseReceipted(b, now: now) }
        if b.kind == .identity, let why = self.takeIdentity(b, now: now) {
            self.refuse(b, why: why, now: now)
            return .rejected(why)
        }
        if b.kind == .dictionary, !passingThrough {
            switch self.takeDictionary(b, proof: proof, now: now) {
            case .failure(let refusal):
                self.refuse(b, why: refusal.why, now: now)
                return .rejected(refusal.why)
            case .success(false): return .notStored("cannot keep the dictionary it carries: the database refused the write")
            case .success(true): break
            }
        }
        if case .node = b.destination, forHere { return self.readDirected(b, now: now) }
        let directed: Bool
        if case .node = b.destination { directed = true } else { directed = false }
        do {
            let (results, evicted) = try self.store.insertReporting([b], now: Int64(now), local: false, custody: directed, from: Self.source,
                                                                    classes: [BundleJudge.admittedClass(b, proof: proof)], again: false)
            // The feed has each one evicted; a directed bundle in our custody is given up on: its origin is told.
            for e in evicted {
                guard case .node = e.destination, e.custody, !e.isLocal else { continue }
                self.notifyFailure(e.id, kind: e.kind, .evicted, now: now)
            }
            switch results[0] {
            case .stored: break
            case .refused:
                if directed { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
                return .rejected("refused: our queue is full")
            case .duplicate, .expired: return .duplicate
            }
        } catch {
            return .notStored("cannot store: \(error)")
        }
        guard forHere else { return .stored }
        switch self.judge.read(b, compressor: self.compressor) {
        case .content(let content):
            do { try self.deliver(b, content: content, proof: proof, now: now) } catch {
                // A full inbox (the feed records it and counts it): it is passed on all the same.
                self.problems.append("\(b.id) stored and passed on, but not put in the inbox: \(error)")
                return .stored
            }
        case .needDictionary(let id):
            // Passed on, and kept for our inbox until the dictionary arrives.
            _ = self.keepUnread(b, why: Self.waitingForDictionary(id), now: now)
            return .stored
        case .needKeys, .unreadable:
            // Not readable here (end-to-end encrypted to a group): carried on unread.
            return .stored
        }
        if b.kind == .alert { self.owe(b.id) }
        return .delivered
    }

    /// Makes the receipts owed (at most `Node.receiptMaxIDs` ids each), as bundles in the store: the running relay
    /// sends them. Returns how many were made.
    @discardableResult
    public mutating func finish(now: Double) -> Int {
        var made = 0
        for (origin, ids) in self.receipts.sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: ids.count, by: Node.receiptMaxIDs) {
                let part = Array(ids[start..<min(start + Node.receiptMaxIDs, ids.count)])
                do {
                    _ = try self.maker.make(kind: .receipt, destination: .node(origin), content: ReceiptContent.encode(part), options: nil, now: now)
                    made += 1
                } catch {
                    self.problems.append("cannot store the receipt for \(part.count) bundles of \(origin) (they will not know these arrived): \(error)")
                }
            }
        }
        self.receipts = [:]
        return made
    }

    // MARK: The intake's steps, over the store

    static func waitingForDictionary(_ id: UInt8) -> String {
        "compressed with dictionary \(id), which this relay lacks: kept until it arrives (the running relay asks its neighbours)"
    }

    mutating func owe(_ id: BundleID) {
        guard id.origin != self.me.short else { return }
        if !(self.receipts[id.origin] ?? []).contains(id) { self.receipts[id.origin, default: []].append(id) }
    }

    /// Reports a refused bundle once: in the change feed (and so `relay status`), and to its origin when directed.
    mutating func refuse(_ b: CourierBundle, why: String, now: Double) {
        guard self.refusedReported.insert(b.id).inserted else { return }
        do { try self.store.refused(b, reason: why, from: Self.source, now: Int64(now), unsigned: !b.isSigned) } catch {
            self.problems.append("cannot record \(b.id) refused: \(error)")
        }
        if case .node = b.destination { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
    }

    mutating func notifyFailure(_ id: BundleID, kind: Kind, _ reason: FailureReason, now: Double) {
        guard id.origin != self.me.short, kind != .receipt, kind != .identity, kind != .failure else { return }
        do { _ = try self.maker.make(kind: .failure, destination: .node(id.origin), content: FailureContent.encode([(id, reason)]), options: nil, now: now) } catch {
            self.problems.append("cannot make a failure notice for \(id): \(error)")
        }
    }

    /// Keeps a bundle unread (`why`), in the feed (and so `relay status`).
    mutating func keepUnread(_ b: CourierBundle, why: String, now: Double) -> ImportOutcome {
        do {
            guard try self.store.keepUnread(b, reason: why, from: Self.source, now: Int64(now)) else { return .duplicate }
        } catch {
            return .notStored("cannot keep: \(error)")
        }
        return .waiting(why)
    }

    /// Keeps a bundle until its origin's keys arrive, and asks the origin for them (a directed identity bundle with
    /// Q set, SPEC 9.1), unless a request made here is still held.
    mutating func keepForKeys(_ b: CourierBundle, why: String, now: Double) -> ImportOutcome {
        let kept = self.keepUnread(b, why: why, now: now)
        guard case .waiting = kept, b.origin != self.me.short, self.askedKeys.insert(b.origin).inserted else { return kept }
        do {
            if try self.store.held(kind: .identity, origin: self.me.short).contains(where: { $0.destination == .node(b.origin) }) { return kept }
        } catch {
            self.problems.append("cannot read our key requests: \(error)")
        }
        self.sendIdentity(to: b.origin, wantsAnswer: true, now: now)
        return kept
    }

    mutating func sendIdentity(to origin: ShortID, wantsAnswer: Bool, now: Double) {
        let content = IdentityContent(keys: self.judge.identity.publicKeys, name: self.name, wantsAnswer: wantsAnswer).encode()
        var opts = BundleOptions(kind: .identity)
        opts.lifetime = Tuning.keyRequestLifetime
        do { _ = try self.maker.make(kind: .identity, destination: .node(origin), content: content, options: opts, now: now) } catch {
            self.problems.append("cannot make our identity bundle for \(origin): \(error)")
        }
    }

    /// Learns and remembers the keys an identity bundle carries; answers a key request for this node. Why it is
    /// refused, if it is.
    mutating func takeIdentity(_ b: CourierBundle, now: Double) -> String? {
        let c: IdentityContent
        do { c = try IdentityContent.verified(b, compressor: self.compressor) } catch { return "identity bundle \(b.id): \(error)" }
        guard c.keys.nodeID != self.me else { return nil }
        self.judge.book.learn(c.keys)
        do { try self.store.rememberKeys(c.keys, name: c.name) } catch {
            self.problems.append("cannot remember the keys of \(c.keys.nodeID.short): \(error)")
        }
        if c.wantsAnswer, case .node(let d) = b.destination, d == self.me.short, self.answered.insert(b.origin).inserted {
            self.sendIdentity(to: b.origin, wantsAnswer: false, now: now)
        }
        return nil
    }

    /// Checks and keeps a dictionary bundle's dictionary (DictionaryIntake, as the engine does). False: not written.
    mutating func takeDictionary(_ b: CourierBundle, proof: OriginProof, now: Double) -> Result<Bool, DictionaryIntake.Refusal> {
        let d: StoredDictionary
        switch DictionaryIntake.check(b, proof: proof, compressor: self.compressor, now: now) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let checked): d = checked
        }
        do {
            guard DictionaryIntake.replaces(d, of: b, held: try self.store.dictionaries()) else { return .success(true) }
            for x in try self.store.saveDictionary(d, now: Int64(now)) { self.compressor.shelf.remove(id: x.id) }
        } catch {
            return .success(false)
        }
        do { try self.compressor.shelf.put(id: d.id, bytes: d.bytes) } catch { return .failure(.init(why: "dictionary bundle \(b.id): \(error)")) }
        let what = "dictionary \(d.id) version \(d.version) from \(b.origin) received and kept (\(d.bytes.count) B)"
        do { try self.store.dictionaryEvent(what, bundle: b.id, now: Int64(now)) } catch {
            self.problems.append("cannot record dictionary \(d.id) in the change feed: \(error)")
        }
        return .success(true)
    }

    /// A receipt proven by its origin: our copies of the bundles it names, directed to that origin, are dropped.
    mutating func releaseReceipted(_ b: CourierBundle, now: Double) {
        let content: [UInt8]
        do { content = try b.content(compressor: self.compressor) } catch { return }
        // Malformed (SPEC 6.8): nothing released. One for this relay is given up on as unreadable in `readDirected`;
        // one passing through is stored and carried on (its destination judges it), and said here.
        let ids: [BundleID]
        do { ids = try ReceiptContent.decode(content) } catch {
            if !self.judge.isForHere(b) { self.problems.append("receipt \(b.id) from \(b.origin): malformed, nothing released: \(error)") }
            return
        }
        for id in ids {
            do {
                if let q = try self.store.bundle(id), case .node(let d) = q.destination, d == b.origin {
                    try self.store.remove(id, reason: "delivered (receipt from \(b.origin))", now: Int64(now))
                }
            } catch {
                self.problems.append("cannot drop \(id), which a receipt says was delivered: \(error)")
            }
        }
    }

    /// A directed bundle for this node: delivered and receipted, kept until what it needs arrives, or given up on.
    mutating func readDirected(_ b: CourierBundle, now: Double) -> ImportOutcome {
        if b.kind == .identity {
            do { try self.store.markSeen(b) } catch { return .notStored("cannot record it: \(error)") }
            return .delivered
        }
        switch self.judge.read(b, compressor: self.compressor) {
        case .content(let content):
            do { try self.deliver(b, content: content, proof: self.judge.judge(b), now: now) } catch .inboxFull(let limit) {
                let why = "refused: the inbox is full of unread messages (\(limit) bytes, inbox-mb)"
                do { try self.store.markSeen(b) } catch { self.problems.append("cannot record \(b.id): \(error)") }
                self.notifyFailure(b.id, kind: b.kind, .refused, now: now)
                return .rejected(why)
            } catch {
                return .notStored("cannot deliver: \(error)")
            }
            if b.kind == .failure { self.recordFailures(b, content: content, now: now) }
            if b.kind != .receipt && b.kind != .failure { self.owe(b.id) }
            return .delivered
        case .needKeys:
            return self.keepForKeys(b, why: "end-to-end encrypted by \(b.origin), whose keys are not known here yet: kept until they arrive (asked for them)", now: now)
        case .needDictionary(let id):
            return self.keepUnread(b, why: Self.waitingForDictionary(id), now: now)
        case .unreadable(let why):
            do { try self.store.gaveUp(b, reason: "unreadable: \(why)", from: Self.source, now: Int64(now)) } catch {
                self.problems.append("cannot record \(b.id): \(error)")
            }
            self.notifyFailure(b.id, kind: b.kind, .unreadable, now: now)
            return .rejected("unreadable: \(why)")
        }
    }

    func deliver(_ b: CourierBundle, content: [UInt8], proof: OriginProof, now: Double) throws(StoreError) {
        if b.extensions.contains(where: { $0.isCritical }) || b.kind == .identity { return }
        _ = try self.store.deliver(b, content: content, now: Int64(now), proven: proof == .proven)
    }

    /// A failure notice for this node: a relay gave up on some of our bundles (recorded as the engine records it).
    /// A malformed notice never gets here (`BundleJudge.read` gives up on it); nothing of one is recorded.
    mutating func recordFailures(_ b: CourierBundle, content: [UInt8], now: Double) {
        let entries: [(id: BundleID, reason: FailureReason)]
        do { entries = try FailureContent.decode(content) } catch {
            self.problems.append("failure notice \(b.id) from \(b.origin): malformed, nothing of it recorded: \(error)")
            return
        }
        for (id, reason) in entries where id.origin == self.me.short {
            do { try self.store.failed(id, reason: "\(reason), reported by \(b.origin)", by: b.origin, now: Int64(now)) } catch {
                self.problems.append("cannot record the failure notice for \(id): \(error)")
            }
        }
    }
}
