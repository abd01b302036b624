@testable import CourierStore
import CourierWire
import Foundation
import GRDB
import Testing

/// Replay windows kept in the store (SPEC 4.8): in their stored form since the form was made (a few bytes per packet
/// accepted); windows kept in JSON by an earlier relay are still read after an upgrade.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ReplayWindowStoreTests {
    static func window(_ counters: [UInt32]) -> ReplayWindow {
        var w = ReplayWindow()
        for c in counters { _ = w.check(c) }
        return w
    }

    @Test func windowsKeptReadBackAfterAReopen() throws {
        let path = S.tempDir() + "/courier.db"
        let a = NodeIdentity().nodeID, b = NodeIdentity().nodeID
        let wa = Self.window([3, 5, 9]), wb = Self.window([10, 12, 3_000_000, 3_000_001])
        do {
            let store = try S.store(path: path)
            try store.saveReplayWindow(wa, for: a)
            try store.saveReplayWindow(Self.window([1]), for: b)
            try store.saveReplayWindow(wb, for: b)
        }
        let store = try S.store(path: path)
        #expect(try store.replayWindows() == [a: wa, b: wb])
    }

    @Test func windowsKeptAsJSONByAnEarlierRelayAreRead() throws {
        let path = S.tempDir() + "/courier.db"
        let a = NodeIdentity().nodeID, b = NodeIdentity().nodeID
        let wa = Self.window([3, 5, 9]), wb = Self.window([10, 12, 3_000_000])
        do {
            let store = try S.store(path: path)
            try store.saveReplayWindow(wb, for: b)
        }
        // As the relay before the stored form kept it.
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            try db.execute(sql: "INSERT INTO replay_window (node, state) VALUES (?, ?)", arguments: [Data(a.bytes), try JSONEncoder().encode(wa)])
        }
        try old.close()
        let store = try S.store(path: path)
        #expect(try store.replayWindows() == [a: wa, b: wb])
        // Written again in the stored form; still read.
        var moved = wa
        _ = moved.check(10)
        try store.saveReplayWindow(moved, for: a)
        #expect(try store.replayWindows()[a] == moved)
    }
}
