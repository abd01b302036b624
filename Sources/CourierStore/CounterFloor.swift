import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small file beside the identity (`counters.json`) holding, for one node, how far its packet counters, bundle
/// sequence numbers and transfer numbers may have been used (SPEC 3.3, 3.4, 8.2). The store writes and fsyncs it
/// BEFORE it hands out a block of any of them, so a node whose database is lost, damaged and moved aside, or
/// restored from an older copy, never reuses a packet nonce or a bundle id under the same keys: a store opened with
/// a database behind the file continues from the file.
///
/// ```
/// {"node":"<32 hex digits>","packetCounter":N,"bundleSequence":N,"transfer":N,"check":"<8 hex: CRC-32C>"}
/// ```
/// `check` is the CRC-32C of `node|packetCounter|bundleSequence|transfer` (decimal), so a damaged digit is noticed
/// rather than silently lowering a floor. A file naming another node (a new identity) is ignored and replaced.
public struct CounterFloor: Sendable {
    public let path: String
    /// The node the counters belong to (its 16-byte id, hex).
    public let node: String

    public struct Values: Sendable, Equatable {
        public var packetCounter: Int64 = 0
        public var bundleSequence: Int64 = 0
        public var transfer: Int64 = 0
        public init(packetCounter: Int64 = 0, bundleSequence: Int64 = 0, transfer: Int64 = 0) {
            self.packetCounter = packetCounter
            self.bundleSequence = bundleSequence
            self.transfer = transfer
        }
    }

    struct File: Codable {
        var node: String
        var packetCounter: Int64
        var bundleSequence: Int64
        var transfer: Int64
        var check: String

        static func check(node: String, _ v: Values) -> String {
            let text = "\(node)|\(v.packetCounter)|\(v.bundleSequence)|\(v.transfer)"
            return String(format: "%08x", CRC32C.checksum(Array(text.utf8)))
        }
    }

    public init(path: String, node: String) {
        self.path = path
        self.node = node
    }

    /// The floors in the file: zero when there is no file or it names another node. Throws when it is damaged.
    public func read() throws(StoreError) -> Values {
        guard let data = FileManager.default.contents(atPath: self.path) else {
            if FileManager.default.fileExists(atPath: self.path) {
                throw .counterFloor(path: self.path, detail: "cannot be read (check its permissions)")
            }
            return Values()
        }
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: data) } catch {
            throw .counterFloor(path: self.path, detail: "is not the JSON Courier writes")
        }
        let v = Values(packetCounter: f.packetCounter, bundleSequence: f.bundleSequence, transfer: f.transfer)
        guard f.check == File.check(node: f.node, v), v.packetCounter >= 0, v.bundleSequence >= 0, v.transfer >= 0 else {
            throw .counterFloor(path: self.path, detail: "fails its checksum (a damaged digit?)")
        }
        return f.node == self.node ? v : Values()
    }

    /// Raises the floors to at least `v` (each field on its own) and makes the file durable before returning.
    public func raise(to v: Values) throws(StoreError) {
        let old = try self.read()
        let new = Values(packetCounter: max(old.packetCounter, v.packetCounter),
                         bundleSequence: max(old.bundleSequence, v.bundleSequence), transfer: max(old.transfer, v.transfer))
        guard new != old || !FileManager.default.fileExists(atPath: self.path) else { return }
        let f = File(node: self.node, packetCounter: new.packetCounter, bundleSequence: new.bundleSequence, transfer: new.transfer,
                     check: File.check(node: self.node, new))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let bytes: [UInt8]
        do { bytes = Array(try enc.encode(f)) + [0x0A] } catch {
            throw .counterFloor(path: self.path, detail: "cannot be encoded: \(error)")
        }
        try Self.writeDurably(bytes, to: self.path)
    }

    /// Writes a file so that after a power cut it holds either the old or the new bytes: a temporary file in the
    /// same folder, fsynced, renamed over the old one, and the folder fsynced.
    public static func writeDurably(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(StoreError) {
        let tmp = path + ".tmp"
        func fail(_ what: String) -> StoreError {
            let e = errno
            let why = String(cString: strerror(e))
            if e == ENOSPC { return .diskFull(path: path) }
            if e == EROFS || e == EACCES || e == EPERM { return .readOnly(path: path) }
            return .cannotOpen(path: path, detail: "\(what): \(why)")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("create \(tmp)") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else {
                let e = fail("write \(tmp)")
                close(fd)
                unlink(tmp)
                throw e
            }
            off += n
        }
        guard fsync(fd) == 0 else {
            let e = fail("fsync \(tmp)")
            close(fd)
            unlink(tmp)
            throw e
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = fail("rename \(tmp)")
            unlink(tmp)
            throw e
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            defer { close(dfd) }
            guard fsync(dfd) == 0 else { throw fail("fsync \(dir)") }
        }
    }
}
