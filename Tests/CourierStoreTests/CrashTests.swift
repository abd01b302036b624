import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real processes, real SIGKILL: a child submits and updates bundles and reports each change after it committed;
/// we kill it at random moments, reopen the database and check that nothing acknowledged was lost or doubled and
/// that no state went backwards.
@Suite(.serialized) struct CrashTests {
    /// Reads lines from `fd` until `count` lines arrived, EOF, or the deadline passed.
    static func readLines(_ fd: Int32, count: Int, deadline: Date, into lines: inout [String], buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while lines.count < count {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000))
            if r <= 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return false }  // EOF: the child exited
            buffer += chunk[0..<n]
            while let nl = buffer.firstIndex(of: 0x0A) {
                lines.append(String(decoding: buffer[..<nl], as: UTF8.self))
                buffer.removeSubrange(...nl)
            }
        }
        return true
    }

    @Test(.timeLimit(.minutes(20))) func killedAHundredTimesLosesNothingAcknowledged() throws {
        let exe = S.executable("courier-dev")
        try #require(FileManager.default.isExecutableFile(atPath: exe), "build courier-dev first (swift build)")
        let dir = S.tempDir()
        let db = dir + "/crash.db"
        var submitted: [String: Int] = [:]   // bundle id -> times reported
        var acked: [String: Int] = [:]       // bundle id -> highest acknowledged count reported
        var g = SplitMix64(seed: 2026)
        var unreportedBound = 0
        for round in 0..<100 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: exe)
            child.arguments = ["store-crash-child", "--db", db, "--round", "\(round)"]
            let out = Pipe()
            child.standardOutput = out
            child.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try child.run()
            // Kill after a random number of reported changes: the child is somewhere in its next change.
            let target = 1 + Int(g.next() % 40)
            var lines: [String] = []
            var buffer: [UInt8] = []
            let fd = out.fileHandleForReading.fileDescriptor
            let reached = Self.readLines(fd, count: target, deadline: Date().addingTimeInterval(120), into: &lines, buffer: &buffer)
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(reached, "round \(round): the child stopped early after \(lines.count) lines")
            // Whatever it reported before dying was committed too.
            _ = Self.readLines(fd, count: Int.max, deadline: Date().addingTimeInterval(5), into: &lines, buffer: &buffer)
            #expect(child.terminationReason == .uncaughtSignal)
            for line in lines {
                let f = line.split(separator: " ")
                if f.first == "S", f.count == 2 { submitted[String(f[1]), default: 0] += 1 }
                if f.first == "A", f.count == 3, let n = Int(f[2]) { acked[String(f[1])] = max(acked[String(f[1])] ?? 0, n) }
            }
            unreportedBound += 1

            // Reopen as the relay would after a power cut, and check.
            let store = try Store(path: db)
            #expect(try store.integrityCheck() == "ok")
            for (id, times) in submitted {
                #expect(times == 1, "\(id) reported twice")
                #expect(try store.bundle(BundleID(id)!) != nil, "acknowledged submission \(id) lost in round \(round)")
            }
            // Nothing doubled: at most one submission per round committed but not yet reported.
            let count = try store.count()
            #expect(count >= submitted.count && count <= submitted.count + unreportedBound)
            for (id, n) in acked {
                let t = try store.transmission(BundleID(id)!, to: Self.neighbour)
                let have = t.map { t in (0..<t.fragments).filter(t.isAcked).count } ?? 0
                #expect(have >= n, "acknowledgement state of \(id) went backwards")
            }
        }
        #expect(submitted.count > 300)
        #expect(acked.count > 50)
    }

    /// The neighbour the child reports acknowledgements from (same seeds as courier-dev store-crash-child).
    static let neighbour = try! NodeIdentity(
        signingSeed: [UInt8](repeating: 7, count: 32), agreementSeed: [UInt8](repeating: 8, count: 32)).nodeID
}
