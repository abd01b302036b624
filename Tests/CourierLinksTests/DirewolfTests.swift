import CourierLinks
import CourierTooling
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Interoperability with an implementation no one here wrote: two Direwolf 1.6 software TNCs joined by a
/// simulated simplex channel carrying real AFSK 1200-baud audio (scripts/direwolf-lab/). Our KISS driver sends
/// AX.25 UI frames to one Direwolf over KISS-over-TCP; the other Direwolf demodulates them and hands them to our
/// second driver. Skipped, saying so, when direwolf is not installed (.ci/run installs it).
@Suite(.serialized, .timeLimit(.minutes(20))) struct DirewolfTests {
    static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/direwolf")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

    static var labScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/direwolf-lab/lab.py").path
    }

    @Test(.enabled(if: available, "direwolf is not installed (apt-get install direwolf): Direwolf interop skipped"))
    func framesCrossTwoDirewolfStationsByteExactBothWays() async throws { try await onOwnThread { try await self.framesCrossTwoDirewolfStationsByteExactBothWaysBody() } }
    func framesCrossTwoDirewolfStationsByteExactBothWaysBody() async throws {
        let dir = T.tempDir()
        let base = 20_000 + Int(getpid() % 5_000) * 2
        let lab = Process()
        lab.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        lab.arguments = [Self.labScript, "--stations", "2", "--dir", dir, "--base-port", "\(base)"]
        let out = Pipe()
        lab.standardOutput = out
        lab.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try lab.run()
        defer {
            // SIGTERM stops the lab and its Direwolf processes; SIGKILL if it has not gone within 20 s.
            lab.terminate()
            let end = Date().addingTimeInterval(20)
            while lab.isRunning && Date() < end { usleep(50_000) }
            if lab.isRunning { kill(lab.processIdentifier, SIGKILL) }
        }
        // Wait for "READY <port> <port>" (Direwolf start-up), generously: CI machines are loaded.
        var text = ""
        let fd = out.fileHandleForReading.fileDescriptor
        let end = Date().addingTimeInterval(180)
        while !text.contains("\n") && Date() < end {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 1000) >= 0 else { break }
            if p.revents != 0 {
                var buf = [UInt8](repeating: 0, count: 256)
                let n = read(fd, &buf, 256)
                if n <= 0 { break }
                text += String(decoding: buf[0..<n], as: UTF8.self)
            }
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        try #require(words.first == "READY" && words.count >= 3, "the Direwolf lab did not start: \(text); logs in \(dir)")
        let ports = words.dropFirst().compactMap { Int($0) }

        var oa = LinkOptions()
        oa.callsign = AX25.Station("N0CALA")
        oa.backoff = Backoff(initial: 0.2, maximum: 2)
        var ob = oa
        ob.callsign = AX25.Station("N0CALB")
        let a = try LinkFactory.make(.kissTCP(host: "127.0.0.1", port: ports[0]), options: oa, logger: T.logger)
        let b = try LinkFactory.make(.kissTCP(host: "127.0.0.1", port: ports[1]), options: ob, logger: T.logger)
        let ea = EventCollector(a)
        let eb = EventCollector(b)
        a.start()
        b.start()
        defer { a.stop(); b.stop() }
        #expect(await ea.wait(60) { $0.upCount >= 1 })
        #expect(await eb.wait(60) { $0.upCount >= 1 })

        var g = SplitMix64(seed: 2026)
        let fromA = (0..<8).map { _ in T.randomFrame(&g, max: 200) }
        let fromB = (0..<8).map { _ in T.randomFrame(&g, max: 200) }
        // A link may flap once just after connecting (the lab probes the ports too): retry until it takes each frame.
        // A link that never takes a frame fails the test at once (not once per frame, a minute each).
        for f in fromA where !(await sendEventually(a, f)) {
            Issue.record("station A's link never took a frame (up \(ea.upCount) times, down \(ea.downCount) times)")
            return
        }
        // Over one simplex channel, one station at a time: let A's burst go out before B keys up.
        #expect(await eb.wait(180) { $0.received.count >= fromA.count }, "A to B over AFSK: \(eb.received.count) of \(fromA.count)")
        for f in fromB where !(await sendEventually(b, f)) {
            Issue.record("station B's link never took a frame (up \(eb.upCount) times, down \(eb.downCount) times)")
            return
        }
        #expect(await ea.wait(180) { $0.received.count >= fromB.count }, "B to A over AFSK: \(ea.received.count) of \(fromB.count)")
        #expect(eb.received == fromA, "byte-exact, in order, A to B")
        #expect(ea.received == fromB, "byte-exact, in order, B to A")
    }
}
