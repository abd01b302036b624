@testable import CourierStore
import CourierWire
import Foundation
import GRDB
import Testing

/// A group of writes (`Store.grouped`) runs in one database access from its first write to its commit, so GRDB's check
/// that no access leaves a transaction open stays on (issue 11: `allowsUnsafeTransactions` is off again).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct GroupAccessTests {
    @Test func theOpenTransactionCheckIsOn() throws {
        let store = try S.store()
        #expect(store.db.configuration.allowsUnsafeTransactions == false)
    }

    @Test func aGroupReadsItsOwnWritesAndCommitsOnce() throws {
        let path = S.tempDir() + "/courier.db"
        let store = try S.store(path: path)
        let b = try S.bundle(seq: 1)
        let seen = try store.grouped { () throws -> (Bool, Bool) in
            let before = try store.hasSeen(b.id)
            _ = try store.insert(b, now: S.now, local: true, custody: true)
            try store.setQuiet(true)
            // A group inside the group is part of it.
            try store.grouped { _ = try store.reservePacketCounters(8) }
            return (before, try store.hasSeen(b.id) && store.isQuiet())
        }
        #expect(seen == (false, true))
        // Committed: another connection sees all of it.
        let other = try DatabaseQueue(path: path)
        #expect(try other.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM bundle") } == 1)
        #expect(try store.hasSeen(b.id) && store.isQuiet())
    }

    /// Each write of a group is a savepoint (prepared once, `Store.inSavepoint`): one that throws is undone alone,
    /// the writes before and after it commit with the group; and a write outside a group is its own transaction.
    @Test func aWriteThatThrowsInAGroupIsUndoneAloneAndTheOthersStay() throws {
        let store = try S.store()
        let a = try S.bundle(seq: 1)
        let b = try S.bundle(seq: 2)
        struct Stop: Error {}
        try store.grouped {
            _ = try store.insert(a, now: S.now, local: true, custody: true)
            #expect(throws: StoreError.self) {
                try store.write { db in
                    try Store.setMeta(db, "test.undone", 7)
                    throw Stop()
                }
            }
            _ = try store.insert(b, now: S.now, local: true, custody: true)
        }
        #expect(try store.hasSeen(a.id) && store.hasSeen(b.id))
        #expect(try store.read { try Store.meta($0, "test.undone") } == 0)
        // Outside a group: the same, one transaction each, and the connection is left outside any transaction.
        #expect(throws: StoreError.self) {
            try store.write { db in
                try Store.setMeta(db, "test.undone", 7)
                throw Stop()
            }
        }
        try store.write { db in try Store.setMeta(db, "test.kept", 3) }
        #expect(try store.read { try Store.meta($0, "test.undone") } == 0)
        #expect(try store.read { try Store.meta($0, "test.kept") } == 3)
        #expect(store.db.inDatabase { $0.isInsideTransaction } == false)
    }

    @Test func aFailedGroupKeepsNothingAndTheStoreWorksAfter() throws {
        let store = try S.store()
        let b = try S.bundle(seq: 1)
        struct Stop: Error {}
        #expect(throws: StoreError.self) {
            try store.grouped {
                _ = try store.insert(b, now: S.now, local: true, custody: true)
                throw Stop()
            }
        }
        #expect(try !store.hasSeen(b.id))
        // The connection is usable at once, outside and inside a group.
        _ = try store.insert(b, now: S.now, local: true, custody: true)
        try store.grouped { try store.setQuiet(true) }
        #expect(try store.hasSeen(b.id) && store.isQuiet())
    }
}
