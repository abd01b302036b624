import GRDB

extension Store {
    /// A copy of an in-memory store, page for page (SQLite's backup), with the counters this process handed out:
    /// a simulation forked at a moment (`DrillSimulator.forkWithoutDisruptions`) goes on from the same database in
    /// each branch. Only outside a group (`grouped`).
    public func inMemoryCopy(path: String) throws(StoreError) -> Store {
        precondition(self.configuration.inMemory, "only an in-memory store is copied")
        precondition(!self.inGroup, "a store is copied outside a group")
        let copy = try Store(path: path, configuration: self.configuration, logger: self.logger)
        do { try self.db.backup(to: copy.db) } catch { throw StoreError.from(error, path: path) }
        let handed = self.handedOut.withLock { $0 }
        copy.handedOut.withLock { $0 = handed }
        return copy
    }
}
