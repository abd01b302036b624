import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Emulated Meshtastic devices (Tests/RelayTests/Meshtastic/meshtastic_emulator.py, built on the meshtastic Python
/// package's protobuf classes) sharing one simulated LoRa channel: each serves the client API on a pty (a stable
/// symlink) and on TCP 127.0.0.1.
final class MeshtasticEmulator {
    struct Device {
        let node: UInt32
        let serial: String
        let tcp: Int
    }

    let dir: String
    let process: Process
    private let input: Pipe
    let devices: [Device]

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Meshtastic/meshtastic_emulator.py").path
    }

    init(devices n: Int, timeScale: Double = 0.02, slots: Int = 16, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = R.tempDir()
        self.dir = dir
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.script, dir, "--devices", "\(n)", "--time-scale", "\(timeScale)", "--slots", "\(slots)"]
        let input = Pipe()
        p.standardInput = input
        _ = FileManager.default.createFile(atPath: dir + "/emulator.log", contents: nil)
        let log = FileHandle(forWritingAtPath: dir + "/emulator.log")!
        p.standardOutput = log
        p.standardError = log
        try p.run()
        self.process = p
        self.input = input
        let ready = R.wait(60) { FileManager.default.fileExists(atPath: dir + "/devices.json") || !p.isRunning }
        let data = FileManager.default.contents(atPath: dir + "/devices.json") ?? Data()
        let o = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        self.devices = ((o["devices"] as? [[String: Any]]) ?? []).compactMap { d in
            guard let node = d["node"] as? Int, let serial = d["serial"] as? String, let tcp = d["tcp"] as? Int else { return nil }
            return Device(node: UInt32(node), serial: serial, tcp: tcp)
        }
        if !ready || self.devices.count != n {
            Issue.record("the emulator did not start: \(R.text(dir + "/emulator.log"))", sourceLocation: sourceLocation)
        }
    }

    func unplug(_ i: Int) { self.command("unplug \(i)") }
    func replug(_ i: Int) { self.command("replug \(i)") }

    private func command(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) {
        // A broken pipe (the emulator died) must fail the test, not kill the test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        do { try self.input.fileHandleForWriting.write(contentsOf: Data((s + "\n").utf8)) } catch {
            Issue.record("the emulator is gone (\(error)): \(R.text(self.dir + "/emulator.log"))", sourceLocation: sourceLocation)
        }
    }

    /// What the emulated devices counted: handshakes, packets queued, on air, delivered, refused, overruns...
    var counts: [String: Int] { (self.stats["counts"] as? [String: Int]) ?? [:] }
    /// About the packets the clients gave: the largest payload, the hop limits and ports seen.
    var packets: [String: Any] { (self.stats["packets"] as? [String: Any]) ?? [:] }
    private var stats: [String: Any] {
        let data = FileManager.default.contents(atPath: self.dir + "/stats.json") ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// Closes its standard input (it exits at EOF), then waits; killed if it does not go.
    func stop() {
        try? self.input.fileHandleForWriting.close()
        if !R.wait(10, { !self.process.isRunning }) {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
    }
}

/// Relays on `meshtastic:` (USB serial) and `meshtastic-tcp:` links, through emulated Meshtastic devices that
/// share one channel. The emulator is first checked against the meshtastic package's own client.
/// Whether the meshtastic Python package the emulator is built on can be imported (.ci/run installs it, pinned).
let meshtasticPackage: Bool = {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import meshtastic.protobuf.mesh_pb2"]
    p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    do { try p.run() } catch { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}()

@Suite(.serialized, .timeLimit(.minutes(20)),
       .enabled(if: meshtasticPackage, "the meshtastic Python package is missing: python3 -m pip install meshtastic==2.7.11 (as .ci/run does)"))
struct MeshtasticTests {
    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send \(args): \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func inboxIDs(_ dir: String) throws -> Set<String> { Set(try R.inbox(dir).compactMap { $0["id"] as? String }) }

    /// Courier must give the device nothing it refuses, floods or drops: PRIVATE_APP only, hop limit 0, no want_ack,
    /// payloads within 231 bytes, never a packet into a full transmit queue, no repeated id.
    func expectCleanUse(_ emu: MeshtasticEmulator, sourceLocation: SourceLocation = #_sourceLocation) {
        let c = emu.counts
        for bad in ["want_ack", "hop_limit_raised", "too_large", "dropped_over_233", "queue_overrun", "repeated_id_ignored", "not_decoded", "undecodable_to_radio", "bad_frames"] {
            #expect(c[bad] == nil, "the emulated device counted \(bad): \(c)", sourceLocation: sourceLocation)
        }
        let p = emu.packets
        #expect((p["hop_limits"] as? [Int]) == [0], "hop limits: \(p)", sourceLocation: sourceLocation)
        #expect((p["ports"] as? [Int]) == [256], "ports: \(p)", sourceLocation: sourceLocation)
        #expect(((p["max"] as? Int) ?? 0) <= 231, "largest payload: \(p)", sourceLocation: sourceLocation)
    }

    /// The emulator is right as far as the meshtastic package's own client can tell: its TCPInterface and
    /// SerialInterface complete the config handshake (my_info, node infos, config, channels, config_complete_id), a
    /// heartbeat is answered, and a PRIVATE_APP packet sent by one client reaches the other through the channel.
    @Test func meshtasticPackageClientCompletesItsHandshakeWithTheEmulator() throws {
        let emu = try MeshtasticEmulator(devices: 2)
        defer { emu.stop() }
        try #require(emu.devices.count == 2)
        let check = """
            import sys, threading
            from pubsub import pub
            from meshtastic.tcp_interface import TCPInterface
            from meshtastic.serial_interface import SerialInterface
            tcp_port, tcp_node, serial_path, serial_node = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
            got = threading.Event()
            def on_receive(packet, interface):
                d = packet.get("decoded", {})
                if d.get("portnum") == "PRIVATE_APP" and d.get("payload") == b"courier" and packet.get("from") == tcp_node:
                    got.set()
            pub.subscribe(on_receive, "meshtastic.receive")
            t = TCPInterface("127.0.0.1", portNumber=tcp_port)
            s = SerialInterface(serial_path)
            assert t.myInfo.my_node_num == tcp_node, t.myInfo
            assert s.myInfo.my_node_num == serial_node, s.myInfo
            assert t.localNode.localConfig.lora.region == 3, t.localNode.localConfig.lora
            assert t.metadata.firmware_version.startswith("2.7"), t.metadata
            assert len(t.nodes) == 2 and len(s.nodes) == 2, (t.nodes, s.nodes)
            assert t.localNode.channels[0].role == 1
            t.sendHeartbeat()
            t.sendData(b"courier", destinationId=0xFFFFFFFF, portNum=256, hopLimit=0)
            assert got.wait(10), "the packet never arrived"
            t.close(); s.close()
            print("handshake ok")
            """
        let (rc, out, err) = try R.exec("/usr/bin/env", ["python3", "-c", check, "\(emu.devices[0].tcp)", "\(emu.devices[0].node)",
                                                       emu.devices[1].serial, "\(emu.devices[1].node)"], deadline: 120)
        #expect(rc == 0 && out.contains("handshake ok"), "\(out)\(err)")
        let c = emu.counts
        #expect(c["handshakes"] == 2 && (c["heartbeats"] ?? 0) >= 1 && c["packets_delivered"] == 1, "\(c)")
    }

    /// Two relays, one on a `meshtastic:` serial link, the other on `meshtastic-tcp:`, exchange every kind of
    /// message; 3 KB minutes go in fragments while first one device, then the other, is unplugged and plugged back
    /// mid-transfer; the relays report the link down and up and nothing is lost or duplicated.
    @Test func relaysExchangeEveryKindThroughMeshtasticDevicesUnpluggedMidTransfer() throws {
        let emu = try MeshtasticEmulator(devices: 2)
        defer { emu.stop() }
        try #require(emu.devices.count == 2)
        let dirs = try R.federation(["valley", "committee"])
        let (a, b) = (dirs[0], dirs[1])
        let (idA, idB) = (try R.id(a), try R.id(b))
        let ra = try R.start(["run", "--data-dir", a, "--link", "meshtastic:\(emu.devices[0].serial)"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "meshtastic-tcp:127.0.0.1:\(emu.devices[1].tcp)"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        let upBoth = R.wait(60) {
            (R.text(a + "/run.log").contains("link up") && R.text(b + "/run.log").contains("link up")) || !ra.isRunning || !rb.isRunning
        }
        try #require(upBoth && ra.isRunning && rb.isRunning, "links not up: \(R.text(a + "/run.log")) / \(R.text(b + "/run.log"))")
        #expect(R.text(a + "/run.log").contains("EU_868") && R.text(a + "/run.log").contains("LONG_FAST"), "the device's region and preset are logged")

        // Every kind: an alert and an aid request to everyone; a grievance and a text to one node; an offer back.
        let alert = try self.send(a, ["--everyone", "--kind", "alert", "Flood warning: the river is rising."])
        let aid = try self.send(a, ["--everyone", "--kind", "aid", "--respond-by", "12", "Two sacks of flour for the school kitchen."])
        let grievance = try self.send(a, ["--to", idB, "--unknown-ok", "--kind", "grievance", "The pump at the upper well is broken."])
        let text = try self.send(b, ["--to", idA, "--unknown-ok", "--kind", "text", "Received; the committee meets Friday."])
        let arrived = try R.wait(120) {
            try self.inboxIDs(b).isSuperset(of: [alert, aid, grievance]) && self.inboxIDs(a).contains(text)
        }
        let (inboxA, inboxB) = (try R.inbox(a), try R.inbox(b))
        #expect(arrived, "inbox of committee: \(inboxB); of valley: \(inboxA)")
        let offer = try self.send(b, ["--to", idA, "--kind", "offer", "--reference", aid, "We can bring 10 sacks by evening."])
        #expect(try R.wait(120) { try self.inboxIDs(a).contains(offer) }, "the offer did not arrive")

        // 3 KB minutes, in fragments of at most 231 bytes; the device unplugged and back mid-transfer, each side.
        var g = SystemRandomNumberGenerator()
        let words = ["water", "rota", "east", "quarter", "pump", "committee", "assembly", "vote", "bread", "clinic", "road", "diesel"]
        var minutes = "Minutes of the water committee."
        while minutes.utf8.count < 3_000 { minutes += " " + words[Int(g.next() % UInt64(words.count))] + String(g.next() % 1000) }
        let file = a + "/../minutes.txt"
        try minutes.write(toFile: file, atomically: true, encoding: .utf8)
        let onAirBefore = emu.counts["packets_on_air"] ?? 0
        let mid = try self.send(a, ["--to", idB, "--kind", "minutes", "--file", file])
        let started = R.wait(60) { (emu.counts["packets_on_air"] ?? 0) >= onAirBefore + 2 }
        #expect(started, "the transfer did not start: \(emu.counts)")
        emu.unplug(0)
        #expect(R.wait(30) { R.text(a + "/run.log").contains("link down") }, "valley never saw its device go")
        let early = try self.inboxIDs(b).contains(mid)
        #expect(!early, "delivered before the unplug: the test needs a slower channel")
        emu.replug(0)
        emu.unplug(1)
        #expect(R.wait(30) { R.text(b + "/run.log").contains("link down") }, "committee never saw its device go")
        emu.replug(1)
        let delivered = try R.wait(180) { try self.inboxIDs(b).contains(mid) }
        #expect(delivered, "the minutes never arrived: \(emu.counts)")
        let inbox = try R.inbox(b)
        #expect(inbox.first { $0["id"] as? String == mid }?["text"] as? String == minutes, "the minutes arrived intact")
        #expect(Set(inbox.compactMap { $0["id"] as? String }).count == inbox.count, "no duplicates")
        #expect(R.count("link up", in: R.text(a + "/run.log")) >= 2 && R.count("link up", in: R.text(b + "/run.log")) >= 2,
                "both relays reconnected after the replug")
        #expect((emu.counts["handshakes"] ?? 0) >= 4, "each reconnection ran the config handshake again: \(emu.counts)")
        self.expectCleanUse(emu)
    }

    /// An alert sent by one relay reaches the two others on the same Meshtastic channel (serial, TCP, serial).
    @Test func anAlertAcrossThreeRelaysOnOneMeshtasticChannel() throws {
        let emu = try MeshtasticEmulator(devices: 3)
        defer { emu.stop() }
        try #require(emu.devices.count == 3)
        let dirs = try R.federation(["valley", "committee", "clinic"])
        let specs = ["meshtastic:\(emu.devices[0].serial):115200", "meshtastic-tcp:127.0.0.1:\(emu.devices[1].tcp)", "meshtastic:\(emu.devices[2].serial)"]
        var relays: [Process] = []
        defer { for r in relays { R.stop(r) } }
        for (d, s) in zip(dirs, specs) { relays.append(try R.start(["run", "--data-dir", d, "--link", s], log: d + "/run.log")) }
        let up = R.wait(60) { dirs.allSatisfy { R.text($0 + "/run.log").contains("link up") } || relays.contains { !$0.isRunning } }
        try #require(up && relays.allSatisfy(\.isRunning), "links not up: \(dirs.map { R.text($0 + "/run.log") })")
        let alert = try self.send(dirs[0], ["--everyone", "--kind", "alert", "Checkpoint on the valley road since dawn."])
        let everywhere = try R.wait(120) { try self.inboxIDs(dirs[1]).contains(alert) && self.inboxIDs(dirs[2]).contains(alert) }
        #expect(everywhere, "the alert did not reach every relay: \(emu.counts)")
        self.expectCleanUse(emu)
    }

    /// A device that does not answer the config request (no Meshtastic firmware, or the serial module holding the
    /// port) stops `relay run` at start with one line and exit 69; a bad spec is a usage error (64).
    @Test func aSilentDeviceOrABadSpecIsRefusedAtStart() throws {
        let dirs = try R.federation(["valley"])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let (rc, _, err) = try R.runWithin(60, ["run", "--data-dir", dirs[0], "--link", "meshtastic:\(cable.pathA)"])
        #expect(rc == 69, "\(err)")
        let errorLines = err.split(separator: "\n").filter { $0.hasPrefix("relay: ") }
        #expect(errorLines.count == 1 && errorLines[0].contains("no Meshtastic device answered the config request"), "\(err)")
        let (rc2, _, err2) = try R.runWithin(30, ["run", "--data-dir", dirs[0], "--link", "meshtastic-tcp:127.0.0.1,mtu=240"])
        #expect(rc2 == 64 && err2.contains("at most 231"), "\(err2)")
    }
}
