import CourierLinks
import CourierNode
@testable import CourierRuntime
import CourierStore
import CourierWire
import Foundation
import Logging
import Testing

/// What `relay send` stores while a relay starts (ReplayTests.messagesSentAfterASenderRestartAllArrive failed once in
/// CI: "after the restart, delivered 2 of 3; still queued at alpha: 1"). The engine indexed what was held when it
/// was made; the runtime then read the change feed from its end when it began to run, so a message stored between
/// the two was in neither: queued, never sent, until the relay restarted. A real engine and runtime on a real SQLite
/// file; the messages are stored as `relay send` stores them, by a `BundleMaker` on a connection of its own. The
/// runtime's feed is polled directly (`pollStore`), as its loop does once a second: no task, no clock, so a loaded
/// machine cannot make it late. (BundleMakerTests has the engine's half: `Node.feedPosition` is read before the index.)
@Suite struct SubmissionTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func aMessageStoredWhileTheRelayStartsIsTakenUp() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("courier-submission-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            do { try FileManager.default.removeItem(atPath: dir) } catch { Issue.record("cannot remove \(dir): \(error)") }
        }
        let path = dir + "/alpha.sqlite"
        let alpha = NodeIdentity()
        let bravo = NodeIdentity()
        let store = try Store(path: path, logger: Self.quiet)
        _ = try store.rememberKeys(bravo.publicKeys, name: "bravo")
        // `relay send`: its own connection to alpha's database.
        let maker = BundleMaker(identity: alpha, store: try Store(path: path, logger: Self.quiet))
        func send(_ text: String) throws -> BundleID {
            try maker.submit(kind: .text, destination: .node(bravo.nodeID.short), content: Array(text.utf8), options: nil,
                             now: Date().timeIntervalSince1970)
        }
        let now = Date().timeIntervalSince1970
        let before = try send("stored while alpha was stopped")
        let node = try Node(config: NodeConfig(identity: alpha, networkKey: NetworkKey.random(), name: "alpha"), store: store,
                            links: [LinkInfo(name: "radio", properties: LinkFactory.tcpProperties())], now: now)
        let during = try send("stored after alpha's engine read the store, before its runtime was made")
        let runtime = Runtime(node: node, store: store, links: [], logger: Self.quiet)
        let later = try send("stored after the runtime was made, before it ran")
        #expect(node.directedHolding(before, now: now) != nil, "the engine's index has what was stored before it started")
        #expect(node.directedHolding(during, now: now) == nil && node.directedHolding(later, now: now) == nil)
        // The runtime reads the feed on from where the engine's index ends (on the parent of this change it began at
        // the feed's end when it ran, past `during`).
        #expect(runtime.lastEvent == node.feedPosition, "the runtime's feed starts at \(runtime.lastEvent), the engine's index at \(node.feedPosition)")
        _ = runtime.pollStore(now: now + 1)
        #expect(node.directedHolding(during, now: now + 1) != nil, "the message stored while the relay started was not taken up")
        #expect(node.directedHolding(later, now: now + 1) != nil, "the message stored before the runtime ran was not taken up")
        #expect(runtime.lastEvent > node.feedPosition)
    }
}
