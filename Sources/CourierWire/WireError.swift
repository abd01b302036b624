/// Everything a wire decoder can reject. Decoders are total: any byte sequence yields a value or one of these.
public enum WireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The input ended inside the named field.
    case truncated(field: String)
    /// A varint longer than allowed, or not in its shortest form.
    case invalidVarint(field: String)
    /// A field holds a value the format forbids (the reason says which rule).
    case invalidValue(field: String, reason: String)
    /// The packet names a protocol version this node does not speak.
    case unsupportedVersion(UInt8)
    /// A reserved bit or code point is set: a newer sender. Dropped and counted, never a crash.
    case unsupportedFeature(String)
    /// Bytes are left over where the format says the structure ends.
    case trailingBytes(field: String, count: Int)
    /// The input is larger than the format allows.
    case tooLarge(field: String, size: Int, limit: Int)
    /// Authentication failed: wrong network key, unknown sender, or the packet was altered.
    case authenticationFailed
    /// An origin signature did not verify, or a signature was required and absent.
    case badSignature
    /// The sender's short id matches no known node (its announce has not been heard yet).
    case unknownSender(ShortID)
    /// Decompression failed or would exceed the output bound.
    case decompressionFailed(String)
    /// The bundle names a compression dictionary this node does not have.
    case unknownDictionary(UInt8)
    /// End-to-end decryption failed, or this node is not the recipient.
    case decryptionFailed

    public var description: String {
        switch self {
        case .truncated(let field): return "input ends inside \(field)"
        case .invalidVarint(let field): return "invalid varint in \(field)"
        case .invalidValue(let field, let reason): return "invalid \(field): \(reason)"
        case .unsupportedVersion(let v): return "unsupported protocol version \(v)"
        case .unsupportedFeature(let what): return "unsupported feature: \(what)"
        case .trailingBytes(let field, let count): return "\(count) unexpected bytes after \(field)"
        case .tooLarge(let field, let size, let limit): return "\(field) is \(size) bytes, limit \(limit)"
        case .authenticationFailed: return "authentication failed (wrong network key, or altered packet)"
        case .badSignature: return "origin signature missing or invalid"
        case .unknownSender(let id): return "unknown sender \(id)"
        case .decompressionFailed(let why): return "decompression failed: \(why)"
        case .unknownDictionary(let id): return "unknown compression dictionary \(id)"
        case .decryptionFailed: return "end-to-end decryption failed"
        }
    }
}

extension WireError {
    /// The same error with its field named as part of `outer` ("receipt entry 3" and "sequence" give "receipt entry 3
    /// sequence"): what a decoder of repeated entries throws, so the message says which entry is wrong.
    func within(_ outer: String) -> WireError {
        switch self {
        case .truncated(let f): return .truncated(field: "\(outer) \(f)")
        case .invalidVarint(let f): return .invalidVarint(field: "\(outer) \(f)")
        case .invalidValue(let f, let why): return .invalidValue(field: "\(outer) \(f)", reason: why)
        case .trailingBytes(let f, let n): return .trailingBytes(field: "\(outer) \(f)", count: n)
        case .tooLarge(let f, let size, let limit): return .tooLarge(field: "\(outer) \(f)", size: size, limit: limit)
        default: return self
        }
    }
}
