import CBzip2
@_exported import CourierWire

/// What our peers put on the air for one text message across one hop (shared/notes/peer-wire-costs.md).
public enum PeerCosts {
    /// Meshtastic 2.7 channel text: 16-byte radio header + 6 bytes of `Data` protobuf + text, no MAC, no ack.
    /// Text over 232 bytes is counted as if split into 232-byte packets (Meshtastic cannot send it at all).
    public static func meshtastic(textBytes n: Int) -> Int {
        let packets = max(1, (n + 231) / 232)
        return n + packets * 22
    }

    /// Reticulum/LXMF AES-CBC + HMAC token size for n plaintext bytes.
    static func token(_ n: Int) -> Int { 16 + 16 * (n / 16 + 1) + 32 }

    /// Reticulum 1.5.7 + LXMF 1.2.1 over an established link between neighbours, from the formulas measured in
    /// the notes, plus 2 bytes of HDLC framing a packet (escapes not counted, so this slightly favours LXMF).
    /// `content` is the UTF-8 text; the 111 bytes of LXMF fields are modelled as 96 bytes of hashes and signature
    /// (incompressible) and 15 bytes of msgpack.
    public static func lxmf(content: [UInt8]) -> Int {
        let L = content.count + 111
        if content.count <= 319 {
            // One packet out (19 + token), one 115-byte proof back.
            return 19 + Self.token(L) + 115 + 2 * 2
        }
        var g = SplitMix64(seed: UInt64(content.count))
        var fields = (0..<96).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        fields += [0x94, 0xCB, 0x41, 0xD9, 0x5A, 0x3B, 0x10, 0x00, 0x00, 0xC4, 0x00, 0xC5]
        fields += [UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0x80]
        let packed = fields + content
        let C = Self.token(4 + min(L, Self.bzip2Size(packed)))
        let parts = (C + 463) / 464
        let out = 195 + 19 * parts + C
        let back = 115 + 83
        return out + back + 2 * (1 + parts + 2)
    }

    /// bzip2 -9 output size, as LXMF's resource compression makes it.
    public static func bzip2Size(_ input: [UInt8]) -> Int {
        var src = input
        var capacity = UInt32(input.count + input.count / 100 + 600)
        var dst = [Int8](repeating: 0, count: Int(capacity))
        let rc = src.withUnsafeMutableBytes { s in
            dst.withUnsafeMutableBufferPointer { d in
                BZ2_bzBuffToBuffCompress(
                    d.baseAddress, &capacity, s.baseAddress!.assumingMemoryBound(to: CChar.self),
                    UInt32(input.count), 9, 0, 0)
            }
        }
        precondition(rc == BZ_OK, "bzip2 failed: \(rc)")
        return Int(capacity)
    }
}
