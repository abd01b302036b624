import CourierLinks
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Meshtastic link against the device emulator (Tests/RelayTests/Meshtastic/meshtastic_emulator.py, on the
/// meshtastic package's protobuf classes): flow control with a small, slow transmit queue, and the stream decoder.
@Suite(.serialized, .timeLimit(.minutes(20))) struct MeshtasticLinkTests {
    /// Starts the emulator; returns (process, its stdin, directory, devices as (node, serial, tcp)).
    func emulator(devices: Int, timeScale: Double, slots: Int, crossingStatus: Bool = false) throws -> (Process, Pipe, String, [(Int, String, Int)]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-link-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("RelayTests/Meshtastic/meshtastic_emulator.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, dir, "--devices", "\(devices)", "--time-scale", "\(timeScale)", "--slots", "\(slots)"]
            + (crossingStatus ? ["--crossing-status"] : [])
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let end = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: dir + "/devices.json") && p.isRunning && Date() < end { usleep(100_000) }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/devices.json"))
        let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try #require(o["devices"] as? [[String: Any]]).map { ($0["node"] as? Int ?? 0, $0["serial"] as? String ?? "", $0["tcp"] as? Int ?? 0) }
        return (p, input, dir, list)
    }

    func counts(_ dir: String) -> [String: Int] {
        let data = FileManager.default.contents(atPath: dir + "/stats.json") ?? Data()
        let o = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        return (o["counts"] as? [String: Int]) ?? [:]
    }

    /// A device with one transmit slot and real-ish airtime: every send after the first must wait for the
    /// device's QueueStatus to free the slot. Nothing is overrun, every packet arrives, in order, on the other
    /// device's client (serial), and the link learnt the device's node number, region and preset.
    static let emulatorAvailable: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import meshtastic.protobuf.mesh_pb2"]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test(.enabled(if: MeshtasticLinkTests.emulatorAvailable, "the meshtastic Python package is missing: python3 -m pip install meshtastic==2.7.11 (as .ci/run does)"))
    func sendsWaitForAFreeTransmitSlot() async throws { try await onOwnThread { try await self.sendsWaitForAFreeTransmitSlotBody() } }

    /// The same, with a QueueStatus counted before each packet arrived coming back ahead of the packet's own answer
    /// (a heartbeat's answer crossing the packet on the line; the race that overran the queue in a loaded CI run):
    /// the link counts the packets the device has not answered yet against the free slots it reports.
    @Test(.enabled(if: MeshtasticLinkTests.emulatorAvailable, "the meshtastic Python package is missing: python3 -m pip install meshtastic==2.7.11 (as .ci/run does)"))
    func aQueueStatusThatCrossedAPacketDoesNotOverrunTheQueue() async throws {
        try await onOwnThread { try await self.sendsWaitForAFreeTransmitSlotBody(crossingStatus: true) }
    }

    func sendsWaitForAFreeTransmitSlotBody(crossingStatus: Bool = false) async throws {
        let (p, input, dir, devs) = try self.emulator(devices: 2, timeScale: 0.3, slots: 1, crossingStatus: crossingStatus)
        defer {
            try? input.fileHandleForWriting.close()
            p.waitUntilExit()
        }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let tx = try LinkFactory.make(LinkConfig("meshtastic-tcp:127.0.0.1:\(devs[0].2)"), logger: logger)
        let rx = try LinkFactory.make(LinkConfig("meshtastic:\(devs[1].1)"), logger: logger)
        try tx.openAtStart()
        try rx.openAtStart()
        let meshTX = try #require(tx as? MeshtasticLink)
        #expect(meshTX.device?.nodeNumber == UInt32(devs[0].0))
        #expect(meshTX.device?.region == 3 && meshTX.device?.modem == "LONG_FAST")
        #expect(tx.properties.mtu == 231)
        tx.start()
        rx.start()
        defer { tx.stop(); rx.stop() }
        // The runtime sends only once a link reported up; so does this test.
        let upBy = Date().addingTimeInterval(20)
        while !(tx.isUp && rx.isUp) && Date() < upBy { try await Task.sleep(nanoseconds: 20_000_000) }
        try #require(tx.isUp && rx.isUp)
        let packets = (0..<6).map { i in [UInt8](repeating: UInt8(i), count: i == 5 ? 231 : 40 + i) }
        let received = Task {
            var got: [[UInt8]] = []
            for await e in rx.events {
                if case .frame(let f, _) = e { got.append(f) }
                if got.count == packets.count { break }
            }
            return got
        }
        let started = Date()
        for pk in packets { try await tx.send(pk) }
        let elapsed = Date().timeIntervalSince(started)
        let timeout = Task {
            try await Task.sleep(nanoseconds: 30_000_000_000)
            received.cancel()
        }
        let got = await received.value
        timeout.cancel()
        #expect(got == packets, "received \(got.map(\.count))")
        // The emulator writes its counts after it hands a packet over: wait for the last one to be counted.
        var c = self.counts(dir)
        let countedBy = Date().addingTimeInterval(20)
        while c["packets_delivered"] != packets.count && Date() < countedBy {
            try await Task.sleep(nanoseconds: 50_000_000)
            c = self.counts(dir)
        }
        #expect(c["queue_overrun"] == nil && (c["queue_filled"] ?? 0) >= 5, "\(c)")
        if crossingStatus { #expect(c["crossing_status"] == packets.count, "\(c)") }
        #expect(c["packets_delivered"] == packets.count, "\(c)")
        // Six packets through one slot: the sends waited for at least five transmissions (each >= 0.25 s here).
        #expect(elapsed > 1.2, "sends did not wait for the queue: \(elapsed) s")
    }

    @Test func streamDecoderSkipsConsoleTextAndOversizeFrames() {
        var d = MeshtasticStreamDecoder()
        let body: [UInt8] = [0x08, 0x01]
        var bytes = Array("INFO  | boot\r\n".utf8) + [0x94, 0xC3, 0x03, 0x00]   // 768 bytes: no frame
        bytes += Meshtastic.frame(body) + [0x94]
        #expect(d.feed(bytes[...]) == [body])
        #expect(d.oversize == 1)
        // The trailing 0x94 began a frame.
        #expect(d.feed([0xC3, 0x00, 0x02, 0x10, 0x05][...]) == [[0x10, 0x05]])
    }

    @Test func specsParse() throws {
        #expect(try LinkSpec("meshtastic:/dev/ttyUSB0") == .meshtastic(path: "/dev/ttyUSB0", baud: 115_200))
        #expect(try LinkSpec("meshtastic:/dev/ttyACM0:921600") == .meshtastic(path: "/dev/ttyACM0", baud: 921_600))
        #expect(try LinkSpec("meshtastic-tcp:192.168.1.50") == .meshtasticTCP(host: "192.168.1.50", port: 4403))
        #expect(try LinkSpec("meshtastic-tcp:meshtasticd.local:4404") == .meshtasticTCP(host: "meshtasticd.local", port: 4404))
        #expect(try LinkSpec("meshtastic-tcp:[::1]") == .meshtasticTCP(host: "::1", port: 4403))
        #expect(try LinkSpec("meshtastic-tcp:[::1]:4403").description == "meshtastic-tcp:[::1]:4403")
        #expect(throws: LinkError.self) { try LinkConfig("meshtastic:/dev/ttyUSB0,mtu=240") }
        #expect(try LinkConfig("meshtastic:/dev/ttyUSB0,mtu=200").mtu == 200)
    }
}
