import CourierStore
import CourierWire
import Foundation
import GRDBSQLite
import Logging
import Testing

/// Keys heard in announces and the trust list survive a restart (schema v2).
@Suite struct PeerTests {
    @Test func heardKeysAndTheTrustListSurviveReopening() throws {
        let path = S.tempDir() + "/courier.db"
        let a = S.origins[0].publicKeys
        let b = S.origins[1].publicKeys
        do {
            let s = try S.store(path: path)
            let v0 = try s.trustVersion()
            try s.rememberPeer(a, name: "clinic", now: S.now)
            try s.rememberPeer(a, name: nil, now: S.now + 60)
            try s.setTrusted(b, name: "committee", trusted: true, now: S.now + 5)
            #expect(try s.trustVersion() == v0 + 1, "a trust edit is visible to a running relay")
        }
        let s = try S.store(path: path)
        let peers = try s.peers()
        #expect(peers.count == 2)
        #expect(peers[0] == PeerRecord(keys: b, name: "committee", firstHeard: nil, lastHeard: nil, trusted: true, added: S.now + 5))
        #expect(peers[1] == PeerRecord(keys: a, name: "clinic", firstHeard: S.now, lastHeard: S.now + 60, trusted: false, added: nil))
        // Taken off the list: what was heard stays.
        try s.rememberPeer(b, name: nil, now: S.now + 90)
        try s.setTrusted(b, name: nil, trusted: false, now: S.now + 100)
        let after = try s.peers().first { $0.nodeID == b.nodeID }
        #expect(after?.trusted == false && after?.name == "committee" && after?.lastHeard == S.now + 90 && after?.added == nil)
    }

    @Test func aVersion1DatabaseIsMigratedKeepingItsQueue() throws {
        let path = S.tempDir() + "/old.db"
        do { try S.store(path: path).insert(try S.bundle(seq: 1), now: S.now, local: true, custody: true) }
        // Make it what schema 1 wrote: no peer table, version 1.
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        #expect(sqlite3_exec(db, "DROP TABLE peer; DELETE FROM grdb_migrations WHERE identifier = 'v2'; PRAGMA user_version = 1", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let s = try S.store(path: path)
        #expect(try s.count() == 1, "the queued bundle is still there")
        #expect(try s.peers().isEmpty)
        try s.rememberPeer(S.origins[2].publicKeys, name: nil, now: S.now)
        #expect(try s.peers().count == 1)
    }

    @Test func aKnownNodeWhoseStoredKeysAreDamagedIsLeftOutAndSaid() throws {
        let path = S.tempDir() + "/courier.db"
        let good = S.origins[3].publicKeys
        let bad = S.origins[4].publicKeys
        do {
            let s = try S.store(path: path)
            try s.setTrusted(good, name: "well", trusted: true, now: S.now)
            try s.setTrusted(bad, name: "clinic", trusted: true, now: S.now)
        }
        // A damaged page or a hand edit leaves the clinic's signing key 3 bytes long.
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        #expect(sqlite3_exec(db, "UPDATE peer SET signing = x'0a0b0c' WHERE name = 'clinic'", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let log = LogLines()
        let s = try Store(path: path, logger: Logger(label: "test") { _ in log })
        #expect(try s.peers().map(\.keys) == [good], "a row whose keys do not parse is not used")
        let hex = bad.nodeID.bytes.map { String(format: "%02x", $0) }.joined()
        #expect(log.lines.contains { $0.contains("keys are damaged") && $0.contains(hex) }, "not said: \(log.lines)")
    }
}

/// A log handler that keeps each line (message and metadata) for a test to read.
struct LogLines: LogHandler {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
    }
    let box = Box()
    var lines: [String] { self.box.lock.withLock { self.box.lines } }
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let text = "\(level) \(message) \((metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        self.box.lock.withLock { self.box.lines.append(text) }
    }
}
