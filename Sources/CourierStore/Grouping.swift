import Foundation
import GRDB
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
                    if state.begun { try Self.commit(db) }
                    return result
                } catch {
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
    func groupedWrite<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            let state = self.group.withLock { $0 }
            guard let db = state.database else { return try self.db.write(body) }
            if let e = state.aborted { throw e }
            if !state.begun {
                try Self.control(db, "BEGIN IMMEDIATE TRANSACTION")
                self.group.withLock { $0.begun = true }
            }
            var result: T? = nil
            do {
                result = try Self.inSavepoint(db) { try body(db) }
            } catch {
                if !db.isInsideTransaction {
                    let e = StoreError.from(error, path: self.path)
                    self.group.withLock { $0.aborted = e }
                }
                throw error
            }
            return result!
        } catch { throw StoreError.from(error, path: self.path) }
    }

    /// A transaction-control statement, prepared once per connection. (GRDB's `beginTransaction`, `commit` and
    /// `inSavepoint` parse their SQL at every call: with a savepoint per write and a transaction per received packet,
    /// parsing those four statements was a fifth of a 1,000-relay drill's time.)
    static func control(_ db: Database, _ sql: String) throws {
        try db.cachedStatement(sql: sql).execute()
    }

    /// Commits the transaction under way; if the commit fails and SQLite left the transaction open, it is rolled
    /// back (as GRDB's `inTransaction` does), and the commit's error thrown.
    static func commit(_ db: Database) throws {
        do { try Self.control(db, "COMMIT TRANSACTION") } catch {
            if db.isInsideTransaction {
                do { try db.rollback() } catch {}
            }
            throw error
        }
    }

    /// GRDB's `inSavepoint` inside a transaction, with its statements prepared once: `body` under a savepoint, undone
    /// alone if it throws (or if SQLite ended the transaction meanwhile: then SQLITE_ABORT, as GRDB says it).
    static func inSavepoint<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try Self.control(db, "SAVEPOINT courier")
        var firstError: Error? = nil
        var result: T? = nil
        do {
            result = try body()
            if !db.isInsideTransaction {
                throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted")
            }
            try Self.control(db, "RELEASE SAVEPOINT courier")
            return result!
        } catch {
            firstError = error
        }
        // Undone and released (rolling back alone leaves the savepoint on SQLite's stack); with the transaction
        // already ended by SQLite, these fail and the first error is what is thrown.
        do {
            try Self.control(db, "ROLLBACK TRANSACTION TO SAVEPOINT courier")
            try Self.control(db, "RELEASE SAVEPOINT courier")
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
