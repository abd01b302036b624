import CourierLinks
import CourierTooling
import CourierWire
import Testing

@Suite struct FramingTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func cobsRoundTripsAndRemovesZeros() {
        var g = SplitMix64(seed: 1)
        for n in [0, 1, 253, 254, 255, 256, 508, 1000] + (0..<200).map({ _ in Int(g.next() % 600) }) {
            let data = (0..<n).map { _ in g.next() % 3 == 0 ? 0 : UInt8(truncatingIfNeeded: g.next()) }
            let enc = COBS.encode(data)
            #expect(!enc.contains(0))
            #expect(enc.count <= n + n / 254 + 1)
            #expect(COBS.decode(enc[...]) == data)
        }
        #expect(COBS.decode([0x05, 0x01][...]) == nil)
        #expect(COBS.decode([0x02, 0x00][...]) == nil)
    }

    /// The noisy-line property at the codec level: random corruption, drops and garbage bursts between frames
    /// never yield a damaged frame, and every frame after a damaged one is received.
    @Test(arguments: [1, 2, 3])
    func cobsCodecNeverPassesDamageAndResynchronises(seed: Int) {
        var g = SplitMix64(seed: UInt64(seed))
        let tx = COBSFrameCodec()
        var rx = COBSFrameCodec()
        var sent: Set<[UInt8]> = []
        var got: [[UInt8]] = []
        var mustArrive: [[UInt8]] = []
        for i in 0..<2_000 {
            let f = T.randomFrame(&g)
            sent.insert(f)
            var bytes = tx.encode(f)
            if i % 2 == 0 {
                switch g.next() % 4 {
                case 0: bytes[Int(g.next() % UInt64(bytes.count))] ^= UInt8(1 + g.next() % 255)
                case 1: bytes.remove(at: Int(g.next() % UInt64(bytes.count)))
                case 2: bytes.insert(contentsOf: (0..<Int(g.next() % 40)).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: Int(g.next() % UInt64(bytes.count)))
                default: bytes = Array(bytes.prefix(Int(g.next() % UInt64(bytes.count))))
                }
            } else {
                mustArrive.append(f)
            }
            // Deliver in random chunk sizes.
            var i = 0
            while i < bytes.count {
                let n = min(bytes.count - i, 1 + Int(g.next() % 64))
                got += rx.feed(bytes[i..<(i + n)])
                i += n
            }
        }
        for f in got { #expect(sent.contains(f)) }
        let gotSet = Set(got)
        for f in mustArrive { #expect(gotSet.contains(f)) }
        #expect(rx.dropped > 500)
    }

    @Test func kissRoundTripWithEscapesAndAX25() {
        var g = SplitMix64(seed: 4)
        let station = AX25.Station("N0CALL-7")!
        let tx = KISSFrameCodec(port: 0, ax25: station)
        var rx = KISSFrameCodec(port: 0, ax25: AX25.Station("N0CALB")!)
        for _ in 0..<500 {
            let f = T.randomFrame(&g)
            let enc = tx.encode(f)
            #expect(enc.first == 0xC0 && enc.last == 0xC0)
            #expect(!enc.dropFirst().dropLast().contains(0xC0))
            #expect(rx.feed(enc[...]) == [f])
        }
        // The AX.25 header names the station, as identification rules require.
        let frame = AX25.uiFrame(from: station, to: AX25.courierDestination, info: [1, 2, 3])
        let ui = AX25.parseUI(frame)!
        #expect(ui.source == station && ui.destination.call == "QST" && ui.pid == 0xF0 && ui.info == [1, 2, 3])
        #expect(AX25.Station("TOOLONGCALL") == nil && AX25.Station("N0CALL-16") == nil && AX25.Station("N0-CALL") == nil)
    }

    @Test func kissParameterFramesAndForeignFramesAreSkipped() {
        let p = KISS.Parameters(txDelay: 30, persistence: 63, slotTime: 10, txTail: 10, fullDuplex: false)
        #expect(p.frames(port: 0) == [[0xC0, 0x01, 30, 0xC0], [0xC0, 0x02, 63, 0xC0], [0xC0, 0x03, 10, 0xC0], [0xC0, 0x04, 10, 0xC0], [0xC0, 0x05, 0, 0xC0]])
        var rx = KISSFrameCodec(port: 0)
        // A frame for port 1 and a bad escape are not delivered; the next good frame is.
        let got = rx.feed(([0xC0, 0x10, 9, 9, 0xC0, 0x00, 0xDB, 0x01, 0xC0] + KISS.frame(type: 0, [7, 8]))[...])
        #expect(got == [[7, 8]])
        #expect(rx.dropped == 2)
    }

    /// An RNode's RSSI (dBm + 157) and SNR (signed quarter dB) reports go up with the packet after them, and only
    /// with that one; a packet without reports has no signal; a report of the wrong length is skipped.
    @Test func rnodeSignalReportsGoWithTheNextPacket() {
        var c = RNodeFrameCodec()
        let stream = KISS.frame(type: 0x23, [UInt8(157 - 112)]) + KISS.frame(type: 0x24, [UInt8(bitPattern: -42)])
            + c.encode([1, 2, 3]) + c.encode([4]) + KISS.frame(type: 0x24, [7, 7]) + KISS.frame(type: 0x24, [8]) + c.encode([5])
        // Fed a byte at a time, as a slow serial line delivers it.
        var got: [(frame: [UInt8], signal: ReceivedSignal?)] = []
        for b in stream { got += c.feedWithSignal([b][...]) }
        #expect(got.map(\.frame) == [[1, 2, 3], [4], [5]])
        #expect(got.map(\.signal) == [ReceivedSignal(rssi: -112, snr: -10.5), nil, ReceivedSignal(rssi: nil, snr: 2)])
        #expect(c.reports == 4)
    }

    @Test func lengthPrefixCodec() {
        var g = SplitMix64(seed: 5)
        let tx = LengthPrefixCodec()
        var rx = LengthPrefixCodec()
        var all: [UInt8] = []
        var frames: [[UInt8]] = []
        for _ in 0..<300 {
            let f = T.randomFrame(&g, max: 3000)
            frames.append(f)
            all += tx.encode(f)
        }
        all += [0, 0]  // keepalive
        var got: [[UInt8]] = []
        var i = 0
        while i < all.count {
            let n = min(all.count - i, 1 + Int(g.next() % 700))
            got += rx.feed(all[i..<(i + n)])
            i += n
        }
        #expect(got == frames)
    }

    /// Semtech's formula against the figures in shared/notes/peer-wire-costs.md.
    @Test func loraTimeOnAir() {
        let sf9 = LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5)
        #expect(abs(sf9.timeOnAir(payload: 50) - 0.329) < 0.002)
        #expect(abs(sf9.timeOnAir(payload: 100) - 0.554) < 0.002)
        #expect(abs(sf9.timeOnAir(payload: 255) - 1.250) < 0.002)
        let sf12 = LoRaParameters(spreadingFactor: 12, bandwidthHz: 125_000, codingRate: 5)
        #expect(abs(sf12.timeOnAir(payload: 50) - 2.3) < 0.05)
        #expect(abs(sf12.timeOnAir(payload: 255) - 9.0) < 0.1)
        let longFast = LoRaParameters(spreadingFactor: 11, bandwidthHz: 250_000, codingRate: 5, preambleSymbols: 16)
        #expect(abs(longFast.timeOnAir(payload: 110) - 1.051) < 0.002)
    }

    @Test func linkSpecsParseAndExplainMistakes() throws {
        #expect(try LinkSpec("kiss:/dev/ttyUSB0:9600") == .kiss(path: "/dev/ttyUSB0", baud: 9600))
        #expect(try LinkSpec("rnode:/dev/ttyACM0") == .rnode(path: "/dev/ttyACM0"))
        #expect(try LinkSpec("serial:/dev/ttyS1:57600") == .serial(path: "/dev/ttyS1", baud: 57600))
        #expect(try LinkSpec("serial:/dev/ttyS1") == .serial(path: "/dev/ttyS1", baud: 9600))
        #expect(try LinkSpec("kiss-tcp:127.0.0.1:8001") == .kissTCP(host: "127.0.0.1", port: 8001))
        #expect(try LinkSpec("tcp-listen:0.0.0.0:4040") == .tcpListen(host: "0.0.0.0", port: 4040))
        #expect(try LinkSpec("tcp:relay.example:4040") == .tcp(host: "relay.example", port: 4040))
        #expect(try LinkSpec("tcp:[::1]:4040") == .tcp(host: "::1", port: 4040))
        #expect(try LinkConfig("serial:/dev/ttyUSB0:9600,mtu=234") == LinkConfig(spec: .serial(path: "/dev/ttyUSB0", baud: 9600), mtu: 234))
        #expect(try LinkConfig("rnode:/dev/ttyACM0").mtu == nil)
        for bad in ["serial:/dev/ttyUSB0,mtu=10", "serial:/dev/ttyUSB0,speed=3"] {
            let e = #expect(throws: LinkError.self) { try LinkConfig(bad) }
            #expect(e?.description.contains("bad link option") == true)
        }
        for bad in ["usb:/dev/x", "kiss", "tcp:host", "tcp:host:99999", "serial:/dev/ttyUSB0:12345", "serial:"] {
            let e = #expect(throws: LinkError.self) { try LinkSpec(bad) }
            #expect(e?.description.contains("bad link") == true, "\(bad)")
        }
    }
}

@Suite struct EnumerationTests {
    @Test func enumerationRunsAndRecognisesModemChips() {
        // No hardware here: the list may be empty or hold only on-board UARTs, but it must come back.
        let ports = SerialPorts.list()
        for p in ports { #expect(!p.name.isEmpty) }
        #expect(ModemGuess.guess(vendor: 0x10C4, product: 0xEA60, productName: nil)?.contains("CP210x") == true)
        #expect(ModemGuess.guess(vendor: 0x1A86, product: 0x7523, productName: nil)?.contains("CH340") == true)
        #expect(ModemGuess.guess(vendor: 0x1A86, product: 0x55D4, productName: nil)?.contains("CH9102") == true)
        #expect(ModemGuess.guess(vendor: 0x0403, product: 0x6001, productName: nil)?.contains("FTDI") == true)
        #expect(ModemGuess.guess(vendor: 0x303A, product: 0x1001, productName: nil)?.contains("ESP32-S3") == true)
        #expect(ModemGuess.guess(vendor: 0x239A, product: 0x8029, productName: nil)?.contains("RAK4631") == true)
        #expect(ModemGuess.guess(vendor: 0x303A, product: 0x4001, productName: nil)?.contains("Espressif") == true)
        #expect(ModemGuess.guess(vendor: 0x1234, product: 0x5678, productName: "RNode v2") == "RNode")
        #expect(ModemGuess.guess(vendor: 0x1234, product: 0x5678, productName: nil) == nil)
    }
}
