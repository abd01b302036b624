/// KISS framing (K. Chepponis and P. Karn, 1987): FEND delimits frames; FEND and FESC inside a frame are escaped.
public enum KISS {
    public static let fend: UInt8 = 0xC0
    public static let fesc: UInt8 = 0xDB
    public static let tfend: UInt8 = 0xDC
    public static let tfesc: UInt8 = 0xDD

    /// Commands (low nibble of the first byte; the high nibble is the TNC port).
    public enum Command: UInt8, Sendable {
        case data = 0, txDelay = 1, persistence = 2, slotTime = 3, txTail = 4, fullDuplex = 5, setHardware = 6
    }

    public static func escape(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        for b in bytes {
            switch b {
            case fend: out += [fesc, tfend]
            case fesc: out += [fesc, tfesc]
            default: out.append(b)
            }
        }
        return out
    }

    /// A whole frame: FEND, type byte, escaped data, FEND.
    public static func frame(type: UInt8, _ data: [UInt8]) -> [UInt8] {
        [fend] + self.escape([type] + data) + [fend]
    }

    /// The KISS parameter frames a TNC takes at start-up (values in the units the protocol uses: 10 ms for
    /// TXDELAY, SLOTTIME and TXTAIL; 0-255 for persistence).
    public struct Parameters: Sendable, Hashable {
        public var txDelay: UInt8? = nil
        public var persistence: UInt8? = nil
        public var slotTime: UInt8? = nil
        public var txTail: UInt8? = nil
        public var fullDuplex: Bool? = nil
        public init(txDelay: UInt8? = nil, persistence: UInt8? = nil, slotTime: UInt8? = nil, txTail: UInt8? = nil, fullDuplex: Bool? = nil) {
            self.txDelay = txDelay
            self.persistence = persistence
            self.slotTime = slotTime
            self.txTail = txTail
            self.fullDuplex = fullDuplex
        }

        public func frames(port: UInt8) -> [[UInt8]] {
            var out: [[UInt8]] = []
            let p = (port & 0x0F) << 4
            if let v = self.txDelay { out.append(KISS.frame(type: p | Command.txDelay.rawValue, [v])) }
            if let v = self.persistence { out.append(KISS.frame(type: p | Command.persistence.rawValue, [v])) }
            if let v = self.slotTime { out.append(KISS.frame(type: p | Command.slotTime.rawValue, [v])) }
            if let v = self.txTail { out.append(KISS.frame(type: p | Command.txTail.rawValue, [v])) }
            if let v = self.fullDuplex { out.append(KISS.frame(type: p | Command.fullDuplex.rawValue, [v ? 1 : 0])) }
            return out
        }
    }
}

/// Splits a KISS byte stream into frames (type byte + unescaped data). A bad escape drops the frame; a frame
/// longer than the bound is dropped up to the next FEND.
public struct KISSDecoder: Sendable {
    public let maxFrame: Int
    public private(set) var dropped = 0
    private var buffer: [UInt8] = []
    private var escaped = false
    private var bad = false

    public init(maxFrame: Int = 2_048) { self.maxFrame = maxFrame }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [(type: UInt8, data: [UInt8])] {
        var out: [(UInt8, [UInt8])] = []
        for b in bytes {
            if b == KISS.fend {
                if !self.buffer.isEmpty {
                    if self.bad || self.escaped { self.dropped += 1 } else { out.append((self.buffer[0], Array(self.buffer.dropFirst()))) }
                }
                self.buffer.removeAll(keepingCapacity: true)
                self.escaped = false
                self.bad = false
                continue
            }
            if self.bad { continue }
            var v = b
            if self.escaped {
                self.escaped = false
                switch b {
                case KISS.tfend: v = KISS.fend
                case KISS.tfesc: v = KISS.fesc
                default:
                    self.bad = true
                    continue
                }
            } else if b == KISS.fesc {
                self.escaped = true
                continue
            }
            if self.buffer.count >= self.maxFrame + 1 {
                self.bad = true
                continue
            }
            self.buffer.append(v)
        }
        return out
    }
}

/// Courier packets in KISS data frames on one TNC port, optionally inside AX.25 UI frames.
public struct KISSFrameCodec: FrameCodec {
    public let port: UInt8
    public let ax25: AX25.Station?
    private var decoder: KISSDecoder
    private var foreign = 0

    public init(port: UInt8 = 0, ax25: AX25.Station? = nil, maxFrame: Int = 2_048) {
        self.port = port & 0x0F
        self.ax25 = ax25
        self.decoder = KISSDecoder(maxFrame: maxFrame)
    }

    /// Damaged frames plus frames that were not ours (other ports, other commands, other AX.25 traffic).
    public var dropped: Int { self.decoder.dropped + self.foreign }
    /// Only bad escapes and oversize frames: another station's traffic on the channel is not an error of this link.
    public var framingErrors: Int { self.decoder.dropped }

    public func encode(_ packet: [UInt8]) -> [UInt8] {
        let data = self.ax25.map { AX25.uiFrame(from: $0, to: AX25.courierDestination, info: packet) } ?? packet
        return KISS.frame(type: self.port << 4 | KISS.Command.data.rawValue, data)
    }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for (type, data) in self.decoder.feed(bytes) {
            guard type == self.port << 4 | KISS.Command.data.rawValue, !data.isEmpty else { self.foreign += 1; continue }
            if self.ax25 != nil {
                guard let ui = AX25.parseUI(data), ui.pid == 0xF0 else { self.foreign += 1; continue }
                out.append(ui.info)
            } else {
                out.append(data)
            }
        }
        return out
    }
}

/// AX.25 UI frames, enough to identify a station on amateur bands and to pass through Direwolf and hardware TNCs.
public enum AX25 {
    /// A callsign and SSID, e.g. `N0CALL-7`.
    public struct Station: Sendable, Hashable, CustomStringConvertible {
        public let call: String
        public let ssid: UInt8

        /// Parses `CALL` or `CALL-SSID`: 1-6 letters and digits, SSID 0-15.
        public init?(_ text: String) {
            let parts = text.uppercased().split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count <= 2, let c = parts.first, (1...6).contains(c.count),
                c.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
            else { return nil }
            var s: UInt8 = 0
            if parts.count == 2 {
                guard let v = UInt8(parts[1]), v <= 15 else { return nil }
                s = v
            }
            self.call = String(c)
            self.ssid = s
        }

        public var description: String { self.ssid == 0 ? self.call : "\(self.call)-\(self.ssid)" }

        /// The 7-byte address field: the callsign shifted left one bit, padded with spaces, then the SSID byte
        /// `C 1 1 SSID E` (C: command/has-been-repeated bit, E: last address).
        public func address(last: Bool, commandBit: Bool) -> [UInt8] {
            var a = Array(self.call.utf8).map { $0 << 1 }
            while a.count < 6 { a.append(0x20 << 1) }
            a.append((commandBit ? 0x80 : 0) | 0x60 | (self.ssid << 1) | (last ? 1 : 0))
            return a
        }

        static func parse(_ b: ArraySlice<UInt8>) -> (Station, last: Bool)? {
            guard b.count == 7 else { return nil }
            let chars = b.prefix(6).map { $0 >> 1 }
            guard chars.allSatisfy({ $0 == 0x20 || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) }) else { return nil }
            let call = String(decoding: chars, as: UTF8.self).trimmingCharacters(in: " ")
            let ssidByte = b[b.startIndex + 6]
            guard let st = Station(call + "-\((ssidByte >> 1) & 0x0F)") else { return nil }
            return (st, ssidByte & 1 == 1)
        }
    }

    /// Courier's AX.25 destination address: `QST` (a call to all stations).
    public static let courierDestination = Station("QST")!

    /// Destination, source, control 0x03 (UI), PID 0xF0 (no layer 3), information field.
    public static func uiFrame(from: Station, to: Station, info: [UInt8]) -> [UInt8] {
        to.address(last: false, commandBit: true) + from.address(last: true, commandBit: false) + [0x03, 0xF0] + info
    }

    public struct UIFrame: Sendable, Hashable {
        public let destination: Station
        public let source: Station
        public let pid: UInt8
        public let info: [UInt8]
    }

    /// Parses a UI frame (digipeater addresses allowed and skipped). Nil for anything else.
    public static func parseUI(_ frame: [UInt8]) -> UIFrame? {
        guard frame.count >= 16, let (dest, destLast) = Station.parse(frame[0..<7]), !destLast,
            let (src, srcLast) = Station.parse(frame[7..<14])
        else { return nil }
        var i = 14
        var last = srcLast
        var hops = 0
        while !last {
            guard i + 7 <= frame.count, hops < 8, let (_, l) = Station.parse(frame[i..<(i + 7)]) else { return nil }
            last = l
            i += 7
            hops += 1
        }
        guard i + 2 <= frame.count, frame[i] & 0xEF == 0x03 else { return nil }
        return UIFrame(destination: dest, source: src, pid: frame[i + 1], info: Array(frame[(i + 2)...]))
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.last == set { s = s.dropLast() }
        while s.first == set { s = s.dropFirst() }
        return String(s)
    }
}
