import CourierLinks
import CourierNode
import CourierRuntime
import CourierStore
import CourierWire
import Foundation
import Logging
import Testing

/// What `relay send` stores while a relay starts (ReplayTests.messagesSentAfterASenderRestartAllArrive failed once in
/// CI: "after the restart, delivered 2 of 3; still queued at alpha: 1"). Two runtimes in this process, each with a
/// real engine on a real SQLite file, joined by a `VirtualCable` (two real ptys); the messages are stored as
/// `relay send` stores them: by a `BundleMaker` on a connection of its own to the sender's database.
@Suite(.timeLimit(.minutes(15))) struct SubmissionTests {
    /// One relay: its identity, database, link, engine and runtime.
    final class Side: @unchecked Sendable {
        let config: NodeConfig
        let dbPath: String
        let store: Store
        let link: any Link
        var runtime: Runtime?
        var task: Task<Void, Never>?

        init(name: String, key: NetworkKey, dir: String, port: String) throws {
            self.config = NodeConfig(identity: NodeIdentity(), networkKey: key, name: name)
            self.dbPath = "\(dir)/\(name).sqlite"
            self.store = try Store(path: self.dbPath, logger: Self.quiet)
            self.link = try LinkFactory.make(try LinkSpec("serial:\(port):115200"), logger: Self.quiet)
        }

        static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

        /// The engine starts: it reads the store (what is held, the feed's position).
        func makeNode() throws -> Node {
            try Node(config: self.config, store: self.store, links: [LinkInfo(name: self.link.name, properties: self.link.properties)],
                     now: Date().timeIntervalSince1970)
        }

        /// The runtime around `node` runs: it reads the change feed once a second and adopts what was sent.
        func run(_ node: Node) {
            let r = Runtime(node: node, store: self.store, links: [self.link], logger: Self.quiet)
            self.runtime = r
            self.task = Task { await r.run() }
        }

        func stop() async {
            self.runtime?.stop()
            await self.task?.value
        }

        func inbox() throws -> Set<BundleID> { Set(try self.store.inbox(limit: 100).map(\.id)) }
    }

    static func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try condition()
    }

    /// A message stored after the engine read the store at its start and before its runtime first read the change
    /// feed was in neither: not in the engine's index of held bundles (read before it), not in the feed the runtime
    /// read (it began at the feed's end, after it). It stayed queued until the relay restarted. The runtime now reads
    /// the feed from the engine's position (`Node.feedPosition`), so it is sent with the one stored before the start
    /// and the one after. (On the parent of this change the middle one never leaves: 2 of 3 after 90 s.)
    @Test func aMessageSentWhileTheRelayStartsIsSent() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("courier-submission-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cable = try VirtualCable()
        defer { cable.stop() }
        let key = NetworkKey.random()
        let alpha = try Side(name: "alpha", key: key, dir: dir, port: cable.pathA)
        let bravo = try Side(name: "bravo", key: key, dir: dir, port: cable.pathB)
        // Each knows the other's keys (as members of one federation that met before).
        _ = try alpha.store.rememberKeys(bravo.config.identity.publicKeys, name: "bravo")
        _ = try bravo.store.rememberKeys(alpha.config.identity.publicKeys, name: "alpha")
        bravo.run(try bravo.makeNode())

        // `relay send`: its own connection to alpha's database.
        let sender = try Store(path: alpha.dbPath, logger: Side.quiet)
        let maker = BundleMaker(identity: alpha.config.identity, store: sender)
        func send(_ text: String) throws -> BundleID {
            try maker.submit(kind: .text, destination: .node(bravo.config.identity.nodeID.short), content: Array(text.utf8),
                             options: nil, now: Date().timeIntervalSince1970)
        }
        let before = try send("stored while alpha was stopped")
        let node = try alpha.makeNode()
        let during = try send("stored while alpha starts: after its engine read the store, before its runtime runs")
        alpha.run(node)
        // Once alpha's runtime runs (it sent the first), one more.
        #expect(try await Self.waitUntil(90) { try bravo.inbox().contains(before) }, "the message stored before the start never arrived")
        let after = try send("stored while alpha runs")

        let all: Set<BundleID> = [before, during, after]
        let arrived = try await Self.waitUntil(90) { all.isSubset(of: try bravo.inbox()) }
        let got = try bravo.inbox()
        #expect(arrived, "delivered \(all.intersection(got).count) of 3; before the start: \(got.contains(before)), while it started: \(got.contains(during)), after: \(got.contains(after))")
        await alpha.stop()
        await bravo.stop()
    }
}
