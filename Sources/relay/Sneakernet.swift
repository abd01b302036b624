import ArgumentParser
import CourierNode
import CourierStore
import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on standard error when it is a terminal; nothing otherwise (logs and pipes stay clean).
struct ProgressBar {
    let total: Int
    let what: String
    let enabled = isatty(STDERR_FILENO) == 1
    var lastDrawn = -1

    mutating func update(_ done: Int, _ extra: String = "") {
        guard self.enabled, self.total > 0 else { return }
        let width = 30
        let filled = done * width / self.total
        guard filled != self.lastDrawn || done == self.total else { return }
        self.lastDrawn = filled
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(self.total) \(self.what) \(extra)\u{1B}[K".utf8))
        if done == self.total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension Relay {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write queued bundles to a file (a USB stick) for another relay to import: sneakernet.",
            discussion: """
                The file is authenticated with the federation's key: only a member can read it in, and any damage is \
                found before anything is imported. This relay keeps its copies (and custody): a lost stick loses \
                nothing, and the receiving side drops what it already has.
                """)
        @OptionGroup var d: DirOption
        @Option(help: "Only bundles for this node (8 hex digits).") var to: String?
        @Option(help: "Only bundles for this group.") var group: String?
        @Flag(help: "JSON summary.") var json = false
        @Argument(help: "The file to write (e.g. /media/usb/courier-to-valley.cba).") var file: String

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                let (id, _) = try dir.identity()
                let key = try dir.sendingKey()
                let store = try dir.store()
                var filter: Destination?
                if let t = self.to {
                    guard let s = ShortID(hex: String(t.prefix(8))), t.count == 8 || t.count == 32 else {
                        throw RelayError.usage("bad node id '\(t)': 8 hex digits, as `relay id` prints")
                    }
                    filter = .node(s)
                } else if let g = self.group { filter = .group(GroupID(name: g)) }
                let now = Int64(Date().timeIntervalSince1970)
                let queued = try store.schedule(for: nil, now: now, limit: BundleArchive.maxCount)
                var picked: [[UInt8]] = []
                var bar = ProgressBar(total: queued.count, what: "bundles read")
                for (i, q) in queued.enumerated() {
                    if filter == nil || q.destination == filter! { picked.append(q.data) }
                    bar.update(i + 1)
                }
                let archive = BundleArchive(created: CourierTime.minutes(unixSeconds: now), writer: id.nodeID, bundles: picked)
                let encoded = archive.encoded(networkKey: key)
                try writeDurably(encoded, to: self.file)
                if self.json {
                    let o: [String: Any] = ["file": self.file, "bundles": picked.count, "bytes": encoded.count]
                    try printJSON(o)
                } else {
                    print("wrote \(picked.count) bundle\(picked.count == 1 ? "" : "s") (\(bytes(encoded.count))) to \(self.file)")
                    if picked.isEmpty { print("note: nothing matched; `relay queue` shows what is queued") }
                }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read bundles from a file written by `relay export`: verified, deduplicated, delivered or passed on.",
            discussion: """
                Works while `relay run` is running: it sends on what was imported within a second. Exit code 0 when \
                every bundle was taken or already here; 65 when the file is not valid for this federation (nothing \
                imported) or some bundles were refused (the rest imported).
                """)
        @OptionGroup var d: DirOption
        @Flag(help: "JSON summary.") var json = false
        @Argument(help: "The file to read.") var file: String

        /// The archive under the first key that authenticates it; the last key's error when none does.
        static func open(_ bytes: [UInt8], keys: [NetworkKey]) throws(WireError) -> BundleArchive {
            var last = WireError.authenticationFailed
            for k in keys {
                do { return try BundleArchive(decoding: bytes, networkKey: k) } catch { last = error }
                if case .authenticationFailed = last { continue }
                throw last
            }
            throw last
        }

        func run() async throws {
            try await guarded {
                let dir = try d.dir()
                // Any key the relay accepts now: an export written just before a key change still imports after it.
                let keys = try dir.keyRotation().keys(current: try dir.network().0, at: Date().timeIntervalSince1970).accept
                guard let data = FileManager.default.contents(atPath: self.file) else {
                    throw RelayError.noInput("cannot read \(self.file): check the path and that the stick is mounted")
                }
                let archive: BundleArchive
                do { archive = try Self.open([UInt8](data), keys: keys) } catch let error as WireError {
                    switch error {
                    case .authenticationFailed:
                        throw RelayError.data("\(self.file) was written by a relay of another federation, or it is damaged: nothing was imported")
                    case .invalidValue(field: "archive magic", _):
                        throw RelayError.data("\(self.file) is not a Courier export (write one with `relay export`): nothing was imported")
                    default:
                        throw RelayError.data("\(self.file) is damaged (\(error)): nothing was imported")
                    }
                }
                let now = Date().timeIntervalSince1970
                let store = try dir.store()
                // No engine: the bundles are judged and taken in over the store (ArchiveImport); the running relay
                // adopts what was stored from the change feed.
                var intake = try ArchiveImport(config: try dir.nodeConfig(store: store), store: store)
                var counts: [String: Int] = [:]
                var refused: [String] = []
                var bar = ProgressBar(total: archive.bundles.count, what: "bundles imported")
                var notStored: String?
                for (i, b) in archive.bundles.enumerated() {
                    switch intake.take(b, now: now) {
                    case .notStored(let why):
                        // The disk is full or the database damaged: the rest would fail the same way.
                        notStored = why
                        counts["not stored", default: 0] += archive.bundles.count - i
                    case .stored: counts["held", default: 0] += 1
                    case .delivered: counts["delivered", default: 0] += 1
                    case .duplicate: counts["already here", default: 0] += 1
                    case .expired: counts["expired", default: 0] += 1
                    case .waiting: counts["waiting for keys", default: 0] += 1
                    case .rejected(let why):
                        counts["refused", default: 0] += 1
                        refused.append(why)
                    }
                    bar.update(i + 1)
                    if notStored != nil { break }
                }
                intake.finish(now: now)
                let age = CourierTime.unixSeconds(minutes: archive.created)
                if self.json {
                    var o: [String: Any] = ["file": self.file, "writer": archive.writer.short.description, "written": age, "bundles": archive.bundles.count]
                    for (k, v) in counts { o[k.replacingOccurrences(of: " ", with: "-")] = v }
                    if !refused.isEmpty { o["refusedReasons"] = refused }
                    if !intake.problems.isEmpty { o["problems"] = intake.problems }
                    try printJSON(o)
                } else {
                    print("\(self.file): \(archive.bundles.count) bundles from relay \(archive.writer.short), written \(now - Double(age) < 60 ? "within the last minute" : relative(now - Double(age)) + " ago")")
                    let parts = ["delivered", "held", "already here", "expired", "refused"].map { "\(counts[$0] ?? 0) \($0)" }
                        + (counts["waiting for keys"].map { ["\($0) waiting for their origin's keys (see `relay status`)"] } ?? [])
                    print("  " + parts.joined(separator: ", "))
                    for r in refused.prefix(10) { print("  refused: \(r)") }
                    // What went wrong without refusing a bundle (a receipt or failure notice not stored): one line each.
                    for p in intake.problems.prefix(10) { print("  problem: \(p)") }
                }
                if let why = notStored {
                    throw RelayError.io("\(counts["not stored"] ?? 0) bundles were not imported: \(why); free space (or repair the database) and run the same import again: what was imported is skipped")
                }
                if !refused.isEmpty {
                    throw RelayError.data("\(refused.count) bundle\(refused.count == 1 ? " was" : "s were") refused (see above); the rest were imported")
                }
            }
        }
    }
}

/// Writes a file so it survives pulling the stick or a power cut right after: a temporary file, fsync, rename,
/// fsync of the folder.
func writeDurably(_ bytes: [UInt8], to path: String) throws {
    let tmp = path + ".partial"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { throw RelayError.cannotCreate("cannot write \(path): \(String(cString: strerror(errno))) (is the stick mounted and writable?)") }
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            let e = String(cString: strerror(errno))
            close(fd)
            unlink(tmp)
            throw RelayError.io("cannot write \(path): \(e); nothing was changed in the queue")
        }
        off += n
    }
    let synced = fsync(fd) == 0
    close(fd)
    guard synced, rename(tmp, path) == 0 else {
        let e = String(cString: strerror(errno))
        unlink(tmp)
        throw RelayError.io("cannot finish writing \(path): \(e); nothing was changed in the queue")
    }
    let dirFD = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY)
    if dirFD >= 0 {
        fsync(dirFD)
        close(dirFD)
    }
}
