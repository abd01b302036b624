import Foundation
import GRDB

/// What can go wrong with the store, each with the fix an operator can apply. Nothing already stored is damaged by
/// the failed attempt: every change is one SQLite transaction, rolled back on error.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not a SQLite database, or its pages are damaged.
    case corrupt(path: String, detail: String)
    /// The database was written by a newer Courier.
    case newerSchema(path: String, found: Int, supported: Int)
    /// The file or its folder cannot be written (permissions, read-only mount).
    case readOnly(path: String)
    /// The disk is full.
    case diskFull(path: String)
    /// Another process holds a lock longer than the busy timeout.
    case busy(path: String)
    /// The folder does not exist or the file cannot be opened.
    case cannotOpen(path: String, detail: String)
    /// The byte quota is full of bundles that a new local submission (`needed` bytes, of class `priority`, 0 urgent
    /// to 3 bulk) may not evict: more urgent ones, and ones of its own class in custody. Temporary: it fits once
    /// queued bundles leave (delivered, expired, cancelled).
    case quotaFull(needed: Int, quota: Int, priority: UInt8)
    /// The inbox bound (`inbox-mb`) is full of unread messages: a new message is refused, nothing removed.
    case inboxFull(limit: Int)
    /// Any other SQLite failure.
    case sqlite(path: String, code: Int32, detail: String)
    /// The counter floor beside the identity (counters.json) is damaged or unreadable.
    case counterFloor(path: String, detail: String)

    public var description: String {
        switch self {
        case .corrupt(let p, let d):
            return "database \(p) is damaged (\(d)): stop the relay, move the file aside (keep it for recovery) and start again with an empty one"
        case .newerSchema(let p, let found, let supported):
            return "database \(p) was written by a newer Courier (schema \(found), this one knows up to \(supported)): upgrade Courier; the file was not changed"
        case .readOnly(let p):
            return "cannot write database \(p): check the file's owner and permissions, and that the disk is not mounted read-only"
        case .diskFull(let p):
            return "disk full while writing \(p): free some space; what was stored before is intact"
        case .busy(let p):
            return "database \(p) is locked by another process: wait, or stop the other process"
        case .cannotOpen(let p, let d):
            return "cannot open database \(p) (\(d)): check that the data directory exists and is readable"
        case .quotaFull(let needed, let quota, let priority):
            return "queue full: a bundle of priority class \(priority) needs \(needed) bytes and the quota of \(quota) bytes holds only bundles it may not evict (of a more urgent class, or of its own class in custody); nothing was queued or dropped: wait until queued bundles leave, cancel some, or raise the quota"
        case .inboxFull(let limit):
            return "inbox full: \(limit) bytes of unread messages (inbox-mb); read them (`relay inbox --mark-read`) or raise inbox-mb in relay.conf"
        case .sqlite(let p, let code, let d):
            return "database \(p): SQLite error \(code): \(d)"
        case .counterFloor(let p, let d):
            return "\(p) \(d): restore it from a backup of this data directory; if courier.db is intact you may move it aside, and the relay continues from the counters in courier.db"
        }
    }

    /// Whether the file system holding `path` has less room left than one page of SQLite's shared-memory file
    /// (32 KB) for this user (`statvfs`'s blocks available to unprivileged users; root may still use the reserve).
    public static func noRoomLeft(beside path: String) -> Bool {
        var st = statvfs()
        let dir = (path as NSString).deletingLastPathComponent
        guard statvfs(dir.isEmpty ? "." : dir, &st) == 0 else { return false }
        let free = UInt64(getuid() == 0 ? st.f_bfree : st.f_bavail) * UInt64(st.f_frsize)
        return free < 32 * 1_024
    }

    static func from(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        guard let db = error as? DatabaseError else { return .sqlite(path: path, code: -1, detail: "\(error)") }
        switch db.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return .corrupt(path: path, detail: db.message ?? "\(db.resultCode)")
        case .SQLITE_READONLY: return .readOnly(path: path)
        case .SQLITE_FULL: return .diskFull(path: path)
        // SQLite says "disk I/O error" when it cannot size its shared-memory file on a full disk (SQLITE_IOERR_SHMSIZE,
        // opening a database no process has open): no room left where the database is means the disk is full.
        case .SQLITE_IOERR where Self.noRoomLeft(beside: path): return .diskFull(path: path)
        // A write that fails with EROFS is an I/O error to SQLite: the file system went read-only under an open
        // database (ext4 `errors=remount-ro`: Linux 6.x leaves the mount `rw` with `emergency_ro`).
        case .SQLITE_IOERR where Disk.readOnly((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent) != nil:
            return .readOnly(path: path)
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .busy(path: path)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return .cannotOpen(path: path, detail: db.message ?? "\(db.resultCode)")
        default: return .sqlite(path: path, code: db.resultCode.rawValue, detail: db.message ?? "")
        }
    }
}
