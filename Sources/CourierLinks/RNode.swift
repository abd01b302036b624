import Foundation
import Logging

/// RNode LoRa modems: KISS framing without port nibbles, plus radio commands (markqvist/RNode_Firmware
/// Framing.h; Reticulum's RNodeInterface). Courier detects the device, sets the radio and turns it on, then
/// sends packets as DATA frames.
public enum RNode {
    public enum Command: UInt8, Sendable {
        case data = 0x00, frequency = 0x01, bandwidth = 0x02, txPower = 0x03, spreadingFactor = 0x04
        case codingRate = 0x05, radioState = 0x06, radioLock = 0x07, detect = 0x08, implicit = 0x09, leave = 0x0A
        case promiscuous = 0x0E, ready = 0x0F
        case statRX = 0x21, statTX = 0x22, statRSSI = 0x23, statSNR = 0x24, statChannelTime = 0x25
        case statPhyParams = 0x26, statBattery = 0x27, statCSMA = 0x28, statTemperature = 0x29
        case board = 0x47, platform = 0x48, mcu = 0x49, firmwareVersion = 0x50, reset = 0x55, error = 0x90
    }

    /// The byte of the firmware's reset report (`C0 55 F8 C0`, Framing.h `CMD_RESET_BYTE`): it booted, radio off.
    public static let resetReport: UInt8 = 0xF8

    /// Error codes the firmware reports (Framing.h `ERROR_*`) after which its radio no longer carries packets as
    /// set up: Courier sets the radio up again, as Reticulum's RNodeInterface does (it reconnects on these).
    public static let radioErrors: [UInt8: String] = [
        0x01: "error 0x01, the radio did not start (check the frequency against the board's band)",
        0x02: "error 0x02, a transmission failed",
        0x06: "error 0x06, the radio chip stopped answering (modem timeout)",
    ]

    public static let detectRequest: UInt8 = 0x73
    public static let detectResponse: UInt8 = 0x46

    /// Radio settings. Defaults: 869.525 MHz (EU868 g3, 10% duty cycle), 125 kHz, SF9, 4/5, 14 dBm.
    public struct Radio: Sendable, Hashable {
        public var frequency: UInt32 = 869_525_000
        public var bandwidth: UInt32 = 125_000
        public var txPower: UInt8 = 14
        public var spreadingFactor: UInt8 = 9
        public var codingRate: UInt8 = 5
        public init() {}

        /// The modulation as the firmware runs it: its preamble lasts about 24 ms and at least 18 symbols
        /// (Config.h LORA_PREAMBLE_TARGET_MS, LORA_PREAMBLE_SYMBOLS_MIN).
        public var lora: LoRaParameters {
            var p = LoRaParameters(spreadingFactor: Int(self.spreadingFactor), bandwidthHz: Int(self.bandwidth), codingRate: Int(self.codingRate))
            p.preambleSymbols = max(18, Int((0.024 / p.symbolTime).rounded(.up)))
            return p
        }

        public var commands: [[UInt8]] {
            func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
            return [
                KISS.frame(type: Command.frequency.rawValue, be32(self.frequency)),
                KISS.frame(type: Command.bandwidth.rawValue, be32(self.bandwidth)),
                KISS.frame(type: Command.txPower.rawValue, [self.txPower]),
                KISS.frame(type: Command.spreadingFactor.rawValue, [self.spreadingFactor]),
                KISS.frame(type: Command.codingRate.rawValue, [self.codingRate]),
            ]
        }
    }

    /// What the device said during the handshake.
    public struct DeviceInfo: Sendable, Hashable {
        public var firmware: String?
        public var platform: UInt8?
        public var mcu: UInt8?
    }

    /// `C0 08 73 C0 50 00 C0 48 00 C0 49 00 C0`: detect, and ask for firmware version, platform and MCU.
    public static let detectSequence: [UInt8] = [0xC0, 0x08, 0x73, 0xC0, 0x50, 0x00, 0xC0, 0x48, 0x00, 0xC0, 0x49, 0x00, 0xC0]

    /// Detects the RNode, configures the radio, turns it on and checks that the device reports back the settings
    /// asked for (the "radio state mismatch" operators otherwise meet later as silence).
    public static func handshake(_ ch: ByteChannel, radio: Radio, path: String, timeout: Double = 5, logger: Logger) throws(LinkError) -> DeviceInfo {
        var decoder = KISSDecoder(maxFrame: 600)
        var info = DeviceInfo()
        var reported: [UInt8: [UInt8]] = [:]
        func await_(_ done: () -> Bool, what: String) throws(LinkError) {
            let end = Date().addingTimeInterval(timeout)
            while !done() {
                guard end.timeIntervalSinceNow > 0 else { throw .handshake("\(path): no RNode answered (\(what)); is RNode firmware installed and the port right?") }
                let bytes = try ch.read(max: 512, timeout: 0.2)
                for (type, data) in decoder.feed(bytes[...]) {
                    reported[type] = data
                    switch Command(rawValue: type) {
                    case .firmwareVersion where data.count >= 2: info.firmware = "\(data[0]).\(String(format: "%02d", data[1]))"
                    case .platform where !data.isEmpty: info.platform = data[0]
                    case .mcu where !data.isEmpty: info.mcu = data[0]
                    case .error where !data.isEmpty: logger.warning("RNode reports an error", metadata: ["code": "\(data[0])"])
                    default: break
                    }
                }
            }
        }
        try ch.write(Self.detectSequence, timeout: 2)
        try await_({ reported[Command.detect.rawValue] == [Self.detectResponse] }, what: "detect")
        try await_({ info.firmware != nil }, what: "firmware version")
        for c in radio.commands { try ch.write(c, timeout: 2) }
        try ch.write(KISS.frame(type: Command.radioState.rawValue, [0x01]), timeout: 2)
        try await_({ reported[Command.radioState.rawValue] == [0x01] }, what: "radio on")
        func be32(_ d: [UInt8]?) -> UInt32? { d.flatMap { $0.count == 4 ? UInt32($0[0]) << 24 | UInt32($0[1]) << 16 | UInt32($0[2]) << 8 | UInt32($0[3]) : nil } }
        var mismatches: [String] = []
        if let f = be32(reported[Command.frequency.rawValue]), f != radio.frequency { mismatches.append("frequency \(f) Hz") }
        if let b = be32(reported[Command.bandwidth.rawValue]), b != radio.bandwidth { mismatches.append("bandwidth \(b) Hz") }
        if let sf = reported[Command.spreadingFactor.rawValue], sf != [radio.spreadingFactor] {
            mismatches.append("spreading factor \(sf.first ?? 0)")
        }
        if let cr = reported[Command.codingRate.rawValue], cr != [radio.codingRate] { mismatches.append("coding rate \(cr.first ?? 0)") }
        guard mismatches.isEmpty else {
            throw .handshake("\(path): RNode radio state mismatch: device reports \(mismatches.joined(separator: ", ")); check the region and settings")
        }
        logger.info("RNode ready", metadata: ["port": "\(path)", "firmware": "\(info.firmware ?? "?")",
                                              "frequency": "\(radio.frequency)", "sf": "\(radio.spreadingFactor)"])
        return info
    }
}

/// RNode DATA frames carry Courier packets; other commands (reports) are counted and skipped, except the RSSI and
/// SNR reports the firmware sends just before each packet it received (RNode_Firmware.ino, `kiss_indicate_stat_rssi`
/// and `kiss_indicate_stat_snr`), which go up with that packet: RSSI as one byte, dBm + 157; SNR as one signed byte,
/// quarter dB (Reticulum's RNodeInterface reads them the same way).
public struct RNodeFrameCodec: FrameCodec {
    /// The firmware's RSSI offset (Config.h `RSSI_OFFSET`).
    public static let rssiOffset = 157.0
    private var decoder = KISSDecoder(maxFrame: 600)
    private var other = 0
    /// Reports seen since the last DATA frame: they belong to the next one.
    private var pending = ReceivedSignal()
    /// The last radio error the device reported (`RNode.radioErrors`), for the reset that usually follows.
    private var lastError: String?
    public private(set) var deviceFailure: String?
    public init() {}
    public var dropped: Int { self.decoder.dropped }
    /// Reports and other non-data frames seen.
    public var reports: Int { self.other }

    public func encode(_ packet: [UInt8]) -> [UInt8] { KISS.frame(type: RNode.Command.data.rawValue, packet) }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        self.feedWithSignal(bytes).map(\.frame)
    }

    public mutating func feedWithSignal(_ bytes: ArraySlice<UInt8>) -> [(frame: [UInt8], signal: ReceivedSignal?)] {
        var out: [(frame: [UInt8], signal: ReceivedSignal?)] = []
        for (type, data) in self.decoder.feed(bytes) {
            switch RNode.Command(rawValue: type) {
            case .data where !data.isEmpty:
                out.append((data, self.pending.rssi == nil && self.pending.snr == nil ? nil : self.pending))
                self.pending = ReceivedSignal()
                continue
            case .statRSSI where data.count == 1:
                self.pending.rssi = Double(data[0]) - Self.rssiOffset
            case .statSNR where data.count == 1:
                self.pending.snr = Double(Int8(bitPattern: data[0])) * 0.25
            case .error where data.count == 1:
                if let what = RNode.radioErrors[data[0]] {
                    self.lastError = what
                    self.deviceFailure = self.deviceFailure ?? "the RNode reported \(what); setting the radio up again"
                }
            case .reset where data == [RNode.resetReport]:
                // After the set-up, a reset means the board rebooted (its firmware does after a modem timeout): the
                // radio is off and keeps nothing of what was set.
                self.deviceFailure = "the RNode reset itself\(self.lastError.map { " after \($0)" } ?? ""), its radio off; setting it up again"
            default:
                break
            }
            self.other += 1
        }
        return out
    }
}
