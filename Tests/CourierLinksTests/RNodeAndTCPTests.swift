import CourierLinks
import CourierTestSupport
import CourierTooling
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(20))) struct RNodeTests {
    var options: LinkOptions {
        var o = LinkOptions()
        o.backoff = Backoff(initial: 0.05, maximum: 0.5)
        o.rnodeRadio.frequency = 433_775_000
        o.rnodeRadio.spreadingFactor = 8
        return o
    }

    /// Two RNode emulators on one channel, a link to each, both up.
    struct Pair {
        let a: RNodeEmulator, b: RNodeEmulator
        let la: any Link, lb: any Link
        let ea: EventCollector, eb: EventCollector
        func stop() {
            self.la.stop()
            self.lb.stop()
            self.a.stop()
            self.b.stop()
        }
    }

    func twoRNodes() async throws -> Pair {
        let a = RNodeEmulator()
        let b = RNodeEmulator()
        a.peers = [b]
        b.peers = [a]
        a.start()
        b.start()
        let la = try LinkFactory.make(.rnode(path: a.pty.path), options: self.options, logger: T.logger)
        let lb = try LinkFactory.make(.rnode(path: b.pty.path), options: self.options, logger: T.logger)
        let p = Pair(a: a, b: b, la: la, lb: lb, ea: EventCollector(la), eb: EventCollector(lb))
        la.start()
        lb.start()
        #expect(await p.ea.wait { $0.upCount == 1 })
        #expect(await p.eb.wait { $0.upCount == 1 })
        return p
    }

    @Test func twoRNodesOnOneChannel() async throws { try await onOwnThread { try await self.twoRNodesOnOneChannelBody() } }
    func twoRNodesOnOneChannelBody() async throws {
        let p = try await self.twoRNodes()
        defer { p.stop() }
        let (a, la, lb, ea, eb) = (p.a, p.la, p.lb, p.ea, p.eb)
        // The radio got exactly the settings asked for.
        #expect(a.configured[0x01] == [0x19, 0xDA, 0xE1, 0x98])  // 433.775 MHz
        #expect(a.configured[0x04] == [8])
        #expect(la.properties.mtu == 254)
        // The firmware's preamble (18 symbols at SF8/125 kHz) and its 1-byte frame header are counted.
        #expect(abs(la.properties.airtime(bytes: 100) - LoRaParameters(spreadingFactor: 8, bandwidthHz: 125_000, codingRate: 5, preambleSymbols: 18).timeOnAir(payload: 101)) < 1e-9)
        var g = SplitMix64(seed: 12)
        let fa = (0..<30).map { _ in T.randomFrame(&g) }
        let fb = (0..<30).map { _ in T.randomFrame(&g) }
        for f in fa { try await la.send(f) }
        for f in fb { try await lb.send(f) }
        #expect(await eb.wait { $0.received.count == 30 })
        #expect(await ea.wait { $0.received.count == 30 })
        #expect(eb.received == fa)
        #expect(ea.received == fb)
        // Each packet came with the RSSI and SNR reports the firmware sent before it (the emulator's -90 dBm, 6 dB).
        #expect(eb.signals.count == 30 && eb.signals.allSatisfy { $0 == ReceivedSignal(rssi: -90, snr: 6) })
    }

    /// The firmware reboots after a modem timeout and comes back with its radio off: the link goes down with the
    /// reason, opens again, sets the radio up anew, and packets flow again (before, they went into a radio that was
    /// off, in silence).
    @Test func anRNodeThatResetItselfIsSetUpAgain() async throws { try await onOwnThread { try await self.anRNodeThatResetItselfIsSetUpAgainBody() } }
    func anRNodeThatResetItselfIsSetUpAgainBody() async throws {
        let p = try await self.twoRNodes()
        defer { p.stop() }
        let (a, la, ea, eb) = (p.a, p.la, p.ea, p.eb)
        try await la.send([1, 2, 3])
        #expect(await eb.wait { $0.received.count == 1 })
        a.resetAfterError(0x06)
        #expect(await ea.wait { $0.downCount == 1 && $0.upCount == 2 }, "the link was not opened and set up again")
        #expect(a.isOn && a.configured[0x04] == [8], "the radio was not set up again: \(a.configured)")
        // The error report alone, or with the reset report in the same read: either names the error.
        #expect(ea.downReasons.first?.contains("error 0x06, the radio chip stopped answering") == true, "\(ea.downReasons)")
        try await la.send([4, 5, 6])
        #expect(await eb.wait { $0.received.count == 2 })
        #expect(eb.received.last == [4, 5, 6])
    }

    @Test func radioStateMismatchAndSilenceAreExplained() throws {
        let e = RNodeEmulator()
        e.forcedSF = 7
        e.start()
        defer { e.stop() }
        let ch = try SerialPort.open(e.pty.path, settings: SerialSettings(baud: 115_200), logger: T.logger)
        defer { ch.close() }
        let err = #expect(throws: LinkError.self) { try RNode.handshake(ch, radio: self.options.rnodeRadio, path: e.pty.path, timeout: 5, logger: T.logger) }
        #expect(err?.description.contains("radio state mismatch") == true)
        #expect(err?.description.contains("spreading factor 7") == true)

        let quiet = RNodeEmulator()
        quiet.silent = true
        quiet.start()
        defer { quiet.stop() }
        let ch2 = try SerialPort.open(quiet.pty.path, settings: SerialSettings(baud: 115_200), logger: T.logger)
        defer { ch2.close() }
        let err2 = #expect(throws: LinkError.self) { try RNode.handshake(ch2, radio: RNode.Radio(), path: quiet.pty.path, timeout: 1, logger: T.logger) }
        #expect(err2?.description.contains("no RNode answered") == true)
    }
}

@Suite(.serialized, .timeLimit(.minutes(20))) struct TCPLinkTests {
    var options: LinkOptions {
        var o = LinkOptions()
        o.backoff = Backoff(initial: 0.05, maximum: 0.5)
        return o
    }

    @Test func relaysOverTCPAndTheDialerRecoversWhenThePeerComesBack() async throws { try await onOwnThread { try await self.relaysOverTCPAndTheDialerRecoversWhenThePeerComesBackBody() } }
    func relaysOverTCPAndTheDialerRecoversWhenThePeerComesBackBody() async throws {
        var listener = try TCPListenLink(name: "listen", host: "127.0.0.1", port: 0, properties: LinkFactory.tcpProperties(), logger: T.logger)
        let port = listener.port
        var el = EventCollector(listener)
        listener.start()
        let dialer = try LinkFactory.make(.tcp(host: "127.0.0.1", port: port), options: self.options, logger: T.logger)
        let ed = EventCollector(dialer)
        dialer.start()
        defer { dialer.stop() }
        #expect(await ed.wait { $0.upCount == 1 })
        #expect(await el.wait { $0.upCount == 1 })
        var g = SplitMix64(seed: 13)
        let big = (0..<5).map { _ in T.randomFrame(&g, max: 16_000) }
        for f in big { try await dialer.send(f) }
        for f in big.reversed() { try await listener.send(f) }
        #expect(await el.wait { $0.received.count == 5 })
        #expect(await ed.wait { $0.received.count == 5 })
        #expect(el.received == big && ed.received == Array(big.reversed()))

        // The peer vanishes mid-transfer...
        listener.stop()
        #expect(await ed.wait { $0.downCount >= 1 })
        // ...and comes back on the same port: the dialer reconnects by itself.
        listener = try TCPListenLink(name: "listen", host: "127.0.0.1", port: port, properties: listener.properties, logger: T.logger)
        el = EventCollector(listener)
        listener.start()
        defer { listener.stop() }
        #expect(await ed.wait { $0.upCount >= 2 })
        #expect(await sendEventually(dialer, [42]))
        #expect(await el.wait { $0.received.contains([42]) })
    }

    @Test func aBusyPortIsExplained() throws {
        let a = try TCPListenLink(name: "a", host: "127.0.0.1", port: 0, properties: LinkFactory.tcpProperties(), logger: T.logger)
        defer { a.stop() }
        let e = #expect(throws: LinkError.self) { try LinkFactory.make(.tcpListen(host: "127.0.0.1", port: a.port), logger: T.logger) }
        #expect(e?.description.contains("in use") == true)
    }
}
