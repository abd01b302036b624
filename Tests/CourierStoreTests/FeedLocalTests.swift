@testable import CourierStore
import CourierWire
import Foundation
import GRDB
import Testing

/// The change feed says which `enqueued` entries are bundles made here (the running relay adopts those and sends
/// them; `relay outbox` lists them) in a field of its own, not in the text people read (issue 11: no hidden channels).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct FeedLocalTests {
    @Test func localSubmissionsAreMarkedWhateverTheirText() throws {
        let path = S.tempDir() + "/courier.db"
        let store = try S.store(path: path)
        _ = try store.insert(try S.bundle(seq: 1), now: S.now, local: true, custody: true)
        _ = try store.insert(try S.bundle(origin: 1, seq: 2), now: S.now, local: false, custody: false, from: "0a0b0c0d")
        _ = try store.insert(try S.bundle(origin: 2, seq: 3), now: S.now, local: false, custody: false, from: "import")
        // The words may change (reworded, translated); what the runtime acts on does not.
        let other = try DatabaseQueue(path: path)
        try other.write { try $0.execute(sql: "UPDATE event SET detail = 'reworded for people'") }
        let enqueued = try store.events(after: 0).filter { $0.type == .enqueued }
        #expect(enqueued.map(\.local) == [true, false, false], "\(enqueued)")
        #expect(enqueued.allSatisfy { $0.detail == "reworded for people" })
        // Only the `enqueued` entry of a local bundle is marked (its custody entry is not a submission).
        #expect(try store.events(after: 0).filter { $0.type != .enqueued }.allSatisfy { !$0.local })
        #expect(try store.events(ofOrigin: S.origins[0].nodeID.short).filter(\.local).count == 1)
    }

    @Test func aFeedWrittenBeforeTheFieldIsMarkedFromItsTextOnce() throws {
        let path = S.tempDir() + "/courier.db"
        do {
            // A data directory of the previous schema, whose feed holds a local submission, a relayed bundle and the
            // delivery of the local one.
            let old = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(old, upTo: "v7-dictionaries")
            try old.write { db in
                for (type, detail, neighbour) in [("enqueued", "everyone, 90 bytes, local", nil), ("enqueued", "everyone, 90 bytes", "0a0b0c0d"),
                                                  ("delivered", "everyone, local", nil), ("enqueued", "node 0a0b0c0d, 70 bytes, local, queued as bulk (its header claims normal)", nil)] as [(String, String, String?)] {
                    try db.execute(sql: "INSERT INTO event (at, type, bundle, neighbour, detail) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [S.now, type, "0a0b0c0d.1.1", neighbour, detail])
                }
                try db.execute(sql: "PRAGMA user_version = 7")
            }
        }
        let store = try S.store(path: path)
        #expect(try store.events(after: 0).map(\.local) == [true, false, false, true])
    }
}
