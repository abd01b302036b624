import CourierLinks
import CourierTestSupport
import CourierTooling
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

enum T {
    static let logger: Logger = {
        var l = Logger(label: "test")
        l.logLevel = .warning
        return l
    }()

    static func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("courier-links-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func randomFrame(_ g: inout SplitMix64, max: Int = 240) -> [UInt8] {
        let n = 1 + Int(g.next() % UInt64(max))
        // Plenty of the bytes framings must escape.
        let special: [UInt8] = [0x00, 0xC0, 0xDB, 0xDC, 0xDD]
        return (0..<n).map { _ in g.next() % 5 == 0 ? special[Int(g.next() % 5)] : UInt8(truncatingIfNeeded: g.next()) }
    }
}

/// Collects a link's events on a task, for waiting on conditions with deadlines.
final class EventCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var frames: [[UInt8]] = []
    private var signalReports: [ReceivedSignal?] = []
    private var ups = 0
    private var downs = 0
    private var reasons: [String] = []
    private var task: Task<Void, Never>?

    init(_ link: any Link) {
        // On a thread of its own, not the shared pool: see `ThreadExecutor`.
        self.task = Task(executorPreference: ThreadExecutor(name: "events \(link.name)")) {
            for await e in link.events { self.record(e) }
        }
    }

    private func record(_ e: LinkEvent) {
        self.lock.lock()
        defer { self.lock.unlock() }
        switch e {
        case .frame(let f, let signal):
            self.frames.append(f)
            self.signalReports.append(signal)
        case .up: self.ups += 1
        case .down(let why):
            self.downs += 1
            self.reasons.append(why)
        }
    }

    var received: [[UInt8]] { self.lock.lock(); defer { self.lock.unlock() }; return self.frames }
    /// The signal each received frame came with (in step with `received`).
    var signals: [ReceivedSignal?] { self.lock.lock(); defer { self.lock.unlock() }; return self.signalReports }
    var upCount: Int { self.lock.lock(); defer { self.lock.unlock() }; return self.ups }
    var downCount: Int { self.lock.lock(); defer { self.lock.unlock() }; return self.downs }
    /// Why the link went down, each time.
    var downReasons: [String] { self.lock.lock(); defer { self.lock.unlock() }; return self.reasons }

    /// Waits until `condition` holds, polling, for at most `seconds`. Returns whether it held.
    @discardableResult
    func wait(_ seconds: Double = 60, _ condition: (EventCollector) -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        // A test past its time limit is cancelled: stop waiting then too.
        while Date() < end && !Task.isCancelled {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }
}

/// Sends once the link takes it: right after a reconnect the link may flap once more (an old peer closing), so
/// retry until the deadline rather than trusting the first "up".
func sendEventually(_ link: any Link, _ packet: [UInt8], within seconds: Double = 60) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end && !Task.isCancelled {
        do {
            try await link.send(packet)
            return true
        } catch {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
    return false
}

/// A task executor with a thread of its own. The relay tests are synchronous and block while they wait for relay
/// processes; Swift Testing runs them on the shared cooperative pool, which has as many threads as the machine has
/// cores (2 in CI). While two of them wait, an async test on that pool gets no thread: its link events go unread
/// and its deadlines pass. The async link tests therefore run (and collect events) on threads of their own.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(name: String) {
        let t = Thread { [self] in self.loop() }
        t.name = "test executor: \(name)"
        t.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let j = UnownedJob(job)
        self.condition.lock()
        self.jobs.append(j)
        self.condition.signal()
        self.condition.unlock()
    }

    private func loop() {
        while true {
            self.condition.lock()
            while self.jobs.isEmpty { self.condition.wait() }
            let j = self.jobs.removeFirst()
            self.condition.unlock()
            j.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

/// Runs an async test's body on a thread of its own (`ThreadExecutor`).
func onOwnThread(_ name: String = #function, _ body: () async throws -> Void) async throws {
    try await withTaskExecutorPreference(ThreadExecutor(name: name)) { try await body() }
}
