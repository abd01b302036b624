import ArgumentParser
import CourierStore
import CourierWire
import Foundation

/// The child process of the store's crash test (Tests/CourierStoreTests/CrashTests.swift): submits and updates
/// bundles in a loop and prints a line for each change only after the store call returned (committed):
/// `S <bundle id>` for a submission, `A <bundle id> <n>` after fragment n-1 of it was acknowledged.
/// The test kills it with SIGKILL at random moments and checks the database against what was printed.
struct StoreCrashChild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-crash-child", abstract: "Crash-test child: submit and update bundles until killed.",
        shouldDisplay: false)

    @Option var db: String
    @Option var round: UInt32
    @Option var count = 1_000_000

    /// The neighbour every child reports acknowledgements from (fixed, so the test can read its state).
    static let neighbour = try! NodeIdentity(
        signingSeed: [UInt8](repeating: 7, count: 32), agreementSeed: [UInt8](repeating: 8, count: 32)).nodeID

    /// Unbuffered: the line leaves the process before the next change starts.
    static func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    func run() throws {
        let store = try Store(path: self.db)
        let origin = NodeIdentity()
        let neighbour = Self.neighbour
        let compressor = BodyCompressor()
        var mine: [BundleID] = []
        let now = Int64(Date().timeIntervalSince1970)
        let kinds: [Kind] = [.alert, .aidRequest, .grievance, .minutes, .text]
        for i in 0..<self.count {
            let kind = kinds[i % kinds.count]
            let text = "round \(self.round) message \(i): water rota for the east quarter, \(i % 7) families"
            let b = try CourierBundle.make(
                kind: kind, destination: .everyone, content: Array(text.utf8), origin: origin,
                created: CourierTime.minutes(unixSeconds: now) - 10 + self.round % 5, sequence: UInt32(i),
                options: BundleOptions(kind: kind, sign: false), compressor: compressor)
            try store.insert(b, now: now, local: true, custody: true)
            Self.emit("S \(b.id)")
            mine.append(b.id)
            if i % 2 == 1, let target = mine.randomElement() {
                // Move one bundle's transmission forward: send 4 fragments, acknowledge one more of them.
                let t = try store.transmission(target, to: neighbour)
                let acked = t.map { (0..<4).filter($0.isAcked).count } ?? 0
                if acked < 4 {
                    try store.recordSent(target, to: neighbour, transfer: 7, fragments: 4, indices: [0, 1, 2, 3],
                                         nextRetry: now + 60, now: now)
                    try store.recordAck(target, from: neighbour, ack: AckEntry(transfer: 7, received: acked + 1), now: now)
                    Self.emit("A \(target) \(acked + 1)")
                }
            }
        }
    }
}
