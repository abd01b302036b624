@testable import CourierStore
import CourierWire
import Foundation
import GRDB
import Testing

/// What a received packet writes costs few statements: a write of one statement takes no savepoint of its own in a
/// group (SQLite makes one statement atomic by itself), and the group's writes still commit together or not at all.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ReceivedPacketWritesTests {
    /// The statements run on `store`'s connection by `body`, in order.
    static func statements(_ store: Store, _ body: () throws -> Void) throws -> [String] {
        let seen = LockedList()
        store.db.inDatabase { db in
            db.trace(options: .statement) { event in
                if case .statement(let s) = event { seen.append(s.sql) }
            }
        }
        defer { store.db.inDatabase { $0.trace(options: []) } }
        try body()
        return seen.all
    }

    final class LockedList: @unchecked Sendable {
        let lock = NSLock()
        var items: [String] = []
        func append(_ s: String) { self.lock.withLock { self.items.append(s) } }
        var all: [String] { self.lock.withLock { self.items } }
    }

    /// A packet that brings nothing but itself from a neighbour heard: its replay window and the neighbour's keys, in
    /// one transaction of four statements (six more on the parent: a savepoint and its release around each write,
    /// twice).
    @Test func aPacketsReplayWindowAndPeerHeardAreFourStatements() throws {
        let path = S.tempDir() + "/courier.db"
        let store = try S.store(path: path)
        let sender = S.origins[0].publicKeys
        var w = ReplayWindow()
        _ = w.check(7)
        let ran = try Self.statements(store) {
            try store.grouped {
                try store.saveReplayWindow(w, for: sender.nodeID)
                try store.rememberPeer(sender, name: "clinic", now: S.now)
            }
        }
        #expect(ran.count == 4, "\(ran)")
        #expect(ran.first == "BEGIN IMMEDIATE TRANSACTION" && ran.last == "COMMIT TRANSACTION", "\(ran)")
        #expect(!ran.contains { $0.contains("SAVEPOINT") }, "\(ran)")
        // Both kept, read from another connection; and the held statements are used again (and bound again) later.
        var w2 = w
        _ = w2.check(8)
        try store.grouped {
            try store.saveReplayWindow(w2, for: sender.nodeID)
            try store.rememberPeer(sender, name: nil, now: S.now + 60)
        }
        let reopened = try S.store(path: path)
        #expect(try reopened.replayWindows() == [sender.nodeID: w2])
        #expect(try reopened.peers() == [PeerRecord(keys: sender, name: "clinic", firstHeard: S.now, lastHeard: S.now + 60, trusted: false, added: nil)])
    }

    /// A write of one statement that fails in a group changes nothing, even a statement that had written rows before
    /// it failed (SQLite undoes the statement), and the group's other writes commit.
    @Test func aOneStatementWriteThatFailsInAGroupIsUndoneAlone() throws {
        let store = try S.store()
        let a = try S.bundle(seq: 1)
        let b = try S.bundle(seq: 2)
        try store.grouped {
            _ = try store.insert(a, now: S.now, local: true, custody: true)
            #expect(throws: StoreError.self) {
                // Its first row goes in; its second breaks NOT NULL.
                try store.writeAlone { db in
                    try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('test.first', 1), ('test.second', NULL)")
                }
            }
            _ = try store.insert(b, now: S.now, local: true, custody: true)
        }
        #expect(try store.hasSeen(a.id) && store.hasSeen(b.id))
        #expect(try store.read { try Store.meta($0, "test.first") } == 0)
        #expect(store.db.inDatabase { $0.isInsideTransaction } == false)
    }

    /// A group whose commit is not reached keeps none of its one-statement writes.
    @Test func aFailedGroupKeepsNoneOfItsOneStatementWrites() throws {
        let store = try S.store()
        let sender = S.origins[1].publicKeys
        var w = ReplayWindow()
        _ = w.check(1)
        struct Stop: Error {}
        #expect(throws: StoreError.self) {
            try store.grouped {
                try store.saveReplayWindow(w, for: sender.nodeID)
                try store.rememberPeer(sender, name: nil, now: S.now)
                throw Stop()
            }
        }
        #expect(try store.replayWindows().isEmpty)
        #expect(try store.peers().isEmpty)
    }

    /// The digests of ids seen, served again from memory, are always what the table holds: after a bundle stored, a
    /// group undone, a write undone alone, and another connection's commit.
    @Test func seenDigestsFollowEveryChange() throws {
        let path = S.tempDir() + "/courier.db"
        let store = try S.store(path: path)
        let a = try S.bundle(seq: 1), b = try S.bundle(seq: 2), c = try S.bundle(seq: 3)
        #expect(try store.seenDigests().isEmpty)
        _ = try store.insert(a, now: S.now, local: true, custody: true)
        #expect(try store.seenDigests() == [a.id.digest])
        #expect(try store.seenDigests() == [a.id.digest], "read again")
        struct Stop: Error {}
        // A group that stores b, reads it, and is undone.
        #expect(throws: StoreError.self) {
            try store.grouped {
                _ = try store.insert(b, now: S.now, local: true, custody: true)
                #expect(try Set(store.seenDigests()) == [a.id.digest, b.id.digest])
                throw Stop()
            }
        }
        #expect(try store.seenDigests() == [a.id.digest])
        // A write undone alone inside a group.
        try store.grouped { () throws -> Void in
            #expect(throws: StoreError.self) {
                try store.write { db in
                    try db.execute(sql: "INSERT INTO seen (origin, created, sequence, expires, digest) VALUES (1, 2, 3, 99999999, 77)")
                    throw Stop()
                }
            }
            let inside = try store.seenDigests()
            #expect(inside == [a.id.digest])
        }
        // Another connection's commit (a relay send beside a running relay).
        let other = try DatabaseQueue(path: path)
        try other.write { try $0.execute(sql: "INSERT INTO seen (origin, created, sequence, expires, digest) VALUES (1, 2, 3, 99999999, 88)") }
        #expect(try Set(store.seenDigests()) == [a.id.digest, 88])
        _ = try store.insert(c, now: S.now, local: true, custody: true)
        #expect(try Set(store.seenDigests()) == [a.id.digest, c.id.digest, 88])
        try store.markSeen(b)
        #expect(try Set(store.seenDigests()) == [a.id.digest, b.id.digest, c.id.digest, 88])
    }
}
