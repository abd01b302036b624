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
                    if state.begun { try db.commit() }
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
                try db.beginTransaction(.immediate)
                self.group.withLock { $0.begun = true }
            }
            var result: T? = nil
            do {
                try db.inSavepoint {
                    result = try body(db)
                    return .commit
                }
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
