import CZstd
import Synchronization

/// zstd in the form Courier puts on the wire: a magicless frame (RFC 8878 without the 4-byte magic number), with
/// no content size, no checksum and no dictionary id in the frame header (the bundle names its dictionary and the
/// packet AEAD protects the bytes). Output is bounded: decompression never produces more than `limit` bytes.
public final class Zstd: Sendable {
    /// Compression level used for every bundle. Bytes on air cost far more than CPU on a relay.
    public static let level: Int32 = 19

    private struct Contexts: ~Copyable {
        let cctx: OpaquePointer
        let dctx: OpaquePointer
        var scratch: [UInt8]
    }

    private let dictionary: CompressionDictionary?
    private let state: Mutex<Contexts>

    /// A codec with no dictionary, or with `dictionary` loaded.
    public init(dictionary: CompressionDictionary? = nil) {
        self.dictionary = dictionary
        let c = ZSTD_createCCtx()!
        let d = ZSTD_createDCtx()!
        // ZSTD_c_format (experimental param 2) = ZSTD_f_zstd1_magicless (1); same for ZSTD_d_format (param 1).
        // Each parameter takes, or the linked zstd cannot make Courier's wire format: stop, saying which (bytes
        // compressed otherwise would not be read by any other relay).
        Self.require(ZSTD_CCtx_setParameter(c, ZSTD_c_experimentalParam2, 1), "the magicless frame format (compression)")
        Self.require(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0), "no content size")
        Self.require(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0), "no checksum")
        Self.require(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0), "no dictionary id")
        Self.require(ZSTD_DCtx_setParameter(d, ZSTD_d_experimentalParam1, 1), "the magicless frame format (decompression)")
        // 2^17 = 128 KiB window: enough for any bundle, bounds decoder memory on hostile input.
        Self.require(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 17), "a 128 KiB window limit")
        if let dictionary {
            Self.require(ZSTD_CCtx_refCDict(c, dictionary.cdict), "dictionary \(dictionary.id) (compression)")
            Self.require(ZSTD_DCtx_refDDict(d, dictionary.ddict), "dictionary \(dictionary.id) (decompression)")
        } else {
            Self.require(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, Self.level), "compression level \(Self.level)")
        }
        self.state = Mutex(Contexts(cctx: c, dctx: d, scratch: []))
    }

    /// A zstd setup call that must work (the parameters are fixed; only a zstd library too old or built without
    /// the experimental API refuses them).
    static func require(_ code: Int, _ what: String) {
        precondition(ZSTD_isError(code) == 0, "zstd refused \(what): \(String(cString: ZSTD_getErrorName(code))); Courier needs zstd 1.4 or later with its experimental API")
    }

    deinit {
        self.state.withLock { s in
            ZSTD_freeCCtx(s.cctx)
            ZSTD_freeDCtx(s.dctx)
        }
    }

    public func compress(_ input: some Collection<UInt8>) -> [UInt8] {
        let src = Array(input)
        return self.state.withLock { s in
            let bound = ZSTD_compressBound(src.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = out.withUnsafeMutableBytes { dst in
                src.withUnsafeBytes { srcBuf in
                    ZSTD_compress2(s.cctx, dst.baseAddress, bound, srcBuf.baseAddress, src.count)
                }
            }
            precondition(ZSTD_isError(n) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
            out.removeSubrange(n...)
            return out
        }
    }

    /// Decompresses exactly one magicless frame. Throws when the input is not one valid frame (nothing may follow
    /// it), when the frame asks for a window above 2^17 bytes, or when the output would exceed `limit` bytes.
    public func decompress(_ input: some Collection<UInt8>, limit: Int) throws(WireError) -> [UInt8] {
        let src = Array(input)
        guard !src.isEmpty else { throw .decompressionFailed("empty frame") }
        let result: Result<[UInt8], WireError> = self.state.withLock { s in
            if s.scratch.count < limit + 1 { s.scratch = [UInt8](repeating: 0, count: limit + 1) }
            _ = ZSTD_DCtx_reset(s.dctx, ZSTD_reset_session_only)
            // Streaming decompression honours ZSTD_d_windowLogMax; one byte of headroom tells "exactly limit"
            // from "more than limit".
            let outcome: (Int, Int, Int) = s.scratch.withUnsafeMutableBytes { dst in
                src.withUnsafeBytes { srcBuf in
                    var input = ZSTD_inBuffer(src: srcBuf.baseAddress, size: src.count, pos: 0)
                    var output = ZSTD_outBuffer(dst: dst.baseAddress, size: limit + 1, pos: 0)
                    while true {
                        let r = ZSTD_decompressStream(s.dctx, &output, &input)
                        if ZSTD_isError(r) != 0 { return (r, input.pos, output.pos) }
                        if r == 0 { return (0, input.pos, output.pos) }  // the frame is complete
                        if output.pos > limit { return (0, input.pos, output.pos) }
                        if input.pos == input.size && output.pos < output.size { return (r, input.pos, output.pos) }
                    }
                }
            }
            let (code, consumed, produced) = outcome
            if produced > limit { return .failure(.decompressionFailed("output exceeds \(limit) bytes")) }
            if ZSTD_isError(code) != 0 {
                return .failure(.decompressionFailed(String(cString: ZSTD_getErrorName(code))))
            }
            if code != 0 { return .failure(.decompressionFailed("frame truncated")) }
            if consumed != src.count { return .failure(.decompressionFailed("bytes after the frame")) }
            return .success(Array(s.scratch[0..<produced]))
        }
        return try result.get()
    }
}

/// A zstd dictionary with its wire number. Number 1 is the shipped default (protocol/dictionaries/).
public final class CompressionDictionary: Sendable {
    public let id: UInt8
    public let bytes: [UInt8]
    nonisolated(unsafe) let cdict: OpaquePointer
    nonisolated(unsafe) let ddict: OpaquePointer

    public init(id: UInt8, bytes: [UInt8]) {
        self.id = id
        self.bytes = bytes
        self.cdict = bytes.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, bytes.count, Zstd.level)! }
        self.ddict = bytes.withUnsafeBytes { ZSTD_createDDict($0.baseAddress, bytes.count)! }
    }

    deinit {
        ZSTD_freeCDict(self.cdict)
        ZSTD_freeDDict(self.ddict)
    }

    /// The default dictionary, id 1, decoded once from the embedded copy.
    public static let courierDefault: CompressionDictionary = CompressionDictionary(
        id: 1, bytes: DefaultDictionary.bytes)
}

/// Compresses bundle bodies the way the protocol asks: the smallest of raw, zstd with the dictionary, and (for
/// longer content) zstd without one.
public struct BodyCompressor: Sendable {
    public let dictionary: CompressionDictionary?
    private let withDictionary: Zstd?
    private let plain: Zstd
    /// Federation dictionaries (SPEC 7.6): read whenever a body names one; written only when `compress` is asked to try it.
    public let shelf: DictionaryShelf

    public init(dictionary: CompressionDictionary? = .courierDefault, shelf: DictionaryShelf = DictionaryShelf()) {
        self.dictionary = dictionary
        self.withDictionary = dictionary.map { Zstd(dictionary: $0) }
        self.plain = Zstd()
        self.shelf = shelf
    }

    /// Content at least this long is also tried without the dictionary.
    public static let plainThreshold = 512

    /// The smallest body (SPEC 7.5): raw, dictionary 1, then each federation dictionary of `also` that is on the
    /// shelf (in that order; strictly smaller wins), then zstd alone for long content. With `bare` (the recipient
    /// reads the bare block form, SPEC 7.2 and 11.11), each dictionary's frame is also tried as its bare block, which
    /// costs one more header byte (00 before the dictionary id) and 5 fewer body bytes; sizes are compared with it.
    public func compress(_ content: [UInt8], also: [UInt8] = [], bare: Bool = false) -> (Compression, [UInt8]) {
        var best: (Compression, [UInt8]) = (.none, content)
        var cost = content.count
        func offer(_ c: Compression, _ body: [UInt8]) {
            var extra = 0
            if case .zstdBlock = c { extra = 1 }
            if body.count + extra < cost { best = (c, body); cost = body.count + extra }
        }
        func offerDictionary(_ id: UInt8, _ frame: [UInt8]) {
            offer(.zstdDictionary(id), frame)
            if bare, let block = BareBlock.strip(frame) { offer(.zstdBlock(id), block) }
        }
        if let d = self.withDictionary, let id = self.dictionary?.id {
            offerDictionary(id, d.compress(content))
        }
        for id in also where id != self.dictionary?.id {
            guard let z = self.shelf.codec(id) else { continue }
            offerDictionary(id, z.compress(content))
        }
        if self.withDictionary == nil || content.count >= Self.plainThreshold {
            offer(.zstd, self.plain.compress(content))
        }
        return best
    }

    public func decompress(_ body: [UInt8], _ compression: Compression, limit: Int = CourierBundle.maxContentSize)
        throws(WireError) -> [UInt8]
    {
        switch compression {
        case .none:
            guard body.count <= limit else { throw .tooLarge(field: "content", size: body.count, limit: limit) }
            return body
        case .zstd:
            return try self.plain.decompress(body, limit: limit)
        case .zstdDictionary(let id):
            return try self.codec(id).decompress(body, limit: limit)
        case .zstdBlock(let id):
            let z = try self.codec(id)
            return try z.decompress(try BareBlock.frame(body), limit: limit)
        }
    }

    private func codec(_ id: UInt8) throws(WireError) -> Zstd {
        if let d = self.withDictionary, self.dictionary?.id == id { return d }
        guard let z = self.shelf.codec(id) else { throw .unknownDictionary(id) }
        return z
    }
}

/// The bare block form (SPEC 7.2): a magicless frame of exactly one compressed block (Block_Type 2, Last_Block 1)
/// without its frame header (`00` and the Window_Descriptor: no content size, checksum or dictionary id) and its
/// 3-byte block header. Both are determined by the block's size, so a reader rebuilds the frame around the block
/// with a 2^17-byte window (the largest 7.2 allows; a window never changes what a valid block decodes to) and
/// decodes it as any frame, bounds included.
public enum BareBlock {
    /// The frame header a reader puts before the block header: no flags, Window_Descriptor `38` (2^17 bytes).
    public static let frameHeader: [UInt8] = [0x00, 0x38]
    /// The largest block a frame may hold (RFC 8878 Block_Maximum_Size).
    public static let maxBlock = 128 * 1024

    /// The block of a frame as `Zstd.compress` writes it, or nil when the frame is not one compressed block after a
    /// two-byte header (a raw or RLE block has no bare form: the bundle keeps the frame).
    public static func strip(_ frame: [UInt8]) -> [UInt8]? {
        guard frame.count > 5, frame[0] == 0x00 else { return nil }
        let h = UInt32(frame[2]) | UInt32(frame[3]) << 8 | UInt32(frame[4]) << 16
        let last = h & 1, type = (h >> 1) & 3, size = Int(h >> 3)
        guard last == 1, type == 2, size == frame.count - 5 else { return nil }
        return Array(frame[5...])
    }

    /// The frame around a bare block, for any zstd decoder. An empty block or one above 128 KiB is an error.
    public static func frame(_ block: [UInt8]) throws(WireError) -> [UInt8] {
        guard !block.isEmpty else { throw .decompressionFailed("empty bare block") }
        guard block.count <= Self.maxBlock else { throw .decompressionFailed("bare block of \(block.count) bytes, above 128 KiB") }
        let h = UInt32(block.count) << 3 | 2 << 1 | 1
        return Self.frameHeader + [UInt8(h & 0xff), UInt8(h >> 8 & 0xff), UInt8(h >> 16 & 0xff)] + block
    }
}
