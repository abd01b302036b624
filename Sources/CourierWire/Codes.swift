/// The codes operators copy between relays (SPEC 19): a join code gives the network key, an identity code a node's
/// public keys. Both are a prefix and lower-case RFC 4648 base32 (no padding) of a payload followed by its CRC-32C
/// (big-endian), so a typo is caught before the code is used.
public enum CodeError: Error, Sendable, Hashable {
    /// The text does not start with the expected prefix.
    case prefix
    /// A character outside the base32 alphabet (after removing spaces and lower-casing).
    case character(Character)
    /// Too few or too many characters for the payload.
    case length
    /// The CRC-32C does not match, or the unused bits of the last character are not zero.
    case check
    /// A join code with flag bits this version does not know (from a newer Courier).
    case unsupportedFlags(UInt8)
    /// An identity code whose keys are not valid public keys.
    case invalidKey
}

/// Base32 with a CRC-32C, the body of join and identity codes.
public enum CheckedBase32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// Base32 of `payload || CRC-32C(payload)` (the CRC big-endian), lower case, without padding; the unused low
    /// bits of the last character are zero.
    public static func encode(_ payload: [UInt8]) -> String {
        var bytes = payload
        let crc = CRC32C.checksum(bytes)
        bytes += [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
        var out: [UInt8] = []
        var acc = 0
        var bits = 0
        for b in bytes {
            acc = (acc << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(self.alphabet[(acc >> bits) & 31])
            }
        }
        if bits > 0 { out.append(self.alphabet[(acc << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The payload of `payloadLength` bytes. `text` is already lower case without spaces.
    public static func decode(_ text: String, payloadLength: Int) throws(CodeError) -> [UInt8] {
        var bytes: [UInt8] = []
        var acc = 0
        var bits = 0
        for c in text.utf8 {
            guard let v = self.alphabet.firstIndex(of: c) else { throw .character(Character(UnicodeScalar(c))) }
            acc = (acc << 5 | v) & 0xFFFF
            bits += 5
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8((acc >> bits) & 0xFF))
            }
        }
        guard bytes.count == payloadLength + 4, bits < 5 else { throw .length }
        guard acc & ((1 << bits) - 1) == 0 else { throw .check }
        let crc = CRC32C.checksum(bytes[0..<payloadLength])
        guard bytes[payloadLength...].elementsEqual([UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]) else {
            throw .check
        }
        return Array(bytes[0..<payloadLength])
    }

    /// What readers accept: any case, spaces anywhere (codes are read out and retyped in groups).
    public static func normalize(_ text: String) -> String {
        String(text.lowercased().filter { $0 != " " })
    }
}

/// `courier1-` and the checked base32 of a flags byte (bit 0: open mode; bits 1-7 reserved, 0) and the 32-byte
/// network key.
public enum JoinCode {
    public static let prefix = "courier1-"
    public static let openFlag: UInt8 = 0x01

    public static func encode(networkKey: NetworkKey, open: Bool) -> String {
        self.prefix + CheckedBase32.encode([open ? self.openFlag : 0] + networkKey.bytes)
    }

    public static func decode(_ code: String) throws(CodeError) -> (networkKey: NetworkKey, open: Bool) {
        let text = CheckedBase32.normalize(code)
        guard text.hasPrefix(self.prefix) else { throw .prefix }
        let b = try CheckedBase32.decode(String(text.dropFirst(self.prefix.count)), payloadLength: 33)
        guard b[0] & ~self.openFlag == 0 else { throw .unsupportedFlags(b[0]) }
        do {
            return (try NetworkKey(bytes: Array(b[1..<33])), b[0] & self.openFlag != 0)
        } catch {
            throw .length
        }
    }
}

/// `courier-id1-` and the checked base32 of the signing public key and the agreement public key (32 bytes each).
public enum IdentityCode {
    public static let prefix = "courier-id1-"

    public static func encode(_ keys: NodePublicKeys) -> String { self.prefix + CheckedBase32.encode(keys.signing + keys.agreement) }

    public static func decode(_ code: String) throws(CodeError) -> NodePublicKeys {
        let text = CheckedBase32.normalize(code)
        guard text.hasPrefix(self.prefix) else { throw .prefix }
        let b = try CheckedBase32.decode(String(text.dropFirst(self.prefix.count)), payloadLength: 64)
        do {
            return try NodePublicKeys(signing: Array(b[0..<32]), agreement: Array(b[32..<64]))
        } catch {
            throw .invalidKey
        }
    }
}
