import CourierLinks
import CourierTestSupport
import CourierTooling
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The serial drivers over real kernel pseudo-terminals, with a noisy line.
@Suite(.serialized, .timeLimit(.minutes(20))) struct PTYLinkTests {
    var options: LinkOptions {
        var o = LinkOptions()
        o.backoff = Backoff(initial: 0.05, maximum: 0.5)
        return o
    }

    /// Writes frames into the line with damage on every other one: a flipped byte, a dropped byte, garbage, or a
    /// truncated frame. Returns the frames that were sent clean (each follows a damaged one).
    static func noisyWrite(_ pty: PTY, frames: [[UInt8]], encode: ([UInt8]) -> [UInt8], seed: UInt64) -> [[UInt8]] {
        var g = SplitMix64(seed: seed)
        var clean: [[UInt8]] = []
        for (i, f) in frames.enumerated() {
            var bytes = encode(f)
            if i % 2 == 0 {
                switch g.next() % 4 {
                case 0: bytes[1 + Int(g.next() % UInt64(bytes.count - 2))] ^= UInt8(1 + g.next() % 255)
                case 1: bytes.remove(at: 1 + Int(g.next() % UInt64(bytes.count - 2)))
                case 2: bytes.insert(contentsOf: (0..<(1 + Int(g.next() % 30))).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: 0)
                default: bytes = Array(bytes.prefix(1 + Int(g.next() % UInt64(bytes.count - 1))))
                }
            } else {
                clean.append(f)
            }
            pty.write(bytes)
        }
        return clean
    }

    @Test func framedSerialOverANoisyLine() async throws { try await onOwnThread { try await self.framedSerialOverANoisyLineBody() } }
    func framedSerialOverANoisyLineBody() async throws {
        let pty = PTY()
        let link = try LinkFactory.make(.serial(path: pty.path, baud: 115_200), options: self.options, logger: T.logger)
        let events = EventCollector(link)
        link.start()
        defer { link.stop() }
        try #require(await events.wait { $0.upCount == 1 }, "the link never came up: nothing below can pass")
        var g = SplitMix64(seed: 8)
        let frames = (0..<300).map { _ in T.randomFrame(&g) }
        let clean = Self.noisyWrite(pty, frames: frames, encode: COBSFrameCodec().encode, seed: 9)
        let all = Set(frames)
        #expect(await events.wait { Set($0.received).isSuperset(of: clean) }, "every frame after a damaged one arrives")
        for f in events.received { #expect(all.contains(f), "a damaged frame was delivered") }
        // And the other way: what the driver sends comes out of the line intact.
        var rx = COBSFrameCodec()
        var out: [[UInt8]] = []
        for f in frames.prefix(50) { try await link.send(f) }
        let end = Date().addingTimeInterval(30)
        while out.count < 50 && Date() < end { out += rx.feed(pty.read(timeout: 0.2)[...]) }
        #expect(out == Array(frames.prefix(50)))
    }

    @Test func kissOverANoisyLineAcceptsNoDamagedPacket() async throws { try await onOwnThread { try await self.kissOverANoisyLineAcceptsNoDamagedPacketBody() } }
    func kissOverANoisyLineAcceptsNoDamagedPacketBody() async throws {
        // KISS has no checksum between host and TNC; the Courier packet's tag one layer up rejects damage.
        let pty = PTY()
        var o = self.options
        o.callsign = AX25.Station("N0CALL-1")
        let link = try LinkFactory.make(.kiss(path: pty.path, baud: 9_600), options: o, logger: T.logger)
        let events = EventCollector(link)
        link.start()
        defer { link.stop() }
        try #require(await events.wait { $0.upCount == 1 }, "the link never came up: nothing below can pass")
        // The TNC got its parameters first.
        var params: [UInt8] = []
        let pend = Date().addingTimeInterval(10)
        while params.count < 16 && Date() < pend { params += pty.read(timeout: 0.2) }
        #expect(params == [0xC0, 0x01, 30, 0xC0, 0xC0, 0x02, 63, 0xC0, 0xC0, 0x03, 10, 0xC0, 0xC0, 0x04, 10, 0xC0])

        let sender = NodeIdentity()
        let net = NetworkKey.random()
        let sealer = PacketSealer(networkKey: net, sender: sender.nodeID)
        let opener = PacketOpener(networkKey: net)
        var g = SplitMix64(seed: 10)
        let packets = (0..<200).map { i in sealer.seal([.summary(SummaryRecord(isFinal: true, digests: (0..<(1 + Int(g.next() % 50))).map { _ in UInt32(truncatingIfNeeded: g.next()) }))], counter: UInt32(i)) }
        let remote = KISSFrameCodec(port: 0, ax25: AX25.Station("N0CALL-2"))
        let clean = Self.noisyWrite(pty, frames: packets, encode: remote.encode, seed: 11)
        #expect(await events.wait { Set($0.received).isSuperset(of: clean) })
        var accepted = 0
        for f in events.received {
            if let p = try? opener.open(f, candidates: { _ in [sender.nodeID] }) {
                accepted += 1
                #expect(packets.contains(f))
                #expect(p.records.count == 1)
            }
        }
        #expect(accepted >= clean.count)
    }

    @Test func hotUnplugAndReplug() async throws { try await onOwnThread { try await self.hotUnplugAndReplugBody() } }
    func hotUnplugAndReplugBody() async throws {
        // The driver opens a stable path (like /dev/serial/by-id/... or Direwolf's /tmp/kisstnc) that points at a
        // pty; the pty vanishes mid-transfer and a new one appears at the same path.
        let dir = T.tempDir()
        let path = dir + "/modem"
        var pty = PTY()
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: pty.path)
        let link = try LinkFactory.make(.serial(path: path, baud: 57_600), options: self.options, logger: T.logger)
        let events = EventCollector(link)
        link.start()
        defer { link.stop() }
        #expect(await events.wait { $0.upCount == 1 })
        let codec = COBSFrameCodec()
        pty.write(codec.encode([1, 2, 3]))
        #expect(await events.wait { $0.received.count == 1 })
        // Mid-transfer: half a frame, then the device is gone.
        pty.write(Array(codec.encode([9, 9, 9, 9, 9, 9]).prefix(4)))
        // The name goes before the terminal, as udev removes it: the link, retrying, must never open the /dev/pts
        // number the kernel may give another test's terminal meanwhile.
        try FileManager.default.removeItem(atPath: path)
        pty.close()
        #expect(await events.wait { $0.downCount == 1 }, "the link reports down")
        await #expect(throws: LinkError.self) { try await link.send([7]) }
        pty = PTY()
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: pty.path)
        #expect(await events.wait { $0.upCount == 2 }, "the link comes back by itself")
        pty.write(codec.encode([4, 5, 6]))
        #expect(await events.wait { $0.received.count == 2 })
        #expect(events.received == [[1, 2, 3], [4, 5, 6]], "the half frame from before the unplug is not delivered")
        #expect(await sendEventually(link, [7, 7]))
        var rx = COBSFrameCodec()
        var out: [[UInt8]] = []
        let end = Date().addingTimeInterval(20)
        while out.isEmpty && Date() < end { out += rx.feed(pty.read(timeout: 0.2)[...]) }
        #expect(out == [[7, 7]])
        pty.close()
    }

    @Test func missingDeviceIsRetriedWithAClearMessage() async throws { try await onOwnThread { try await self.missingDeviceIsRetriedWithAClearMessageBody() } }
    func missingDeviceIsRetriedWithAClearMessageBody() async throws {
        let e = #expect(throws: LinkError.self) {
            try SerialPort.open("/dev/courier-no-such-device", settings: SerialSettings(baud: 9600), logger: T.logger)
        }
        #expect(e?.description.contains("no such device") == true)
    }

    /// A line that is gone cannot be reached by its name again, even when the kernel gives its /dev/pts number to the
    /// next terminal (CI: a relay whose test line had closed retried /dev/pts/0 and took the next test's KISS line).
    @Test func aClosedTerminalsNameReachesNoOtherTerminal() throws {
        let first = try PseudoTerminal(label: "links")
        let (name, device) = (first.path, first.device)
        let ch = try SerialPort.open(name, settings: SerialSettings(baud: 115_200), logger: T.logger)
        ch.close()
        first.close()
        #expect(!FileManager.default.fileExists(atPath: name))
        let next = try PseudoTerminal(label: "links")
        defer { next.close() }
        #expect(next.path != name)
        let e = #expect(throws: LinkError.self) { try SerialPort.open(name, settings: SerialSettings(baud: 115_200), logger: T.logger) }
        guard case .notFound = e else {
            Issue.record("the old name opened something: \(String(describing: e))")
            return
        }
        // Whether the number came back depends on what else runs; when it did, the raw number reaches the new line.
        if next.device == device {
            let other = try SerialPort.open(device, settings: SerialSettings(baud: 115_200), logger: T.logger)
            other.close()
        }
    }
}
