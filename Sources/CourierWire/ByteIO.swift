/// Appends big-endian integers, LEB128 varints and raw bytes to a buffer.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    public var count: Int { self.bytes.count }

    public mutating func u8(_ v: UInt8) { self.bytes.append(v) }

    public mutating func u16(_ v: UInt16) {
        self.bytes.append(UInt8(v >> 8))
        self.bytes.append(UInt8(v & 0xFF))
    }

    public mutating func u24(_ v: UInt32) {
        precondition(v < 1 << 24, "u24 overflow")
        self.bytes.append(UInt8((v >> 16) & 0xFF))
        self.bytes.append(UInt8((v >> 8) & 0xFF))
        self.bytes.append(UInt8(v & 0xFF))
    }

    public mutating func u32(_ v: UInt32) {
        self.bytes.append(UInt8(v >> 24))
        self.bytes.append(UInt8((v >> 16) & 0xFF))
        self.bytes.append(UInt8((v >> 8) & 0xFF))
        self.bytes.append(UInt8(v & 0xFF))
    }

    /// Unsigned LEB128: 7 bits a byte, low group first, high bit set on all but the last byte.
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            self.bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        self.bytes.append(UInt8(v))
    }

    public mutating func varint(_ value: UInt32) { self.varint(UInt64(value)) }
    public mutating func varint(_ value: Int) { self.varint(UInt64(value)) }

    public mutating func append<C: Collection>(_ other: C) where C.Element == UInt8 {
        self.bytes.append(contentsOf: other)
    }

    /// The number of bytes `varint(value)` writes.
    public static func varintSize(_ value: UInt64) -> Int {
        var n = 1
        var v = value >> 7
        while v != 0 { n += 1; v >>= 7 }
        return n
    }

    public static func varintSize(_ value: Int) -> Int { self.varintSize(UInt64(value)) }
}

/// Reads what `ByteWriter` writes. Every read checks the remaining length and throws `WireError`; nothing traps.
public struct ByteReader: Sendable {
    public let bytes: ArraySlice<UInt8>
    public private(set) var offset: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.offset = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    public var remaining: Int { self.bytes.endIndex - self.offset }
    public var isAtEnd: Bool { self.offset >= self.bytes.endIndex }

    public mutating func u8(_ field: String) throws(WireError) -> UInt8 {
        guard self.remaining >= 1 else { throw .truncated(field: field) }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    public mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        guard self.remaining >= 2 else { throw .truncated(field: field) }
        defer { self.offset += 2 }
        return UInt16(self.bytes[self.offset]) << 8 | UInt16(self.bytes[self.offset + 1])
    }

    public mutating func u24(_ field: String) throws(WireError) -> UInt32 {
        guard self.remaining >= 3 else { throw .truncated(field: field) }
        defer { self.offset += 3 }
        return UInt32(self.bytes[self.offset]) << 16 | UInt32(self.bytes[self.offset + 1]) << 8
            | UInt32(self.bytes[self.offset + 2])
    }

    public mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        guard self.remaining >= 4 else { throw .truncated(field: field) }
        defer { self.offset += 4 }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(self.bytes[self.offset + i]) }
        return v
    }

    public mutating func bytes(_ count: Int, _ field: String) throws(WireError) -> ArraySlice<UInt8> {
        guard count >= 0, self.remaining >= count else { throw .truncated(field: field) }
        defer { self.offset += count }
        return self.bytes[self.offset..<self.offset + count]
    }

    public mutating func rest() -> ArraySlice<UInt8> {
        defer { self.offset = self.bytes.endIndex }
        return self.bytes[self.offset...]
    }

    /// Unsigned LEB128, shortest form only, at most `maxBits` significant bits.
    public mutating func varint(_ field: String, maxBits: Int = 32) throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = self.offset
        while true {
            guard self.remaining >= 1 else { throw .truncated(field: field) }
            let byte = self.bytes[self.offset]
            self.offset += 1
            let group = UInt64(byte & 0x7F)
            if shift >= UInt64(maxBits) || (shift > 0 && group >> (UInt64(maxBits) - shift) != 0) {
                throw .invalidVarint(field: field)
            }
            result |= group << shift
            if byte & 0x80 == 0 {
                // Shortest form: a final zero group is only allowed as the sole byte.
                if byte == 0 && self.offset - start > 1 { throw .invalidVarint(field: field) }
                return result
            }
            shift += 7
        }
    }

    public mutating func varint32(_ field: String) throws(WireError) -> UInt32 {
        UInt32(try self.varint(field, maxBits: 32))
    }

    public mutating func varintInt(_ field: String, max: Int) throws(WireError) -> Int {
        let v = try self.varint(field, maxBits: 32)
        guard v <= UInt64(max) else { throw .invalidValue(field: field, reason: "\(v) exceeds \(max)") }
        return Int(v)
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex, two digits a byte.
    public var hex: String {
        let digits: [Character] = Array("0123456789abcdef")
        var s = ""
        for b in self {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xF)])
        }
        return s
    }
}

extension Array where Element == UInt8 {
    /// Parses hex (either case, no separators); nil on any other character or an odd length.
    public init?(hex: String) {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}
