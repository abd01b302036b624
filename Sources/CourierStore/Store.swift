import CourierWire
import Foundation
import GRDB
import GRDBSQLite
import Logging
import Synchronization

/// The durable delay-tolerant queue: bundles and their states, per-neighbour transmission state, custody, dedupe,
/// the inbox, reassembly state and a change feed, in one SQLite file.
///
/// Durability: WAL journal with `synchronous = FULL`. Every method that changes state is one transaction; when it
/// returns, the change has been fsynced to the WAL and survives a power cut, not only a process crash. A second
/// process (the CLI) may open the same file at the same time to read, follow the feed, or submit.
///
/// Time is injected: `now` is unix seconds, so tests and simulators drive the store with a virtual clock.
public final class Store: Sendable {
    public struct Configuration: Sendable {
        /// Bytes of queued bundles (encoded size) before the quota evicts.
        public var quotaBytes = 64 * 1_048_576
        /// Bytes of message content the inbox keeps (outside the quota). When a delivery would pass it, the oldest
        /// read messages make room; with none read, the new message is refused (`StoreError.inboxFull`): unread
        /// messages are never dropped.
        public var inboxBytes = 64 * 1_048_576
        /// Change-feed entries kept (oldest pruned first).
        public var eventRetention = 100_000
        /// Ids remembered for dedupe at most (oldest-expiring pruned first); entries also leave at expiry.
        public var seenLimit = 500_000
        /// Seconds a half-received transfer is kept without news.
        public var reassemblyTimeout: Int64 = 24 * 3_600
        public var readOnly = false
        /// Keep everything in memory (simulations and tests): nothing survives the process.
        public var inMemory = false
        /// The counter floor beside the identity (SPEC 3.3, 3.4): written before any block of packet counters,
        /// bundle sequence numbers or transfer numbers is used, and respected by a database that is behind it.
        public var floor: CounterFloor? = nil
        public init() {}
    }

    /// The newest database schema this build reads and writes (`PRAGMA user_version`).
    public static var schemaVersion: Int { Schema.version }

    public let path: String
    public let configuration: Configuration
    /// The queue's quota and the inbox bound in force: the configuration's at first, changed by `setLimits` (a
    /// running relay re-reads relay.conf's quota-mb and inbox-mb on SIGHUP without reopening the store).
    let limits: Mutex<(quota: Int, inbox: Int)>
    /// Bytes of queued bundles before the quota evicts, now.
    public var quotaBytes: Int { self.limits.withLock { $0.quota } }
    /// Bytes of message content the inbox keeps, now.
    public var inboxBytes: Int { self.limits.withLock { $0.inbox } }
    /// Changes the quota and the inbox bound for what is queued or delivered from now on. A lower quota evicts
    /// nothing at once: the next insert makes room as usual.
    public func setLimits(quota: Int, inbox: Int) {
        self.limits.withLock { $0 = (quota, inbox) }
    }
    let db: DatabaseQueue
    let logger: Logger
    /// What opening the store did because the database was behind the counter floor (a new, restored or moved-aside
    /// database under a kept identity): a sentence for the operator's log; nil when nothing had to be raised.
    public let floorRaised: String?
    /// The open group (`grouped`), if any: inside one, each write is a savepoint of the group's transaction.
    let group = Mutex(GroupState())
    /// The highest value of each durable counter (sequence, packet counter, transfer number) handed out by this
    /// process: a reservation made inside a group that was rolled back is never handed out again (SPEC 3.3).
    let handedOut = Mutex([String: Int64]())
    /// Statements of the one connection prepared once and held (`held`).
    let statements = HeldStatements()
    /// What `seenDigests` read last, while `seen` has not changed.
    let seenCache = Mutex(SeenCache())

    /// Opens (creating if needed) the store at `path`, migrating its schema.
    public init(path: String, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "courier.store")) throws(StoreError) {
        self.path = path
        self.configuration = configuration
        self.logger = logger
        self.limits = Mutex((configuration.quotaBytes, configuration.inboxBytes))
        var config = GRDB.Configuration()
        config.readonly = configuration.readOnly
        config.journalMode = configuration.readOnly || configuration.inMemory ? .default : .wal
        config.busyMode = .timeout(15)
        config.foreignKeysEnabled = true
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            StatementCount.install(db)
        }
        if configuration.readOnly && !configuration.inMemory && !FileManager.default.fileExists(atPath: path) {
            throw .cannotOpen(path: path, detail: "no such file")
        }
        do {
            let found: Int
            (self.db, found) = try Self.open(path: path, config: config, configuration: configuration)
            var raised: String? = nil
            if !configuration.readOnly {
                // GRDB turns a queue's journal to WAL after `prepareDatabase` ran, and sets `synchronous = NORMAL`
                // with it: commits were then not synced, and a relay that lost power (or whose card the kernel made
                // read-only) lost bundles it had acknowledged. FULL again, on the one connection, once WAL is on.
                try self.db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
                if configuration.inMemory { try Self.migratedTemplate(config).backup(to: self.db) }
                try Schema.migrator.migrate(self.db)
                try self.db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = \(Schema.version)") }
                if let floor = configuration.floor { raised = try Self.applyFloor(floor, db: self.db) }
            } else if found < Schema.version {
                throw StoreError.cannotOpen(path: path, detail: "not initialised (schema \(found))")
            }
            self.floorRaised = raised
        } catch {
            let e = StoreError.from(error, path: path)
            switch e {
            case .corrupt, .newerSchema, .diskFull, .counterFloor: throw e
            default: throw Self.isWritable(path) || configuration.readOnly ? e : .readOnly(path: path)
            }
        }
    }

    /// An in-memory database migrated to the newest schema once per process: a new in-memory store starts as a copy
    /// of it (SQLite's backup, a few dozen pages) instead of running every migration again (parsing their SQL was
    /// 9% of a 1,000-relay drill's first four hours, the drill's relays opening a store each). The copy is what
    /// migrating would have made, grdb_migrations included, so `migrate` then finds nothing to do.
    static func migratedTemplate(_ config: GRDB.Configuration) throws -> DatabaseQueue {
        try Self.template.withLock { t in
            if let t { return t }
            let queue = try DatabaseQueue(configuration: config)
            try Schema.migrator.migrate(queue)
            t = queue
            return queue
        }
    }
    static let template = Mutex<DatabaseQueue?>(nil)

    /// Opens the queue and reads its schema version (checking it is not newer and the file is whole). Read-only, a
    /// write-ahead-log database whose shared-memory file cannot be made (a full disk, a read-only mount) and whose log
    /// is empty or gone (no relay has it open: a stopped relay folds the log back) is read as immutable: the file
    /// alone holds everything, so `relay status` and the other reading commands still show what is there.
    static func open(path: String, config: GRDB.Configuration, configuration: Configuration) throws -> (DatabaseQueue, Int) {
        func versionAndCheck(_ queue: DatabaseQueue) throws -> Int {
            try queue.read { db in
                let found = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA user_version")) ?? 0
                if found > Schema.version { throw StoreError.newerSchema(path: path, found: found, supported: Schema.version) }
                let check = configuration.inMemory ? "ok" : try String.fetchOne(db.cachedStatement(sql: "PRAGMA quick_check")) ?? "?"
                guard check == "ok" else { throw StoreError.corrupt(path: path, detail: check) }
                return found
            }
        }
        if configuration.inMemory {
            let queue = try DatabaseQueue(configuration: config)
            return (queue, try versionAndCheck(queue))
        }
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            return (queue, try versionAndCheck(queue))
        } catch let e as DatabaseError where configuration.readOnly && [.SQLITE_IOERR, .SQLITE_CANTOPEN].contains(e.resultCode) {
            var st = stat()
            let walEmpty = stat(path + "-wal", &st) != 0 ? errno == ENOENT : st.st_size == 0
            guard walEmpty else { throw e }
            // A URI filename (Debian's SQLite takes them: SQLITE_USE_URI); `?`, `#` and `%` in the path escaped.
            var allowed = CharacterSet.urlPathAllowed
            allowed.remove(charactersIn: "?#%")
            let escaped = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
            let queue = try DatabaseQueue(path: "file:\(escaped)?immutable=1", configuration: config)
            return (queue, try versionAndCheck(queue))
        }
    }

    /// Whether the database file (or, before it exists, its folder) can be written: false on a read-only mount.
    static func isWritable(_ path: String) -> Bool {
        var st = statvfs()
        let dir = (path as NSString).deletingLastPathComponent
        if statvfs(dir.isEmpty ? "." : dir, &st) == 0, st.f_flag & UInt(ST_RDONLY) != 0 { return false }
        return FileManager.default.fileExists(atPath: path)
            ? FileManager.default.isWritableFile(atPath: path) : FileManager.default.isWritableFile(atPath: dir.isEmpty ? "." : dir)
    }

    /// A write: its own transaction, or a savepoint of the open group (`groupedWrite`). `expiry`: false for a write
    /// that changes nothing `expireBundles` removes (a replay window, a neighbour heard), so the expiry pass's kept
    /// answer still holds (`wrote`).
    func write<T>(expiry: Bool = true, _ body: (Database) throws -> T) throws(StoreError) -> T {
        if self.inGroup { return try self.groupedWrite(body, expiry: expiry) }
        if expiry { self.wrote() }
        do {
            return try self.db.writeWithoutTransaction { db in try self.immediate(db, body) }
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// A write transaction that takes SQLite's write lock at its start (BEGIN IMMEDIATE): the counter reservations
    /// read, raise the floor file and write under it, so two processes (`relay run` and `relay send`) never both
    /// read the same value or the same floor file. Every `write` begins so (`immediate`); the name says why these
    /// callers need it.
    func writeLocked<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        try self.write(body)
    }

    static func immediate<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        try Self.transaction(db, "BEGIN IMMEDIATE TRANSACTION", body)
    }

    /// `Store.immediate` with the store's held statements (`control(_:_:_:)`).
    func immediate<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        try self.begin(db)
        let result: T
        do {
            result = try body(db)
            if !db.isInsideTransaction { throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted") }
        } catch {
            self.seenChanged()
            if db.isInsideTransaction {
                do { try db.rollback() } catch {}
            }
            throw error
        }
        try self.commit(db)
        return result
    }

    /// `body` in one transaction begun by `begin` (GRDB's `inTransaction`, its statements prepared once: see
    /// `control`): committed if it returns; rolled back if it or the commit throws.
    static func transaction<T>(_ db: Database, _ begin: String, _ body: (Database) throws -> T) throws -> T {
        try Self.control(db, begin)
        let result: T
        do {
            result = try body(db)
            // SQLite ended the transaction after an error the body did not throw: SQLITE_ABORT, as GRDB says it.
            if !db.isInsideTransaction { throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted") }
        } catch {
            if db.isInsideTransaction {
                do { try db.rollback() } catch {}
            }
            throw error
        }
        try Self.commit(db)
        return result
    }

    /// Reads outside an explicit transaction: each statement sees a consistent state. (GRDB's `read` toggles
    /// `PRAGMA query_only` around every call, which invalidates prepared statements; that cost dominated the
    /// simulator's profile.)
    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            if self.inGroup { return try self.groupedRead(body) }
            return try self.db.inDatabase(body)
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// Folds the write-ahead log back into the database file and empties it (a relay does this when it stops, so
    /// the data directory can be copied as it is). Waits for another process's write like any write does.
    public func checkpoint() throws(StoreError) {
        guard !self.configuration.readOnly, !self.configuration.inMemory else { return }
        do {
            try self.db.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        } catch {
            throw StoreError.from(error, path: self.path)
        }
    }

    // MARK: Counters

    static func meta(_ db: Database, _ key: String) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?"), arguments: [key]) ?? 0
    }

    static func setMeta(_ db: Database, _ key: String, _ value: Int64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .execute(arguments: [key, value])
    }

    /// Moves the counters in the database up to the floor file (they are behind it when the database is new,
    /// restored from an older copy, or the old one was moved aside). Returns what it did, or nil.
    static func applyFloor(_ floor: CounterFloor, db: DatabaseQueue) throws -> String? {
        return try db.writeWithoutTransaction { db in try Self.immediate(db) { db -> String? in
            let v = try floor.read()
            var done: [String] = []
            if try Self.meta(db, "packet.counter") < v.packetCounter {
                try Self.setMeta(db, "packet.counter", v.packetCounter)
                done.append("packet counters continue from \(v.packetCounter)")
            }
            // The database holds the next value and the reserved ceiling; the floor, the ceiling.
            if try max(Self.meta(db, "bundle.sequence"), Self.meta(db, "bundle.sequence.reserved")) < v.bundleSequence {
                try Self.setMeta(db, "bundle.sequence", v.bundleSequence)
                try Self.setMeta(db, "bundle.sequence.reserved", v.bundleSequence)
                done.append("bundle sequence numbers from \(v.bundleSequence)")
            }
            if try max(Self.meta(db, "transfer.next"), Self.meta(db, "transfer.reserved")) < v.transfer {
                try Self.setMeta(db, "transfer.next", v.transfer)
                try Self.setMeta(db, "transfer.reserved", v.transfer)
                done.append("transfer numbers from \(v.transfer)")
            }
            guard !done.isEmpty else { return nil }
            return "the database is behind \((floor.path as NSString).lastPathComponent) (new, restored or moved aside): "
                + done.joined(separator: ", ") + ", so no packet nonce or bundle id is used twice"
        } }
    }

    /// Raises the floor file (when there is one) before the values up to `v` are used.
    func raiseFloor(_ v: CounterFloor.Values) throws(StoreError) {
        try self.configuration.floor?.raise(to: v)
    }

    /// The block size of bundle sequence numbers and transfer numbers reserved ahead in the floor file.
    static let reserveBlock: Int64 = 256

    /// The next bundle sequence number of this node's own bundles (durable: never handed out twice, even when the
    /// database is lost, thanks to the floor file written before each block of 256 is used).
    public func nextSequence() throws(StoreError) -> UInt32 {
        try self.writeLocked { db in
            let v = self.notHandedOut("bundle.sequence", try Self.meta(db, "bundle.sequence"))
            if v >= (try Self.meta(db, "bundle.sequence.reserved")) {
                let ceiling = v + Self.reserveBlock
                try self.raiseFloor(CounterFloor.Values(bundleSequence: ceiling))
                try Self.setMeta(db, "bundle.sequence.reserved", ceiling)
            }
            try Self.setMeta(db, "bundle.sequence", v + 1)
            self.handOut("bundle.sequence", v + 1)
            return UInt32(truncatingIfNeeded: v)
        }
    }

    /// Reserves `count` packet counters durably before they are used, so a restart never reuses one (nor a new
    /// database: the floor file is raised first). Counters never wrap (SPEC 3.3 rule 4): empty once exhausted.
    public func reservePacketCounters(_ count: UInt32 = 1_024) throws(StoreError) -> Range<UInt32> {
        try self.writeLocked { db in
            let v = min(self.notHandedOut("packet.counter", try Self.meta(db, "packet.counter")), Int64(UInt32.max))
            let end = min(v + Int64(count), Int64(UInt32.max))
            try self.raiseFloor(CounterFloor.Values(packetCounter: end))
            try Self.setMeta(db, "packet.counter", end)
            self.handOut("packet.counter", end)
            return UInt32(v)..<UInt32(end)
        }
    }

    /// Reserves a block of transfer numbers (SPEC 8.2): absolute values, never handed out twice by this node; a
    /// transfer uses the value modulo 2^14, so a number comes back only after 16,384 transfers.
    public func reserveTransferNumbers(_ count: Int64 = 256) throws(StoreError) -> Range<Int64> {
        try self.writeLocked { db in
            let v = self.notHandedOut("transfer.next", max(try Self.meta(db, "transfer.next"), try Self.meta(db, "transfer.reserved")))
            let end = v + count
            try self.raiseFloor(CounterFloor.Values(transfer: end))
            try Self.setMeta(db, "transfer.next", end)
            try Self.setMeta(db, "transfer.reserved", end)
            self.handOut("transfer.next", end)
            return v..<end
        }
    }

    // MARK: Replay windows

    /// Each sender's packet-counter windows (SPEC 4.8), as kept by `saveReplayWindow`.
    public func replayWindows() throws(StoreError) -> [NodeID: ReplayWindow] {
        try self.read { db in
            var out: [NodeID: ReplayWindow] = [:]
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT node, state FROM replay_window")) {
                guard let id = NodeID(bytes: [UInt8](r["node"] as Data)) else { continue }
                let state = [UInt8](r["state"] as Data)
                // Kept as JSON by earlier versions (it starts with `{`), in the stored form since.
                if state.first == UInt8(ascii: "{") {
                    out[id] = try JSONDecoder().decode(ReplayWindow.self, from: Data(state))
                } else {
                    out[id] = try ReplayWindow(stored: state)
                }
            }
            return out
        }
    }

    /// Keeps a sender's windows, so packets accepted before a restart are replays after it.
    /// One statement, held prepared: one is written for each packet received.
    public func saveReplayWindow(_ w: ReplayWindow, for sender: NodeID) throws(StoreError) {
        let node = sender.bytes, state = w.stored
        try self.writeAlone(expiry: false) { db in
            try node.withUnsafeBytes { node in
                try state.withUnsafeBytes { state in
                    try self.runHeld(db, .replayWindow, """
                        INSERT INTO replay_window (node, state) VALUES (?, ?) ON CONFLICT(node) DO UPDATE SET state = excluded.state
                        """) { raw in
                        bindBlob(raw, 1, node)
                        bindBlob(raw, 2, state)
                    }
                }
            }
        }
    }

    public func setQuiet(_ on: Bool) throws(StoreError) {
        try self.writeAlone { db in try Self.setMeta(db, "quiet", on ? 1 : 0) }
    }

    public func isQuiet() throws(StoreError) -> Bool {
        try self.read { db in try Self.meta(db, "quiet") != 0 }
    }

    // MARK: Events

    static func event(
        _ db: Database, _ type: StoreEvent.Kind, at: Int64, bundle: BundleID?, kind: Kind? = nil,
        priority: PriorityClass? = nil, neighbour: String? = nil, detail: String? = nil, local: Bool = false
    ) throws {
        // Prepared once per connection, as every frequent statement (parsing it again at each entry of the feed showed
        // in a 1,000-relay drill's profile).
        try db.cachedStatement(
            sql: "INSERT INTO event (at, type, bundle, kind, priority, neighbour, detail, local) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [at, type.rawValue, bundle?.description, kind?.description, priority.map { Int($0.rawValue) }, neighbour, detail, local])
    }

    /// A change-feed row. `local` is read from its column; a store opened read-only before migration v8-feed-local
    /// ran has none, and then the text people read says it.
    static func feedEntry(_ r: Row) -> StoreEvent {
        let type = StoreEvent.Kind(rawValue: r["type"]) ?? .removed
        let detail: String? = r["detail"]
        let local = (r["local"] as Bool?) ?? (type == .enqueued && detail?.contains(", local") == true)
        return StoreEvent(seq: r["seq"], at: r["at"], type: type, bundle: r["bundle"], kind: r["kind"], priority: r["priority"],
                          neighbour: r["neighbour"], detail: detail, local: local)
    }

    /// Change-feed entries with a sequence number above `after`, oldest first.
    public func events(after: Int64, limit: Int = 1_000) throws(StoreError) -> [StoreEvent] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [after, limit]).map(Self.feedEntry)
        }
    }

    /// The newest change-feed sequence number (0 when empty).
    public func lastEventSeq() throws(StoreError) -> Int64 {
        try self.read { db in try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(seq) FROM event")) ?? 0 }
    }

    // MARK: Accepting bundles

    /// Stores a bundle: made on this node (`local`) or received from a neighbour. Drops duplicates and expired
    /// bundles; makes room under the quota by evicting lower classes, oldest first, never a higher class.
    /// A local submission that cannot fit throws `quotaFull`: nothing is dropped silently.
    @discardableResult
    public func insert(_ bundle: CourierBundle, now: Int64, local: Bool, custody: Bool, from: String? = nil) throws(StoreError) -> Acceptance {
        try self.insert([bundle], now: now, local: local, custody: custody, from: from)[0]
    }

    /// Stores several bundles in one transaction (one fsync).
    public func insert(_ bundles: [CourierBundle], now: Int64, local: Bool, custody: Bool, from: String? = nil) throws(StoreError) -> [Acceptance] {
        try self.insertReporting(bundles, now: now, local: local, custody: custody, from: from).results
    }

    /// `insert`, also returning what the quota pushed out, with what the engine needs to tell their origins.
    /// `classes` (one per bundle) is the priority class each is queued in, when the engine bounds what the
    /// network claims (its P override); by default the bundle's own.
    /// `again`: a bundle seen before but no longer held is stored all the same (a directed bundle handed back to a
    /// relay that passed it on earlier: taking custody again, SPEC 8.5, directed bundles, rule 2); one still held is a duplicate.
    public func insertReporting(_ bundles: [CourierBundle], now: Int64, local: Bool, custody: Bool, from: String? = nil,
                                classes: [PriorityClass]? = nil, again: Bool = false)
        throws(StoreError) -> (results: [Acceptance], evicted: [Expired])
    {
        let quota = self.quotaBytes
        let (results, evictedLog) = try self.write { db -> ([Acceptance], [Expired]) in
            var out: [Acceptance] = []
            var evictedLog: [Expired] = []
            let nowMinutes = UInt64(CourierTime.minutes(unixSeconds: now))
            for (index, bundle) in bundles.enumerated() {
                if bundle.expires <= nowMinutes { out.append(.expired); continue }
                let cls = classes.map { $0[index] } ?? bundle.priority
                let id = bundle.id
                let seen = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM seen WHERE origin = ? AND created = ? AND sequence = ?"), arguments: [id.origin.rawValue, id.created, id.sequence]) ?? false
                if seen {
                    guard again else { out.append(.duplicate); continue }
                    let held = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM bundle WHERE origin = ? AND created = ? AND sequence = ?"), arguments: [id.origin.rawValue, id.created, id.sequence]) ?? false
                    if held { out.append(.duplicate); continue }
                }
                let data = bundle.encode()
                let p = Int(cls.rawValue)
                // Quota: evict bundles held only to pass on (floods) of a lower class (higher number), then of the
                // same class, oldest first; bundles in custody (directed, ours to deliver) only as the last resort,
                // and only for a more urgent class. Never a more urgent class.
                var queued = try Self.meta(db, "queued.bytes")
                var evicted: [BundleID] = []
                if queued + Int64(data.count) > Int64(quota) {
                    let need = queued + Int64(data.count) - Int64(quota)
                    let candidates = try Row.fetchAll(db.cachedStatement(sql: """
                        SELECT rowid, origin, created, sequence, size, custody, kind, priority, slot, dest_type, dest, local FROM bundle
                        WHERE (custody = 0 AND priority >= ?) OR (custody != 0 AND priority > ?)
                        ORDER BY custody ASC, priority DESC, received ASC
                        """), arguments: [p, p])
                    var freed: Int64 = 0
                    var victims: [Row] = []
                    for r in candidates where freed < need {
                        victims.append(r)
                        freed += r["size"] as Int64
                    }
                    if freed < need {
                        if local { throw StoreError.quotaFull(needed: data.count, quota: quota, priority: cls.rawValue) }
                        try Self.event(db, .refused, at: now, bundle: id, kind: bundle.kind, priority: cls,
                                       neighbour: from, detail: "queue full (\(data.count) bytes)")
                        try Self.bump(db, "refused.total")
                        out.append(.refused)
                        continue
                    }
                    for v in victims {
                        let vid = try BundleID(origin: ShortID(UInt32(v["origin"] as Int64)), created: UInt32(v["created"] as Int64), sequence: UInt32(v["sequence"] as Int64))
                        let inCustody = (v["custody"] as Int64) != 0
                        try Self.remove(db, rowid: v["rowid"], size: v["size"], priority: v["priority"], slot: v["slot"])
                        try Self.event(db, .evicted, at: now, bundle: vid, kind: Kind(code: UInt8(v["kind"] as Int64)),
                                       priority: PriorityClass(rawValue: UInt8(v["priority"] as Int64)),
                                       detail: inCustody ? "quota, was in our custody" : "quota")
                        try Self.bump(db, "evicted.total")
                        evicted.append(vid)
                        evictedLog.append(Expired(id: vid, kind: Kind(code: UInt8(v["kind"] as Int64)),
                                                  destination: Destination(storeType: v["dest_type"], value: v["dest"]),
                                                  custody: inCustody, isLocal: (v["local"] as Int64) != 0, unread: false))
                    }
                    queued = try Self.meta(db, "queued.bytes")
                }
                // Fair queueing: an origin's next bundle goes one slot after its previous one, and never before
                // the class's current position, so a chatty origin cannot starve the others.
                let vmin = try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(slot) FROM bundle WHERE priority = ?"), arguments: [p])
                let vclock = try vmin ?? Self.meta(db, "vclock.\(p)")
                let last = try Int64.fetchOne(db.cachedStatement(sql: "SELECT last_slot FROM origin_slot WHERE origin = ? AND priority = ?"), arguments: [id.origin.rawValue, p])
                let slot = max(vclock, (last ?? -1) + 1)
                try db.cachedStatement(sql: """
                    INSERT INTO origin_slot (origin, priority, last_slot) VALUES (?, ?, ?)
                    ON CONFLICT(origin, priority) DO UPDATE SET last_slot = excluded.last_slot
                    """).execute(arguments: [id.origin.rawValue, p, slot])
                let (dt, dv) = bundle.destination.storeColumns
                try db.cachedStatement(sql: """
                    INSERT INTO bundle (origin, created, sequence, digest, kind, priority, dest_type, dest, expires,
                                        received, slot, size, custody, local, data)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [id.origin.rawValue, id.created, id.sequence, id.digest, bundle.kind.code, p, dt, dv,
                                     Int64(bundle.expires), now, slot, data.count, custody, local, Data(data)])
                let rowid = db.lastInsertedRowID
                self.seenChanged()
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO seen (origin, created, sequence, expires, digest) VALUES (?, ?, ?, ?, ?)").execute(arguments: [id.origin.rawValue, id.created, id.sequence, Int64(bundle.expires), id.digest])
                try Self.setMeta(db, "queued.bytes", queued + Int64(data.count))
                try Self.event(db, .enqueued, at: now, bundle: id, kind: bundle.kind, priority: cls,
                               neighbour: from, detail: "\(bundle.destination.label), \(data.count) bytes\(local ? ", local" : "")\(cls != bundle.priority ? ", queued as \(cls) (its header claims \(bundle.priority))" : "")",
                               local: local)
                if custody {
                    try Self.event(db, .custodyTaken, at: now, bundle: id, kind: bundle.kind, priority: cls, neighbour: from)
                }
                out.append(.stored(rowid: rowid, evicted: evicted))
            }
            try self.pruneEvents(db)
            return (out, evictedLog)
        }
        for e in evictedLog {
            if e.custody { self.logger.warning("evicted a bundle in our custody to make room", metadata: ["bundle.id": "\(e.id)"]) }
            else { self.logger.info("evicted a bundle to make room", metadata: ["bundle.id": "\(e.id)"]) }
        }
        return (results, evictedLog)
    }

    static func bump(_ db: Database, _ key: String, by n: Int64 = 1) throws {
        try self.setMeta(db, key, try self.meta(db, key) + n)
    }

    /// Removes a bundle row, keeps the byte total and the class's fair-queueing clock.
    static func remove(_ db: Database, rowid: Int64, size: Int64, priority: Int64, slot: Int64) throws {
        try db.cachedStatement(sql: "DELETE FROM bundle WHERE rowid = ?").execute(arguments: [rowid])
        try self.bump(db, "queued.bytes", by: -size)
        if slot > (try self.meta(db, "vclock.\(priority)")) { try self.setMeta(db, "vclock.\(priority)", slot) }
    }

    func pruneEvents(_ db: Database) throws {
        let last = try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(seq) FROM event")) ?? 0
        let keep = Int64(self.configuration.eventRetention)
        // Prune in steps of 1% so the feed's DELETE runs rarely.
        if last % max(1, keep / 100) == 0 {
            try db.cachedStatement(sql: "DELETE FROM event WHERE seq <= ?").execute(arguments: [last - keep])
        }
    }

    /// Whether this node has seen the bundle id (stored, delivered or relayed) and it has not expired.
    public func hasSeen(_ id: BundleID) throws(StoreError) -> Bool {
        // Held prepared and stepped raw: looked up for each bundle a receipt heard lists (2% of a 1,000-relay drill
        // through GRDB's cursor and statement cache).
        try self.read { db in
            try self.existsHeld(db, .hasSeen, "SELECT 1 FROM seen WHERE origin = ? AND created = ? AND sequence = ?") { raw in
                sqlite3_bind_int64(raw, 1, Int64(id.origin.rawValue))
                sqlite3_bind_int64(raw, 2, Int64(id.created))
                sqlite3_bind_int64(raw, 3, Int64(id.sequence))
            }
        }
    }

    // MARK: Queries

    /// Columns by position (the bundle table's declared order), which is much faster than by name.
    static func queued(_ r: Row) throws -> QueuedBundle {
        QueuedBundle(
            rowid: r[0],
            id: try BundleID(origin: ShortID(UInt32(r[1] as Int64)), created: UInt32(r[2] as Int64), sequence: UInt32(r[3] as Int64)),
            kind: Kind(code: UInt8(r[5] as Int64)), priority: PriorityClass(rawValue: UInt8(r[6] as Int64)) ?? .bulk,
            destination: Destination(storeType: r[7], value: r[8]), slot: r[11], received: r[10],
            size: r[12], custody: (r[13] as Int64) != 0, isLocal: (r[14] as Int64) != 0,
            data: [UInt8](r[15] as Data))
    }

    static let bundleColumns = "rowid, origin, created, sequence, digest, kind, priority, dest_type, dest, expires, received, slot, size, custody, local, data"
    static let bundleByIDSQL = "SELECT \(bundleColumns) FROM bundle WHERE origin = ? AND created = ? AND sequence = ?"

    /// What a summary (and the engine's index of held bundles) needs to know of every held bundle, without the
    /// bundle bytes: with its place in the queue's order (`priority`, `slot`, `received`, `rowid`: the order of
    /// `held` and of the scheduler) and when it expires (minutes, as in the bundle).
    public struct Held: Sendable, Hashable {
        public let id: BundleID
        public let digest: UInt32
        public let destination: Destination
        public let custody: Bool
        public let priority: Int64
        public let slot: Int64
        public let received: Int64
        public let rowid: Int64
        public let expires: Int64

        public init(id: BundleID, digest: UInt32, destination: Destination, custody: Bool, priority: Int64, slot: Int64,
                    received: Int64, rowid: Int64, expires: Int64) {
            self.id = id
            self.digest = digest
            self.destination = destination
            self.custody = custody
            self.priority = priority
            self.slot = slot
            self.received = received
            self.rowid = rowid
            self.expires = expires
        }

        /// The same facts of a bundle read whole (`expires` from the bundle itself).
        public init(_ q: QueuedBundle, expires: Int64) {
            self.init(id: q.id, digest: q.id.digest, destination: q.destination, custody: q.custody, priority: Int64(q.priority.rawValue),
                      slot: q.slot, received: q.received, rowid: q.rowid, expires: expires)
        }
    }

    /// The copy budgets said for held bundles (SPEC 5.14; a bundle without one is not listed).
    public func copyBudgets() throws(StoreError) -> [BundleID: Int] {
        try self.read { db in
            var out: [BundleID: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT origin, created, sequence, copies FROM bundle WHERE copies IS NOT NULL")) {
                let id = try BundleID(origin: ShortID(UInt32(row[0] as Int64)), created: UInt32(row[1] as Int64), sequence: UInt32(row[2] as Int64))
                out[id] = Int(row[3] as Int64)
            }
            return out
        }
    }

    /// Keeps a held bundle's copy budget (SPEC 5.14); nothing if the bundle is not held.
    public func setCopyBudget(_ id: BundleID, copies: Int) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "UPDATE bundle SET copies = ? WHERE origin = ? AND created = ? AND sequence = ?")
                .execute(arguments: [copies, id.origin.rawValue, id.created, id.sequence])
        }
    }

    /// A held bundle with no hop left given the hop limit of a copy heard later with some left (SPEC 6.10): `first` is
    /// that copy's byte 0 (hop limit and kind). Nothing if the bundle is not held, has hops left, or the copy has none.
    /// Returns whether it was raised.
    @discardableResult
    public func raiseHopLimit(_ id: BundleID, first: UInt8) throws(StoreError) -> Bool {
        try self.write { db in
            // The hop limit is byte 0's upper nibble; the kind, the same for every copy, its lower.
            guard var data = try Data.fetchOne(db.cachedStatement(sql: "SELECT data FROM bundle WHERE origin = ? AND created = ? AND sequence = ?"),
                                               arguments: [id.origin.rawValue, id.created, id.sequence]),
                  let old = data.first, old >> 4 == 0, first >> 4 > 0 else { return false }
            data[data.startIndex] = first & 0xF0 | old & 0x0F
            try db.cachedStatement(sql: "UPDATE bundle SET data = ? WHERE origin = ? AND created = ? AND sequence = ?")
                .execute(arguments: [data, id.origin.rawValue, id.created, id.sequence])
            return true
        }
    }

    /// Every held bundle in the queue's order (class, fair slot, arrival): one query, on the schedule index.
    public func held(limit: Int = 100_000) throws(StoreError) -> [Held] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT origin, created, sequence, digest, dest_type, dest, custody, priority, slot, received, rowid, expires
                FROM bundle INDEXED BY bundle_schedule ORDER BY priority, slot, received, rowid LIMIT ?
                """), arguments: [limit]).map {
                Held(id: try BundleID(origin: ShortID(UInt32($0[0] as Int64)), created: UInt32($0[1] as Int64), sequence: UInt32($0[2] as Int64)),
                     digest: UInt32(truncatingIfNeeded: $0[3] as Int64), destination: Destination(storeType: $0[4], value: $0[5]),
                     custody: ($0[6] as Int64) != 0, priority: $0[7], slot: $0[8], received: $0[9], rowid: $0[10], expires: $0[11])
            }
        }
    }

    /// The next bundles to offer a neighbour (or any link, with nil): by class, then fair slot across origins, then
    /// age; skipping bundles the neighbour already has or whose retry time has not come.
    public func schedule(for neighbour: NodeID?, now: Int64, limit: Int) throws(StoreError) -> [QueuedBundle] {
        try self.read { db in
            if let n = neighbour {
                return try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT b.rowid, b.origin, b.created, b.sequence, b.digest, b.kind, b.priority, b.dest_type, b.dest, b.expires, b.received, b.slot, b.size, b.custody, b.local, b.data FROM bundle b INDEXED BY bundle_schedule
                    WHERE NOT EXISTS (SELECT 1 FROM transmission t WHERE t.bundle = b.rowid AND t.neighbour = ?
                                      AND (t.done = 1 OR t.next_retry > ?))
                    ORDER BY b.priority, b.slot, b.received LIMIT ?
                    """), arguments: [Data(n.bytes), now, limit]).map(Self.queued)
            }
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.bundleColumns) FROM bundle INDEXED BY bundle_schedule ORDER BY priority, slot, received LIMIT ?"), arguments: [limit]).map(Self.queued)
        }
    }

    public func bundle(_ id: BundleID) throws(StoreError) -> QueuedBundle? {
        try self.read { db in
            // The statement held (its SQL not built and hashed at each of the many reads of one bundle).
            do {
                return try Row.fetchOne(self.held(db, .bundleByID, Self.bundleByIDSQL), arguments: [id.origin.rawValue, id.created, id.sequence]).map(Self.queued)
            } catch {
                self.dropHeld(.bundleByID)
                throw error
            }
        }
    }

    /// Bundles held whose digests are in `digests` (answering a summary).
    public func bundles(digests: [UInt32]) throws(StoreError) -> [QueuedBundle] {
        try self.read { db in
            var out: [QueuedBundle] = []
            // The statement looked up once, not its SQL built and hashed again for each digest.
            let byDigest = try db.cachedStatement(sql: "SELECT \(Self.bundleColumns) FROM bundle WHERE digest = ?")
            for d in digests {
                out += try Row.fetchAll(byDigest, arguments: [d]).map(Self.queued)
            }
            return out
        }
    }

    /// Digests of every bundle held, highest priority first (for a summary).
    public func digests() throws(StoreError) -> [UInt32] {
        try self.read { db in
            try Int64.fetchAll(db.cachedStatement(sql: "SELECT digest FROM bundle ORDER BY priority, slot")).map { UInt32(truncatingIfNeeded: $0) }
        }
    }

    public func count() throws(StoreError) -> Int {
        try self.read { db in try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM bundle")) ?? 0 }
    }

    // MARK: Transmission state and custody

    func rowid(_ db: Database, _ id: BundleID) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT rowid, kind, priority, size, slot, custody FROM bundle WHERE origin = ? AND created = ? AND sequence = ?"), arguments: [id.origin.rawValue, id.created, id.sequence])
    }

    /// Records fragments sent to a neighbour and when to retry if they are not acknowledged.
    public func recordSent(_ id: BundleID, to neighbour: NodeID, transfer: UInt32, fragments: Int, indices: [Int],
                           nextRetry: Int64, now: Int64) throws(StoreError) {
        try self.write { db in
            guard let b = try self.rowid(db, id) else { return }
            let existing = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM transmission WHERE bundle = ? AND neighbour = ?"), arguments: [b["rowid"] as Int64, Data(neighbour.bytes)])
            var sent = existing.map { [UInt8]($0["sent"] as Data) } ?? []
            for i in indices { Bitmap.set(&sent, i) }
            try db.cachedStatement(sql: """
                INSERT INTO transmission (bundle, neighbour, transfer, fragments, sent, acked, attempts, next_retry, done)
                VALUES (?, ?, ?, ?, ?, x'', 1, ?, 0)
                ON CONFLICT(bundle, neighbour) DO UPDATE SET transfer = excluded.transfer, fragments = excluded.fragments,
                    sent = excluded.sent, attempts = attempts + 1, next_retry = excluded.next_retry
                """).execute(arguments: [b["rowid"] as Int64, Data(neighbour.bytes), transfer, fragments, Data(sent), nextRetry])
            try Self.event(db, .fragmentSent, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                           priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)), neighbour: neighbour.short.description,
                           detail: fragments == 1 ? "whole" : "\(indices.count) of \(fragments) fragments")
        }
    }

    /// Applies an acknowledgement from a neighbour. Returns true when the neighbour now has the whole bundle.
    @discardableResult
    public func recordAck(_ id: BundleID, from neighbour: NodeID, ack: AckEntry, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            guard let b = try self.rowid(db, id),
                  let t = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM transmission WHERE bundle = ? AND neighbour = ?"), arguments: [b["rowid"] as Int64, Data(neighbour.bytes)])
            else { return false }
            let fragments: Int = t["fragments"]
            var acked = [UInt8](t["acked"] as Data)
            let before = (0..<fragments).filter { Bitmap.get(acked, $0) }.count
            for i in 0..<fragments where ack.has(i) { Bitmap.set(&acked, i) }
            let after = (0..<fragments).filter { Bitmap.get(acked, $0) }.count
            let done = after == fragments
            // State never goes backwards: bits are only ever added.
            try db.cachedStatement(sql: "UPDATE transmission SET acked = ?, done = ? WHERE bundle = ? AND neighbour = ?").execute(arguments: [Data(acked), done, b["rowid"] as Int64, Data(neighbour.bytes)])
            if after > before {
                try Self.event(db, .acknowledged, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                               priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)), neighbour: neighbour.short.description,
                               detail: "\(after) of \(fragments)")
            }
            return done
        }
    }

    public func transmission(_ id: BundleID, to neighbour: NodeID) throws(StoreError) -> Transmission? {
        try self.read { db in
            guard let b = try self.rowid(db, id) else { return nil }
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM transmission WHERE bundle = ? AND neighbour = ?"), arguments: [b["rowid"] as Int64, Data(neighbour.bytes)]).map {
                Transmission(transfer: UInt32(truncatingIfNeeded: $0["transfer"] as Int64), fragments: $0["fragments"],
                             sent: [UInt8]($0["sent"] as Data), acked: [UInt8]($0["acked"] as Data), attempts: $0["attempts"],
                             nextRetry: $0["next_retry"], done: ($0["done"] as Int64) != 0)
            }
        }
    }

    /// Custody moved on: the next hop acknowledged a directed bundle. It leaves our queue.
    public func releaseCustody(_ id: BundleID, to neighbour: NodeID, now: Int64) throws(StoreError) {
        try self.write { db in
            guard let b = try self.rowid(db, id) else { return }
            try Self.remove(db, rowid: b["rowid"], size: b["size"], priority: b["priority"], slot: b["slot"])
            try Self.event(db, .custodyReleased, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                           priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)), neighbour: neighbour.short.description)
        }
    }

    /// Removes a bundle for another reason (delivered here, replaced): logged in the feed.
    public func remove(_ id: BundleID, reason: String, now: Int64) throws(StoreError) {
        try self.write { db in
            guard let b = try self.rowid(db, id) else { return }
            try Self.remove(db, rowid: b["rowid"], size: b["size"], priority: b["priority"], slot: b["slot"])
            try Self.event(db, .removed, at: now, bundle: id, kind: Kind(code: UInt8(b["kind"] as Int64)),
                           priority: PriorityClass(rawValue: UInt8(b["priority"] as Int64)), detail: reason)
        }
    }

    // MARK: Inbox

    /// Delivers a bundle's content to the local inbox. Idempotent: a second delivery of the same id is ignored
    /// and returns false.
    @discardableResult
    /// `proven`: the origin signature verified with the origin's known keys (SPEC 6.12), shown in the inbox.
    /// Throws `inboxFull` (recorded in the feed and the totals) when the inbox bound (`inboxBytes`) leaves no room
    /// even after removing the oldest read messages: unread messages are never removed.
    public func deliver(_ bundle: CourierBundle, content: [UInt8], now: Int64, proven: Bool = false) throws(StoreError) -> Bool {
        let limit = self.inboxBytes
        var removedRead = 0
        let delivered = try self.write { db -> Bool? in
            let id = bundle.id
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM inbox WHERE origin = ? AND created = ? AND sequence = ?"),
                                 arguments: [id.origin.rawValue, id.created, id.sequence]) == true { return false }
            // The inbox bound: the oldest read messages make room; unread ones are never removed.
            var used = try Int64.fetchOne(db.cachedStatement(sql: "SELECT total(length(content)) FROM inbox")).map { $0 } ?? 0
            if used + Int64(content.count) > Int64(limit) {
                for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT rowid, origin, created, sequence, length(content) AS n FROM inbox WHERE read != 0 ORDER BY rowid")) {
                    guard used + Int64(content.count) > Int64(limit) else { break }
                    try db.cachedStatement(sql: "DELETE FROM inbox WHERE rowid = ?").execute(arguments: [r["rowid"] as Int64])
                    used -= r["n"] as Int64
                    removedRead += 1
                    try Self.event(db, .removed, at: now, bundle: try BundleID(origin: ShortID(UInt32(r["origin"] as Int64)), created: UInt32(r["created"] as Int64), sequence: UInt32(r["sequence"] as Int64)),
                                   detail: "inbox full (\(limit) bytes, inbox-mb): the oldest read message makes room")
                    try Self.bump(db, "inbox.removed")
                }
                if used + Int64(content.count) > Int64(limit) {
                    try Self.event(db, .refused, at: now, bundle: id, kind: bundle.kind, priority: bundle.priority,
                                   detail: "inbox full: \(used) of \(limit) bytes (inbox-mb) are unread messages; read them (`relay inbox --mark-read`) or raise inbox-mb")
                    try Self.bump(db, "refused.total")
                    try Self.bump(db, "inbox.refused")
                    return nil
                }
            }
            let (dt, dv) = bundle.destination.storeColumns
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO inbox (origin, created, sequence, kind, dest_type, dest, respond_by, reference, content, received, encrypted, proven)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id.origin.rawValue, id.created, id.sequence, bundle.kind.code, dt, dv,
                                 bundle.respondBy, bundle.reference?.description, Data(content), now, bundle.isEncrypted, proven])
            guard db.changesCount > 0 else { return false }
            try self.insertSeen(db, bundle)
            try Self.event(db, .delivered, at: now, bundle: id, kind: bundle.kind, priority: bundle.priority,
                           detail: "\(content.count) bytes\(proven ? ", origin proven" : ", origin NOT proven")")
            try Self.capturePactRecord(db, bundle, content: content, now: now, proven: proven)
            return true
        }
        if removedRead > 0 {
            self.logger.warning("inbox full: removed the oldest read messages to make room", metadata: ["count": "\(removedRead)", "inbox.limit": "\(limit)"])
        }
        guard let delivered else {
            self.logger.warning("inbox full of unread messages: a new message was refused", metadata: ["bundle.id": "\(bundle.id)", "inbox.limit": "\(limit)"])
            throw .inboxFull(limit: limit)
        }
        return delivered
    }

    public func inbox(unreadOnly: Bool = false, limit: Int = 1_000) throws(StoreError) -> [InboxMessage] {
        try self.inboxRows(unreadOnly ? "WHERE read = 0 ORDER BY rowid LIMIT ?" : "ORDER BY rowid LIMIT ?", [limit])
    }

    public func inboxMessage(_ id: BundleID) throws(StoreError) -> InboxMessage? {
        try self.inboxRows("WHERE origin = ? AND created = ? AND sequence = ?", [id.origin.rawValue, id.created, id.sequence]).first
    }

    func inboxRows(_ clause: String, _ args: StatementArguments) throws(StoreError) -> [InboxMessage] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM inbox \(clause)"), arguments: args).map {
                InboxMessage(
                    rowid: $0["rowid"],
                    id: try BundleID(origin: ShortID(UInt32($0["origin"] as Int64)), created: UInt32($0["created"] as Int64), sequence: UInt32($0["sequence"] as Int64)),
                    kind: Kind(code: UInt8($0["kind"] as Int64)), destination: Destination(storeType: $0["dest_type"], value: $0["dest"]),
                    respondBy: ($0["respond_by"] as Int64?).map { UInt32($0) }, reference: $0["reference"],
                    content: [UInt8]($0["content"] as Data), received: $0["received"], read: ($0["read"] as Int64) != 0,
                    encrypted: ($0["encrypted"] as Int64) != 0, proven: ($0["proven"] as Int64) != 0)
            }
        }
    }

    /// Ids this node has seen (held, delivered, relayed or refused as duplicate) whose lifetime has not passed,
    /// latest-expiring first: what a summary lists so neighbours do not offer them again.
    public func seenIDs(limit: Int = 4_096) throws(StoreError) -> [BundleID] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT origin, created, sequence FROM seen ORDER BY expires DESC LIMIT ?"),
                             arguments: [limit]).map {
                try BundleID(origin: ShortID(UInt32($0[0] as Int64)), created: UInt32($0[1] as Int64), sequence: UInt32($0[2] as Int64))
            }
        }
    }

    /// Digests of the ids `seenIDs` returns, without recomputing them.
    /// Served again from memory while the `seen` table cannot have changed (`SeenCache`): a summary answered for each
    /// neighbour's summary read up to 4,096 rows each time.
    public func seenDigests(limit: Int = 4_096) throws(StoreError) -> [UInt32] {
        try self.read { db in
            // Another connection's commit (a `relay send` beside a running relay) moves PRAGMA data_version.
            let version: Int64
            version = try self.dataVersion(db)
            let generation = self.seenCache.withLock { $0.generation }
            if let hit = self.seenCache.withLock({ c -> [UInt32]? in
                guard let d = c.digests, c.filled == generation, c.dataVersion == version, c.limit == limit else { return nil }
                return d
            }) { return hit }
            let digests = try Int64.fetchAll(db.cachedStatement(sql: "SELECT digest FROM seen ORDER BY expires DESC LIMIT ?"), arguments: [limit])
                .map { UInt32(truncatingIfNeeded: $0) }
            self.seenCache.withLock { c in
                // Kept only if nothing changed `seen` meanwhile.
                if c.generation == generation { (c.digests, c.filled, c.dataVersion, c.limit) = (digests, generation, version, limit) }
            }
            return digests
        }
    }

    /// The database's data version (`PRAGMA data_version`), which other connections' commits move. An in-memory
    /// store's database is private to its one connection: always 0, without a statement (two of them for each
    /// summary answered and each expiry pass, in a simulator's relays).
    func dataVersion(_ db: Database) throws -> Int64 {
        if self.configuration.inMemory { return 0 }
        do { return try Int64.fetchOne(self.held(db, .dataVersion, "PRAGMA data_version")) ?? 0 } catch { self.dropHeld(.dataVersion); throw error }
    }

    /// Called before any statement that changes the `seen` table, and when a group or a write is undone: what
    /// `seenDigests` keeps is read again, and the bound on the rows of `seen` (`seenMayPassLimit`) grows by one. An
    /// undo may bring rows of `waiting` back: it is no longer known to be empty either (`waitingMayGrow`).
    func seenChanged() {
        self.seenCache.withLock { $0.generation &+= 1; $0.digests = nil; $0.changesSinceCount += 1; $0.waitingGeneration &+= 1; $0.writes &+= 1 }
    }

    /// Remembers a bundle's id as seen until it expires (kept if already there; `db.changesCount` says which).
    func insertSeen(_ db: Database, _ bundle: CourierBundle) throws {
        let id = bundle.id
        self.seenChanged()
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO seen (origin, created, sequence, expires, digest) VALUES (?, ?, ?, ?, ?)").execute(arguments: [id.origin.rawValue, id.created, id.sequence, Int64(bundle.expires), id.digest])
    }

    /// `expireBundles`' first question in an in-memory store: whether anything may be due. Its answer is kept with
    /// the earliest expiry of the bundles, the bundles kept unread and the ids seen, and the oldest piece of a
    /// transfer (`ExpiryBound`), and given again from those without reading while nothing was written through the
    /// store (`wrote`: every write but a replay window or a neighbour heard, every change to `seen`, every undo); an
    /// in-memory database has no other connection. The 1,000 relays of a drill each ask once a simulated minute.
    func expiryDueInMemory(nowMinutes: Int64, cutoff: Int64) throws(StoreError) -> Bool {
        if let due = self.seenCache.withLock({ c -> Bool? in
            guard let b = c.expiry, b.writes == c.writes else { return nil }
            return b.due(nowMinutes: nowMinutes, cutoff: cutoff)
        }) { return due }
        let writes = self.seenCache.withLock { $0.writes }
        return try self.read { db in
            if try self.seenMayPassLimit(db) { return true }
            let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT (SELECT min(expires) FROM bundle), (SELECT min(expires) FROM waiting), (SELECT min(expires) FROM seen),
                    (SELECT min(received) FROM reassembly)
                """))
            guard let row else { return true }
            let minutes = [row[0] as Int64?, row[1] as Int64?, row[2] as Int64?].compactMap { $0 }.min()
            let bound = ExpiryBound(writes: writes, minutes: minutes, received: row[3] as Int64?)
            let due = bound.due(nowMinutes: nowMinutes, cutoff: cutoff)
            if !due { self.seenCache.withLock { c in if c.writes == writes { c.expiry = bound } } }
            return due
        }
    }

    /// Called before every write through the store that may change what `expireBundles` removes (all but a replay
    /// window and a neighbour heard), and at every undo: the kept `ExpiryBound` no longer holds.
    func wrote() {
        self.seenCache.withLock { $0.writes &+= 1 }
    }

    /// Whether `seen` may hold more than `seenLimit` rows (the expiry pass then trims it). Counting them
    /// (`count(*)` walks a whole index of a WITHOUT ROWID table) at every pass cost a 1,000-relay drill 7% of its CPU
    /// (each relay's `seen` holds thousands of ids, counted once a simulated minute); so the rows are counted only
    /// when the count last taken plus the changes made since through this store (each statement that changes `seen`
    /// adds at most one row: `seenChanged`) could pass the limit, or another connection committed since
    /// (`PRAGMA data_version`: a `relay send` beside the relay).
    func seenMayPassLimit(_ db: Database) throws -> Bool {
        let version: Int64
        version = try self.dataVersion(db)
        let limit = self.configuration.seenLimit
        let bounded = self.seenCache.withLock { c -> Bool in
            guard let n = c.counted, c.countedAt == version else { return false }
            return n + c.changesSinceCount <= limit
        }
        if bounded { return false }
        let n = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM seen")) ?? 0
        self.seenCache.withLock { ($0.counted, $0.countedAt, $0.changesSinceCount) = (n, version, 0) }
        return n > limit
    }

    /// Ids of bundles delivered here whose lifetime has not passed (a node's summary lists them, so neighbours do
    /// not send them again).
    public func deliveredIDs(limit: Int = 10_000) throws(StoreError) -> [BundleID] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT i.origin, i.created, i.sequence FROM inbox i JOIN seen s
                  ON s.origin = i.origin AND s.created = i.created AND s.sequence = i.sequence
                ORDER BY i.rowid DESC LIMIT ?
                """), arguments: [limit]).map {
                try BundleID(origin: ShortID(UInt32($0[0] as Int64)), created: UInt32($0[1] as Int64), sequence: UInt32($0[2] as Int64))
            }
        }
    }

    public func markRead(_ id: BundleID) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "UPDATE inbox SET read = 1 WHERE origin = ? AND created = ? AND sequence = ?").execute(arguments: [id.origin.rawValue, id.created, id.sequence])
        }
    }

    // MARK: Expiry and housekeeping

    /// Removes bundles whose lifetime has passed (counted, in the change feed), forgets expired ids and stale
    /// reassemblies. Returns the ids expired.
    @discardableResult
    public func expire(now: Int64) throws(StoreError) -> [BundleID] {
        try self.expireBundles(now: now).map(\.id)
    }

    /// A bundle removed because its lifetime passed (or evicted by the quota), with what the engine needs to tell
    /// its origin.
    public struct Expired: Sendable, Hashable {
        public let id: BundleID
        public let kind: Kind
        public let destination: Destination
        public let custody: Bool
        public let isLocal: Bool
        /// It was waiting for its origin's keys (never read).
        public let unread: Bool
    }

    /// `expire(now:)` with the details of each bundle removed, bundles waiting for keys included (given up unread).
    public func expireBundles(now: Int64) throws(StoreError) -> [Expired] {
        let nowMinutes = Int64(CourierTime.minutes(unixSeconds: now))
        // Most passes find nothing to remove (a relay runs one a minute): one read says so, instead of a write
        // transaction of seven statements (a thousand simulated relays spent 4% of their CPU in those). It asks more
        // than the removals below need (a seen table over its limit before its expired rows go, a reassembly row
        // older than the timeout in a transfer with younger ones): then the transaction runs and decides.
        let cutoff = now - self.configuration.reassemblyTimeout
        let due: Bool
        if self.configuration.inMemory {
            due = try self.expiryDueInMemory(nowMinutes: nowMinutes, cutoff: cutoff)
        } else {
            due = try self.read { db in
                try self.seenMayPassLimit(db) || Bool.fetchOne(db.cachedStatement(sql: """
                    SELECT EXISTS (SELECT 1 FROM bundle WHERE expires <= ?1) OR EXISTS (SELECT 1 FROM waiting WHERE expires <= ?1)
                        OR EXISTS (SELECT 1 FROM seen WHERE expires <= ?1) OR EXISTS (SELECT 1 FROM reassembly WHERE received < ?2)
                    """), arguments: [nowMinutes, cutoff]) ?? true
            }
        }
        guard due else { return [] }
        return try self.write { db -> [Expired] in
            let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT rowid, origin, created, sequence, kind, priority, size, slot, dest_type, dest, custody, local FROM bundle WHERE expires <= ?"), arguments: [nowMinutes])
            var out: [Expired] = []
            for r in rows {
                let id = try BundleID(origin: ShortID(UInt32(r["origin"] as Int64)), created: UInt32(r["created"] as Int64), sequence: UInt32(r["sequence"] as Int64))
                let kind = Kind(code: UInt8(r["kind"] as Int64))
                let custody = (r["custody"] as Int64) != 0
                try Self.remove(db, rowid: r["rowid"], size: r["size"], priority: r["priority"], slot: r["slot"])
                try Self.event(db, .expired, at: now, bundle: id, kind: kind,
                               priority: PriorityClass(rawValue: UInt8(r["priority"] as Int64)),
                               detail: custody && (r["dest_type"] as Int64) == 0 ? "lifetime passed before it could be passed on (was in our custody)" : "lifetime passed")
                out.append(Expired(id: id, kind: kind, destination: Destination(storeType: r["dest_type"], value: r["dest"]),
                                   custody: custody, isLocal: (r["local"] as Int64) != 0, unread: false))
            }
            if !out.isEmpty { try Self.bump(db, "expired.total", by: Int64(out.count)) }
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT origin, created, sequence, kind, data, reason FROM waiting WHERE expires <= ?"), arguments: [nowMinutes]) {
                let id = try BundleID(origin: ShortID(UInt32(r["origin"] as Int64)), created: UInt32(r["created"] as Int64), sequence: UInt32(r["sequence"] as Int64))
                let kind = Kind(code: UInt8(r["kind"] as Int64))
                let forDictionary = (r["reason"] as String).hasPrefix("compressed with dictionary")
                try Self.event(db, .gaveUp, at: now, bundle: id, kind: kind, priority: kind.defaultPriority,
                               detail: forDictionary ? "unreadable: its lifetime passed and the dictionary it names never arrived"
                                   : "unreadable: its lifetime passed and the keys of its origin \(id.origin) never arrived")
                try Self.bump(db, "unreadable.total")
                // Its destination (a flood kept for its origin's keys is not reported to that origin: the origin may
                // not exist); a damaged row counts as a flood.
                var destination = Destination.everyone
                do { destination = try CourierBundle(decoding: [UInt8](r["data"] as Data)).destination } catch {
                    self.logger.warning("a bundle kept for its origin's keys is damaged in the database", metadata: ["bundle.id": "\(id)", "error": "\(error)"])
                }
                out.append(Expired(id: id, kind: kind, destination: destination, custody: false, isLocal: false, unread: true))
            }
            try db.cachedStatement(sql: "DELETE FROM waiting WHERE expires <= ?").execute(arguments: [nowMinutes])
            self.seenChanged()
            try db.cachedStatement(sql: "DELETE FROM seen WHERE expires <= ?").execute(arguments: [nowMinutes])
            let seen = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM seen")) ?? 0
            if seen > self.configuration.seenLimit {
                try db.cachedStatement(sql: """
                    DELETE FROM seen WHERE (origin, created, sequence) IN
                        (SELECT origin, created, sequence FROM seen ORDER BY expires LIMIT ?)
                    """).execute(arguments: [seen - self.configuration.seenLimit])
            }
            try db.cachedStatement(sql: """
                DELETE FROM reassembly WHERE (sender, transfer) IN
                    (SELECT sender, transfer FROM reassembly GROUP BY sender, transfer HAVING max(received) < ?)
                """).execute(arguments: [now - self.configuration.reassemblyTimeout])
            return out
        }
    }

    // MARK: Bundles given up on, and bundles waiting for keys

    /// Records a bundle that arrived with its lifetime already passed (SPEC 6.14 step 2: dropped, not stored): seen
    /// (copies that follow are duplicates, until the expiry pass forgets it), an `expired` entry in the feed with
    /// `detail` and the neighbour, and one more in the `relay status` total. Returns false when it was already seen
    /// (nothing recorded again).
    public func expiredOnArrival(_ bundle: CourierBundle, detail: String, from: String?, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            try self.insertSeen(db, bundle)
            guard db.changesCount > 0 else { return false }
            try Self.event(db, .expired, at: now, bundle: bundle.id, kind: bundle.kind, priority: bundle.priority, neighbour: from, detail: detail)
            try Self.bump(db, "expired.total")
            return true
        }
    }

    /// Marks a bundle seen without storing or delivering it (an identity bundle for this node: read, not kept).
    public func markSeen(_ bundle: CourierBundle) throws(StoreError) {
        try self.writeAlone { db in try self.insertSeen(db, bundle) }
    }

    /// Held bundles of one kind from one origin, with their destination and expiry (Courier minutes).
    public func held(kind: Kind, origin: ShortID) throws(StoreError) -> [(id: BundleID, destination: Destination, expires: Int64)] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT created, sequence, dest_type, dest, expires FROM bundle WHERE kind = ? AND origin = ?"),
                             arguments: [kind.code, origin.rawValue]).map {
                (try BundleID(origin: origin, created: UInt32($0[0] as Int64), sequence: UInt32($0[1] as Int64)),
                 Destination(storeType: $0[2], value: $0[3]), $0[4])
            }
        }
    }

    /// Keeps a bundle for this node that it cannot read yet (its origin's keys are unknown), until they arrive or
    /// it expires. Marks it seen. Returns false if it was already kept.
    @discardableResult
    public func keepUnread(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) -> Bool {
        try self.write { db in
            let id = bundle.id
            self.waitingMayGrow()
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO waiting (origin, created, sequence, kind, expires, since, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id.origin.rawValue, id.created, id.sequence, bundle.kind.code, Int64(bundle.expires), now, reason, Data(bundle.encode())])
            guard db.changesCount > 0 else { return false }
            try self.insertSeen(db, bundle)
            try Self.event(db, .waiting, at: now, bundle: id, kind: bundle.kind, priority: bundle.priority, neighbour: from, detail: reason)
            return true
        }
    }

    /// The origins of the bundles kept unread since `keptBy` or earlier, one per bundle, the longest kept first: the
    /// housekeeping pass asks their keys again (`waiting` reads each bundle whole, a thousand relays once a simulated
    /// minute each).
    /// In an in-memory store, nothing is read while `waiting` is known to be empty (`SeenCache.waitingEmpty`): the
    /// 1,000 relays of a drill asked once a simulated minute each, for a table nearly always empty.
    public func waitingOrigins(keptBy: Int64) throws(StoreError) -> [ShortID] {
        if self.configuration.inMemory, self.seenCache.withLock({ $0.waitingEmpty == $0.waitingGeneration }) { return [] }
        return try self.read { db in
            let generation = self.seenCache.withLock { $0.waitingGeneration }
            let origins = try Int64.fetchAll(db.cachedStatement(sql: "SELECT origin FROM waiting WHERE since <= ? ORDER BY since"), arguments: [keptBy])
                .map { ShortID(UInt32(truncatingIfNeeded: $0)) }
            if origins.isEmpty && self.configuration.inMemory,
               try Bool.fetchOne(db.cachedStatement(sql: "SELECT NOT EXISTS (SELECT 1 FROM waiting)")) ?? false {
                self.seenCache.withLock { c in if c.waitingGeneration == generation { c.waitingEmpty = generation } }
            }
            return origins
        }
    }

    /// Called before any statement that may add rows to `waiting`, and at every undo (`seenChanged`): the table is no
    /// longer known to be empty.
    func waitingMayGrow() {
        self.seenCache.withLock { $0.waitingGeneration &+= 1 }
    }

    /// Bundles kept unread (all, or those of one origin), oldest first.
    public func waiting(origin: ShortID? = nil) throws(StoreError) -> [WaitingBundle] {
        try self.read { db in
            let rows: [Row]
            if let o = origin {
                rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM waiting WHERE origin = ? ORDER BY since"), arguments: [o.rawValue])
            } else {
                rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM waiting ORDER BY since"))
            }
            return try rows.map {
                WaitingBundle(id: try BundleID(origin: ShortID(UInt32($0["origin"] as Int64)), created: UInt32($0["created"] as Int64), sequence: UInt32($0["sequence"] as Int64)),
                              kind: Kind(code: UInt8($0["kind"] as Int64)), since: $0["since"], expires: $0["expires"], reason: $0["reason"],
                              data: [UInt8]($0["data"] as Data))
            }
        }
    }

    /// Takes a kept bundle out of the waiting list and forgets it was seen, so it is taken in as if it had just
    /// arrived (its origin's keys came: delivered, flooded on, or given up on like any other).
    public func releaseUnread(_ id: BundleID) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "DELETE FROM waiting WHERE origin = ? AND created = ? AND sequence = ?").execute(arguments: [id.origin.rawValue, id.created, id.sequence])
            self.seenChanged()
            try db.cachedStatement(sql: "DELETE FROM seen WHERE origin = ? AND created = ? AND sequence = ?").execute(arguments: [id.origin.rawValue, id.created, id.sequence])
        }
    }

    /// Forgets a kept bundle: read at last (its delivery is in the feed), or given up on (`gaveUp`: the reason).
    public func dropUnread(_ id: BundleID, gaveUp: String? = nil, now: Int64) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "DELETE FROM waiting WHERE origin = ? AND created = ? AND sequence = ?").execute(arguments: [id.origin.rawValue, id.created, id.sequence])
            if let why = gaveUp, db.changesCount > 0 {
                try Self.event(db, .gaveUp, at: now, bundle: id, detail: why)
                try Self.bump(db, "unreadable.total")
            }
        }
    }

    /// Records a bundle given up on at once (for this node and unreadable with its origin's keys known), in the feed
    /// and the totals; marks it seen so copies are dropped.
    public func gaveUp(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) {
        try self.gaveUp(bundle, reason: reason, from: from, now: now, counting: "unreadable.total")
    }

    /// A bundle given up on as it arrives: seen (later copies are duplicates), a `gave-up` entry with its reason in the
    /// feed, and one more in the `relay status` total `counter`.
    private func gaveUp(_ bundle: CourierBundle, reason: String, from: String?, now: Int64, counting counter: String) throws(StoreError) {
        try self.write { db in
            let id = bundle.id
            try self.insertSeen(db, bundle)
            try Self.event(db, .gaveUp, at: now, bundle: id, kind: bundle.kind, priority: bundle.priority, neighbour: from, detail: reason)
            try Self.bump(db, counter)
        }
    }

    /// Records a directed bundle given up on because its hop limit is spent: handed back to a relay that had passed it
    /// on, with no hop left (SPEC 8.5, directed bundles, rule 2). In the feed (`gave-up`, with the reason) and the
    /// totals (`hoplimit.total`, `relay status`); it stays seen, so later copies are duplicates.
    public func gaveUpHopLimit(_ bundle: CourierBundle, reason: String, from: String?, now: Int64) throws(StoreError) {
        try self.gaveUp(bundle, reason: reason, from: from, now: now, counting: "hoplimit.total")
    }

    /// Records a bundle refused by the engine (untrusted origin, bad signature), in the feed and the totals.
    /// `unsigned`: refused for want of an origin signature (counted apart too).
    public func refused(_ bundle: CourierBundle, reason: String, from: String?, now: Int64, unsigned: Bool = false) throws(StoreError) {
        try self.write { db in
            try Self.event(db, .refused, at: now, bundle: bundle.id, kind: bundle.kind, priority: bundle.priority, neighbour: from, detail: reason)
            try Self.bump(db, "refused.total")
            if unsigned { try Self.bump(db, "unsigned.refused") }
        }
    }

    /// Records a failure notice about one of this node's bundles: who gave up on it, and why.
    public func failed(_ id: BundleID, reason: String, by: ShortID, now: Int64) throws(StoreError) {
        try self.write { db in
            try Self.event(db, .failed, at: now, bundle: id, neighbour: by.description, detail: reason)
            try Self.bump(db, "failed.total")
        }
    }

    /// Records that a next hop stopped answering a transfer (the bundle is kept).
    public func stalled(_ id: BundleID, to: ShortID, detail: String, now: Int64) throws(StoreError) {
        try self.write { db in
            let b = try self.rowid(db, id)
            try Self.event(db, .stalled, at: now, bundle: id, kind: b.map { Kind(code: UInt8($0["kind"] as Int64)) },
                           priority: b.flatMap { PriorityClass(rawValue: UInt8($0["priority"] as Int64)) }, neighbour: to.description, detail: detail)
        }
    }

    // MARK: Reassembly

    /// Keeps a received fragment, so a half-received transfer survives a restart.
    public func saveFragment(_ f: FragmentRecord, from sender: NodeID, now: Int64) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: """
                INSERT INTO reassembly (sender, transfer, idx, count, received, data) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(sender, transfer, idx) DO UPDATE SET received = excluded.received
                """).execute(arguments: [Data(sender.bytes), f.transfer, f.index, f.count, now, Data(f.data)])
        }
    }

    /// Forgets a transfer (completed or given up).
    public func dropTransfer(from sender: NodeID, transfer: UInt32) throws(StoreError) {
        try self.write { db in
            try db.cachedStatement(sql: "DELETE FROM reassembly WHERE sender = ? AND transfer = ?").execute(arguments: [Data(sender.bytes), transfer])
        }
    }

    /// The fragments kept, to replay into a `Reassembler` at start-up.
    public func savedFragments() throws(StoreError) -> [(sender: NodeID, fragment: FragmentRecord, received: Int64)] {
        try self.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM reassembly ORDER BY sender, transfer, idx")).compactMap { r in
                guard let sender = NodeID(bytes: [UInt8](r["sender"] as Data)) else { return nil }
                let f = FragmentRecord(transfer: UInt32(truncatingIfNeeded: r["transfer"] as Int64), index: r["idx"], count: r["count"],
                                       data: [UInt8](r["data"] as Data))
                return (sender, f, r["received"])
            }
        }
    }

    // MARK: Snapshot

    public func snapshot() throws(StoreError) -> QueueSnapshot {
        try self.read { db in
            var s = QueueSnapshot()
            s.quota = self.quotaBytes
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT priority, count(*) AS n, total(size) AS b FROM bundle GROUP BY priority")) {
                if let p = PriorityClass(rawValue: UInt8(r["priority"] as Int64)) {
                    s.byClass[p] = .init(count: r["n"], bytes: Int(r["b"] as Double))
                }
            }
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT dest_type, dest, count(*) AS n, total(size) AS b FROM bundle GROUP BY dest_type, dest")) {
                s.byDestination[Destination(storeType: r["dest_type"], value: r["dest"]).label] = .init(count: r["n"], bytes: Int(r["b"] as Double))
            }
            s.total = .init(count: s.byClass.values.map(\.count).reduce(0, +), bytes: s.byClass.values.map(\.bytes).reduce(0, +))
            if let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT origin, created, sequence, received FROM bundle ORDER BY received LIMIT 1")) {
                s.oldest = (try BundleID(origin: ShortID(UInt32(r["origin"] as Int64)), created: UInt32(r["created"] as Int64), sequence: UInt32(r["sequence"] as Int64)), r["received"])
            }
            s.inboxUnread = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM inbox WHERE read = 0 AND kind != 6")) ?? 0
            s.identities = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM bundle WHERE kind = ?"), arguments: [Kind.identity.code]) ?? 0
            s.expiredTotal = Int(try Self.meta(db, "expired.total"))
            s.evictedTotal = Int(try Self.meta(db, "evicted.total"))
            s.refusedTotal = Int(try Self.meta(db, "refused.total"))
            s.unreadableTotal = Int(try Self.meta(db, "unreadable.total"))
            s.hopLimitTotal = Int(try Self.meta(db, "hoplimit.total"))
            s.failedTotal = Int(try Self.meta(db, "failed.total"))
            s.inboxBytes = Int(try Double.fetchOne(db.cachedStatement(sql: "SELECT total(length(content)) FROM inbox")) ?? 0)
            s.inboxLimit = self.inboxBytes
            s.inboxRefused = Int(try Self.meta(db, "inbox.refused"))
            s.inboxRemoved = Int(try Self.meta(db, "inbox.removed"))
            s.unsignedRefused = Int(try Self.meta(db, "unsigned.refused"))
            s.waiting = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM waiting ORDER BY since LIMIT 100")).map {
                WaitingBundle(id: try BundleID(origin: ShortID(UInt32($0["origin"] as Int64)), created: UInt32($0["created"] as Int64), sequence: UInt32($0["sequence"] as Int64)),
                              kind: Kind(code: UInt8($0["kind"] as Int64)), since: $0["since"], expires: $0["expires"], reason: $0["reason"],
                              data: [UInt8]($0["data"] as Data))
            }
            return s
        }
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() throws(StoreError) -> String {
        try self.read { db in try String.fetchAll(db.cachedStatement(sql: "PRAGMA integrity_check")).joined(separator: "; ") }
    }
}
