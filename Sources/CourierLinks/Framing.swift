import CourierWire

/// Consistent Overhead Byte Stuffing: removes every 0x00 from a frame at a cost of at most one byte in 254, so
/// 0x00 can delimit frames on a byte stream.
public enum COBS {
    public static func encode(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 254 + 2)
        var codeIndex = 0
        var code: UInt8 = 1
        out.append(0)
        for b in input {
            if b == 0 {
                out[codeIndex] = code
                codeIndex = out.count
                out.append(0)
                code = 1
            } else {
                out.append(b)
                code += 1
                if code == 0xFF {
                    out[codeIndex] = code
                    codeIndex = out.count
                    out.append(0)
                    code = 1
                }
            }
        }
        out[codeIndex] = code
        return out
    }

    /// Nil when the input is not valid COBS (a zero byte, or a code that runs past the end).
    public static func decode(_ input: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = input.startIndex
        while i < input.endIndex {
            let code = Int(input[i])
            guard code != 0 else { return nil }
            let end = i + code
            guard end <= input.endIndex else { return nil }
            for j in (i + 1)..<end {
                guard input[j] != 0 else { return nil }
                out.append(input[j])
            }
            i = end
            if code != 0xFF && i < input.endIndex { out.append(0) }
        }
        return out
    }
}

/// Turns packets into bytes for a stream and back. Decoders are fed whatever the line delivers and return the
/// frames completed so far; they never pass a damaged frame upward and resynchronise by themselves.
public protocol FrameCodec: Sendable {
    func encode(_ packet: [UInt8]) -> [UInt8]
    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]]
    /// Frames dropped as damaged (bad CRC, bad escape, oversize) since the start.
    var dropped: Int { get }
    /// Of those, frames whose checksum did not match (line noise); the rest are framing errors (bad escape or
    /// stuffing, oversize, too short: typically a wrong baud rate).
    var crcErrors: Int { get }
    /// Damaged frames that are not checksum failures.
    var framingErrors: Int { get }
    /// As `feed`, with the signal the modem reported for each frame (an RNode reports it before each packet);
    /// codecs whose devices report none return nil signals.
    mutating func feedWithSignal(_ bytes: ArraySlice<UInt8>) -> [(frame: [UInt8], signal: ReceivedSignal?)]
    /// Set when the device said it can no longer carry packets as set up (an RNode that reset itself comes back with
    /// its radio off): the link closes and opens again, running its set-up anew. Nil for devices that never say so.
    var deviceFailure: String? { get }
}

/// How strongly a packet was heard, as its modem reported it: what a relay's engine may order its rebroadcasts by
/// (SPEC 8.5 rule 5) and what `relay status` shows per neighbour (an antenna's alignment, a fading path).
public struct ReceivedSignal: Sendable, Hashable, Codable {
    /// Received signal strength, dBm.
    public var rssi: Double?
    /// Signal-to-noise ratio, dB (LoRa decodes below 0: down to about −20 dB at SF12).
    public var snr: Double?
    public init(rssi: Double? = nil, snr: Double? = nil) {
        self.rssi = rssi
        self.snr = snr
    }
}

extension FrameCodec {
    public var deviceFailure: String? { nil }

    public mutating func feedWithSignal(_ bytes: ArraySlice<UInt8>) -> [(frame: [UInt8], signal: ReceivedSignal?)] {
        self.feed(bytes).map { ($0, nil) }
    }
    /// Codecs without a checksum of their own (KISS, RNode, TCP) see only framing errors.
    public var crcErrors: Int { 0 }
    public var framingErrors: Int { self.dropped - self.crcErrors }
}

/// Framed raw serial, for cables and transparent radios (SPEC 18.1): 0x00, COBS(packet || CRC-32C little-endian),
/// 0x00; a packet of P bytes costs P + 7 bytes when P <= 249. A receiver discards everything up to the next 0x00
/// after garbage, so it resynchronises within one frame.
public struct COBSFrameCodec: FrameCodec {
    /// Longest encoded frame accepted; anything longer is dropped up to the next delimiter.
    public let maxEncoded: Int
    public private(set) var dropped = 0
    public private(set) var crcErrors = 0
    private var buffer: [UInt8] = []
    private var overflow = false

    /// `maxPacket`: by default the largest packet any Courier decoder accepts (SPEC 4.6), so no link MTU is too large.
    public init(maxPacket: Int = Packet.maxSize) {
        self.maxEncoded = maxPacket + 4 + (maxPacket + 4) / 254 + 2
        self.buffer.reserveCapacity(256)
    }

    public func encode(_ packet: [UInt8]) -> [UInt8] {
        let crc = CRC32C.checksum(packet)
        var body = packet
        body += [UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8((crc >> 16) & 0xFF), UInt8(crc >> 24)]
        // A leading delimiter flushes any garbage the receiver collected since the last frame.
        return [0] + COBS.encode(body) + [0]
    }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for b in bytes {
            if b != 0 {
                if self.buffer.count < self.maxEncoded { self.buffer.append(b) } else { self.overflow = true }
                continue
            }
            defer {
                self.buffer.removeAll(keepingCapacity: true)
                self.overflow = false
            }
            if self.buffer.isEmpty { continue }
            if self.overflow { self.dropped += 1; continue }
            guard let body = COBS.decode(self.buffer[...]), body.count > 4 else { self.dropped += 1; continue }
            let payload = Array(body.dropLast(4))
            let t = body.suffix(4)
            let got = UInt32(t[t.startIndex]) | UInt32(t[t.startIndex + 1]) << 8 | UInt32(t[t.startIndex + 2]) << 16
                | UInt32(t[t.startIndex + 3]) << 24
            guard got == CRC32C.checksum(payload) else {
                self.dropped += 1
                self.crcErrors += 1
                continue
            }
            out.append(payload)
        }
        return out
    }
}
