import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// What a summary needs to know of a held bundle (the engine's name for `Store.Held`).
public typealias HeldBundle = Store.Held
/// A bundle removed at expiry or by the quota (the engine's name for `Store.Expired`).
public typealias ExpiredBundle = Store.Expired

/// A group of writes under way (`Store.grouped`). Unchecked: `database` is used only by the thread that runs the
/// group (`owner`), inside the group's one access to it.
struct GroupState: @unchecked Sendable {
    var open = false
    /// The thread running the group: only its calls are part of it. Another thread's call waits for the group to
    /// end (the database queue is busy) and is then its own transaction, as outside a group.
    var owner: UInt = 0
    /// The connection of the group's access: its writes and reads run on it directly, inside that access, so the
    /// transaction begun by its first write ends (commit or rollback) in the same access it began in, and GRDB's check
    /// that no access leaves a transaction open stays on.
    var database: Database? = nil
    /// Its transaction was begun (by its first write).
    var begun = false
    /// SQLite ended its transaction after an error (a full disk, an I/O error): nothing of it will be kept.
    var aborted: StoreError? = nil
}

extension Store {
    /// Runs `body` as one durable write: the writes it makes through this store's methods (on this thread) commit together at its
    /// end, in one transaction and one fsync, instead of one each. The transaction begins at the first write (BEGIN
    /// IMMEDIATE, so a counter reservation reads and writes under the lock as alone); a group that writes nothing
    /// costs nothing. Inside, each write is a savepoint: one that fails is undone alone and throws to its caller, the
    /// others stay. If the commit fails (a full disk is often seen only then), or SQLite ended the transaction after
    /// an error, nothing of the group is kept and this throws. A group inside a group is part of it.
    public func grouped<T>(_ body: () throws -> T) throws(StoreError) -> T {
        if self.inGroup {
            do { return try body() } catch { throw StoreError.from(error, path: self.path) }
        }
        do {
            return try self.db.writeWithoutTransaction { db in
                self.group.withLock { $0 = GroupState(open: true, owner: Self.currentThread, database: db) }
                defer { self.group.withLock { $0 = GroupState() } }
                do {
                    let result = try body()
                    let state = self.group.withLock { $0 }
                    if let e = state.aborted { throw e }
                    if state.begun { try self.commit(db) }
                    return result
                } catch {
                    self.seenChanged()
                    // Nothing of the group is kept. (Ending a transaction SQLite still holds open; if even that
                    // fails, the connection's next use ends it, and this group's error is what is reported.)
                    if db.isInsideTransaction {
                        do { try db.rollback() } catch {}
                    }
                    throw error
                }
            }
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// Whether the calling thread is running a group.
    var inGroup: Bool { self.group.withLock { $0.open && $0.owner == Self.currentThread } }

    static var currentThread: UInt {
        #if canImport(Darwin)
        UInt(bitPattern: pthread_self())
        #else
        UInt(pthread_self())
        #endif
    }

    /// A write inside a group: a savepoint of the group's transaction (begun by the first), on the group's connection.
    /// `alone`: the write is one SQL statement, which SQLite makes atomic by itself (a statement that fails changes
    /// nothing and leaves the transaction open, or SQLite ends the whole transaction), so it needs no savepoint of its
    /// own: two statements fewer for each (a received packet's replay window, a neighbour heard).
    func groupedWrite<T>(_ body: (Database) throws -> T, alone: Bool = false, expiry: Bool = true) throws(StoreError) -> T {
        if expiry { self.wrote() }
        do {
            let (database, aborted, begun) = self.group.withLock { ($0.database, $0.aborted, $0.begun) }
            guard let db = database else { return try self.db.write(body) }
            if let e = aborted { throw e }
            if !begun {
                try self.begin(db)
                self.group.withLock { $0.begun = true }
            }
            var result: T? = nil
            do {
                if alone {
                    result = try body(db)
                    if !db.isInsideTransaction {
                        throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted")
                    }
                } else {
                    result = try self.inSavepoint(db) { try body(db) }
                }
            } catch {
                self.seenChanged()
                if !db.isInsideTransaction {
                    let e = StoreError.from(error, path: self.path)
                    self.group.withLock { $0.aborted = e }
                }
                throw error
            }
            return result!
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// A write of one SQL statement (see `groupedWrite`'s `alone`): inside a group, without a savepoint; outside,
    /// its own transaction as any write.
    /// `expiry`: as `write`'s.
    func writeAlone<T>(expiry: Bool = true, _ body: (Database) throws -> T) throws(StoreError) -> T {
        if self.inGroup { return try self.groupedWrite(body, alone: true, expiry: expiry) }
        return try self.write(expiry: expiry, body)
    }

    /// A transaction-control statement of the store's one connection, prepared once and held (not looked up by its
    /// text at each use, as `cachedStatement` does: with a transaction per received packet, hashing the SQL of these
    /// statements showed in a 1,000-relay drill's profile).
    func control(_ db: Database, _ key: HeldStatement, _ sql: String) throws {
        let s = try self.held(db, key, sql)
        do { try s.execute() } catch { self.dropHeld(key); throw error }
    }

    /// A held statement that failed is prepared again at its next use: SQLite's reset cannot always restore a failed
    /// statement (GRDB drops such a statement from its cache for the same reason).
    func dropHeld(_ key: HeldStatement) {
        self.statements.slots[key.rawValue] = nil
    }

    /// The statement at `key`, prepared on first use. Only inside an access to the store's database (which serialises
    /// the store's use of its one connection).
    func held(_ db: Database, _ key: HeldStatement, _ sql: String) throws -> Statement {
        if let s = self.statements.slots[key.rawValue] { return s }
        let s = try db.makeStatement(sql: sql)
        // Its arguments are bound by `runHeld` (or set before each use): GRDB checks none of them again.
        s.setUncheckedArguments(StatementArguments([DatabaseValue](repeating: .null, count: Int(sqlite3_bind_parameter_count(s.sqliteStatement)))))
        self.statements.slots[key.rawValue] = s
        return s
    }

    /// A transaction-control statement, prepared once per connection. (GRDB's `beginTransaction`, `commit` and
    /// `inSavepoint` parse their SQL at every call: with a savepoint per write and a transaction per received packet,
    /// parsing those four statements was a fifth of a 1,000-relay drill's time.)
    static func control(_ db: Database, _ sql: String) throws {
        try db.cachedStatement(sql: sql).execute()
    }

    /// `commit(_:)` for a connection not yet the store's (its opening).
    static func commit(_ db: Database) throws {
        do { try Self.control(db, "COMMIT TRANSACTION") } catch {
            if db.isInsideTransaction {
                do { try db.rollback() } catch {}
            }
            throw error
        }
    }

    /// Commits the transaction under way; if the commit fails and SQLite left the transaction open, it is rolled
    /// back (as GRDB's `inTransaction` does), and the commit's error thrown.
    func commit(_ db: Database) throws {
        do { try self.control(db, .commit, "COMMIT TRANSACTION") } catch {
            self.seenChanged()
            if db.isInsideTransaction {
                do { try db.rollback() } catch {}
            }
            throw error
        }
    }

    /// Runs the held write statement at `key` with `bind` binding its arguments straight into SQLite (no
    /// `StatementArguments`, no copy of a blob: `bind` is given the raw statement, and the blobs it binds must outlive
    /// the call, as they do when it runs inside `withUnsafeBytes`). For the writes made for each packet received.
    func runHeld(_ db: Database, _ key: HeldStatement, _ sql: String, _ bind: (OpaquePointer) -> Void) throws {
        let s = try self.held(db, key, sql)
        let raw = s.sqliteStatement
        sqlite3_reset(raw)
        bind(raw)
        defer { sqlite3_clear_bindings(raw) }
        try self.stepHeld(raw, key, sql)
    }

    /// Runs a held statement that gives no rows (a write, a BEGIN) straight on SQLite, as `existsHeld` reads: its
    /// arguments already bound, stepped once to SQLITE_DONE. GRDB's per-statement bookkeeping around it (its checks
    /// for a cancelled or suspended access, the region observed, its transaction observers' preparation for the
    /// statement and the autocommit date) was a tenth of these writes' cost, two of them for each packet received.
    /// Nothing here needs it: no observer of the store looks at individual changes (`CommitCounter` counts commits,
    /// which still go through GRDB, as savepoints do), and the store's transactions are its own (`grouped`,
    /// `immediate`). A statement that fails is dropped and prepared again at its next use, as `control`'s are, and
    /// its error is thrown as GRDB throws it (the result code, SQLite's message, the SQL).
    func stepHeld(_ raw: OpaquePointer, _ key: HeldStatement, _ sql: String) throws {
        let code = sqlite3_step(raw)
        if code == SQLITE_DONE { return }
        let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(raw)))
        sqlite3_reset(raw)
        self.dropHeld(key)
        throw DatabaseError(resultCode: ResultCode(rawValue: code == SQLITE_ROW ? SQLITE_MISUSE : code), message: message, sql: sql)
    }

    /// BEGIN IMMEDIATE on the held statement, stepped raw (`stepHeld`): one for each durable write.
    func begin(_ db: Database) throws {
        let s = try self.held(db, .begin, "BEGIN IMMEDIATE TRANSACTION")
        let raw = s.sqliteStatement
        sqlite3_reset(raw)
        try self.stepHeld(raw, .begin, "BEGIN IMMEDIATE TRANSACTION")
    }

    /// Whether the held query at `key` gives a row, its arguments bound by `bind` straight into SQLite (as `runHeld`);
    /// reset at once, so no read stays open. For the look-ups made for each packet received (`hasSeen`).
    func existsHeld(_ db: Database, _ key: HeldStatement, _ sql: String, _ bind: (OpaquePointer) -> Void) throws -> Bool {
        let s = try self.held(db, key, sql)
        let raw = s.sqliteStatement
        sqlite3_reset(raw)
        bind(raw)
        defer {
            sqlite3_reset(raw)
            sqlite3_clear_bindings(raw)
        }
        switch sqlite3_step(raw) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(raw)))
            self.dropHeld(key)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }

    /// GRDB's `inSavepoint` inside a transaction, with its statements prepared once: `body` under a savepoint, undone
    /// alone if it throws (or if SQLite ended the transaction meanwhile: then SQLITE_ABORT, as GRDB says it).
    func inSavepoint<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try self.control(db, .savepoint, "SAVEPOINT courier")
        var firstError: Error? = nil
        var result: T? = nil
        do {
            result = try body()
            if !db.isInsideTransaction {
                throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted")
            }
            try self.control(db, .release, "RELEASE SAVEPOINT courier")
            return result!
        } catch {
            firstError = error
        }
        // Undone and released (rolling back alone leaves the savepoint on SQLite's stack); with the transaction
        // already ended by SQLite, these fail and the first error is what is thrown.
        self.seenChanged()
        do {
            try self.control(db, .rollbackTo, "ROLLBACK TRANSACTION TO SAVEPOINT courier")
            try self.control(db, .release, "RELEASE SAVEPOINT courier")
        } catch {}
        throw firstError!
    }

    /// A read inside a group, on the group's connection (it sees the group's writes).
    func groupedRead<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            guard let db = self.group.withLock({ $0.database }) else { return try self.db.inDatabase(body) }
            return try body(db)
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// `stored`, or past the highest value this process handed out of the counter `key` if that is higher.
    func notHandedOut(_ key: String, _ stored: Int64) -> Int64 {
        self.handedOut.withLock { max(stored, $0[key] ?? 0) }
    }

    func handOut(_ key: String, _ end: Int64) {
        self.handedOut.withLock { $0[key] = max($0[key] ?? 0, end) }
    }
}

/// Statements of the store's one connection held by the store (`Store.held`): the transaction controls and the
/// hottest writes, prepared once. Unchecked: used only inside an access to the store's database, which serialises them.
final class HeldStatements: @unchecked Sendable {
    var slots = [Statement?](repeating: nil, count: HeldStatement.allCases.count)
}

/// Binds a blob to a raw statement for the length of a statement's run (`Store.runHeld`): SQLite does not copy it.
func bindBlob(_ raw: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer) {
    // A zero-length blob is bound as such, not as NULL (its base address may be nil).
    if bytes.isEmpty { sqlite3_bind_zeroblob(raw, index, 0) } else { sqlite3_bind_blob(raw, index, bytes.baseAddress, Int32(bytes.count), nil) }
}

/// Binds a text (or NULL) to a raw statement; SQLite copies it (SQLITE_TRANSIENT).
func bindText(_ raw: OpaquePointer, _ index: Int32, _ text: String?) {
    guard let text else { sqlite3_bind_null(raw, index); return }
    sqlite3_bind_text(raw, index, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
}

/// Which held statement (`HeldStatements`).
enum HeldStatement: Int, CaseIterable {
    case begin, commit, savepoint, release, rollbackTo, replayWindow, peerHeard, dataVersion, hasSeen, bundleByID
}

/// The digests `Store.seenDigests` read last: good while `generation` (moved by every change to `seen` and every
/// undo) and the database's data version (moved by other connections' commits) are those it was read at.
struct SeenCache {
    var generation: UInt64 = 0
    var digests: [UInt32]? = nil
    var filled: UInt64 = 0
    var dataVersion: Int64 = 0
    var limit = 0
    /// The rows `seen` held when `expireBundles` last counted them, at the data version then, and the changes to `seen`
    /// made through this store since (`seenChanged`: each adds at most one row). Their sum bounds the rows from above
    /// while the data version stays: the pass counts again only when the bound passes the limit.
    var counted: Int? = nil
    var countedAt: Int64 = 0
    var changesSinceCount = 0
    /// Moved before every write that may change what the expiry pass removes, and at every undo (`Store.wrote`).
    var writes: UInt64 = 0
    /// What the expiry pass's first question found last in an in-memory store, good while `writes` is its own.
    var expiry: ExpiryBound? = nil
    /// Moved before anything that may add rows to `waiting` and at every undo (`waitingMayGrow`, `seenChanged`).
    var waitingGeneration: UInt64 = 1
    /// The `waitingGeneration` at which an in-memory store read `waiting` empty: still empty while they are equal
    /// (`waitingOrigins`). An in-memory database has no other connection to add rows.
    var waitingEmpty: UInt64 = 0
}

/// The earliest moment anything in an in-memory store is due for the expiry pass, as read when `writes` was the
/// store's count of writes (`Store.expiryDueInMemory`).
struct ExpiryBound {
    var writes: UInt64
    /// The earliest expiry (Courier minutes) of a bundle held, a bundle kept unread or an id seen; nil with none.
    var minutes: Int64?
    /// The oldest piece of a transfer half-received (unix seconds); nil with none.
    var received: Int64?

    /// The probe's answer at `nowMinutes`, with pieces older than `cutoff` timed out: what `expireBundles`' query
    /// (any of those expired, or a piece older than the timeout) says of the same rows.
    func due(nowMinutes: Int64, cutoff: Int64) -> Bool {
        (self.minutes.map { $0 <= nowMinutes } ?? false) || (self.received.map { $0 < cutoff } ?? false)
    }
}
