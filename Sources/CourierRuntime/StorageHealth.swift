import CourierNode
import CourierStore
import Foundation
import Logging

/// Storage that failed (a full disk, an I/O error): what failed, since when, how often. While it lasts transmission
/// is paused (the engine keeps receiving what it can); a probe write each second says when it works again.
struct StorageFailure: Sendable {
    var operation: String
    var link: String?
    var error: StoreError
    /// What the operator must know beyond the kind, when there is more to say: which card went read-only and what to
    /// do about it (`Disk.readOnlyProblem`).
    var detail: String?
    var since: Double
    /// Failed operations in this episode, and since the last log line.
    var count = 1
    var unlogged = 0
    var lastLogged: Double
    var lastProbe: Double

    /// What failed, in a few words ("disk full").
    static func kind(_ e: StoreError) -> String {
        switch e {
        case .diskFull: return "disk full"
        case .readOnly: return "database not writable"
        case .busy: return "database locked by another process"
        case .corrupt: return "database damaged"
        case .cannotOpen: return "database cannot be opened"
        case .sqlite(_, let code, _): return "I/O error (SQLite \(code))"
        case .counterFloor: return "counter file unreadable"
        case .newerSchema: return "database of a newer Courier"
        case .quotaFull: return "queue full"
        case .inboxFull: return "inbox full"
        }
    }

    /// The line `relay status` and the log show.
    var summary: String { Runtime.storageSummary(self.detail ?? Self.kind(self.error)) }

    /// A new error in the same episode: kept, with its `detail` when it is another one.
    mutating func failed(with error: StoreError, path: String) {
        if error != self.error { self.detail = Self.detail(error, path: path) }
        self.error = error
    }

    /// `detail` for `error` on the store at `path`: a read-only database on a read-only file system is named by its
    /// mount (`relay run` says the same when it starts on one).
    static func detail(_ error: StoreError, path: String) -> String? {
        guard case .readOnly = error else { return nil }
        let dir = (path as NSString).deletingLastPathComponent
        return Disk.readOnly(dir) == nil ? nil : Disk.readOnlyProblem(dir)
    }
}

extension Runtime {
    /// The line `relay status` and the log show while storage fails, `what` failed ("disk full", or the read-only card
    /// named by `Disk.readOnlyProblem`). `relay status` says it too when the relay cannot (its status file on that card).
    public static func storageSummary(_ what: String) -> String { "storage failed: \(what); queued messages are safe; transmission paused" }

    /// Seconds between log lines while storage keeps failing (the first failure is logged at once).
    public static let storageLogInterval: Double = 60
    /// Seconds between probe writes while storage fails.
    public static let storageProbeInterval: Double = 1

    /// The engine (or the runtime itself) could not read or write the store.
    func storageFailed(_ operation: String, link: String?, error: StoreError, now: Double) {
        if var f = self.storage {
            f.count += 1
            f.unlogged += 1
            f.operation = operation
            f.link = link
            f.failed(with: error, path: self.store.path)
            if now - f.lastLogged >= Self.storageLogInterval {
                self.logger.error("storage still failing: \(f.unlogged) more failed operations", metadata: [
                    "operation": "\(operation)", "error": "\(error)", "since": "\(Int(now - f.since)) s"])
                f.unlogged = 0
                f.lastLogged = now
            }
            self.storage = f
            return
        }
        let f = StorageFailure(operation: operation, link: link, error: error, detail: StorageFailure.detail(error, path: self.store.path),
                               since: now, lastLogged: now, lastProbe: now)
        self.storage = f
        self.node.pauseTransmission(true)
        self.logger.error("\(f.summary)", metadata: ["operation": "\(operation)", "link": "\(link ?? "-")", "error": "\(error)"])
        // Kept in the change feed if the store takes it now (a read-only or damaged file, a disk full only for
        // bigger writes); otherwise the line written when storage works again says it.
        do { try self.store.recordStorage("\(f.summary) (\(operation): \(error))", now: Int64(now)) } catch {
            self.logger.debug("storage failure not recorded in the change feed now; it is when storage works again", metadata: ["error": "\(error)"])
        }
        self.writeStatus(now: now, force: true)
    }

    /// While storage fails: a probe write at most every `storageProbeInterval`; when it works, transmission resumes.
    func probeStorage(now: Double) {
        guard var f = self.storage, now - f.lastProbe >= Self.storageProbeInterval else { return }
        f.lastProbe = now
        do {
            try self.store.probeWrite()
        } catch {
            f.failed(with: error, path: self.store.path)
            self.storage = f
            return
        }
        self.storage = nil
        self.node.pauseTransmission(false)
        let line = "storage works again after \(Int((now - f.since).rounded())) s of \(StorageFailure.kind(f.error)) (\(f.count) failed operations, last: \(f.operation)); nothing queued was lost; transmission resumed"
        self.logger.notice("\(line)")
        do { try self.store.recordStorage(line, now: Int64(now)) } catch {
            self.storageFailed("record in the change feed that storage works again", link: nil, error: error, now: now)
            return
        }
        self.writeStatus(now: now, force: true)
    }
}
