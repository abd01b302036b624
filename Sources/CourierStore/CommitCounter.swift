import GRDB
import Synchronization

/// Counts the transactions a store commits: each is one durable write (with `synchronous = FULL` in WAL mode, one
/// fsync of the log), for benchmarks (`courier-bench engine`).
public final class CommitCounter: TransactionObserver, Sendable {
    private let count = Mutex(0)

    public var commits: Int { self.count.withLock { $0 } }

    public func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    public func databaseDidChange(with event: DatabaseEvent) {}
    public func databaseDidCommit(_ db: Database) { self.count.withLock { $0 += 1 } }
    public func databaseDidRollback(_ db: Database) {}
}

extension Store {
    /// Starts counting this store's commits (for as long as the store is open).
    public func countCommits() -> CommitCounter {
        let c = CommitCounter()
        self.db.add(transactionObserver: c, extent: .databaseLifetime)
        return c
    }
}
