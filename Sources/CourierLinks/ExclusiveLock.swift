#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Exclusive advisory locks (flock) on open files and devices, and who holds one: a second relay on the same data
/// directory or serial port is refused at once, naming the process that has it.
public enum ExclusiveLock {
    public enum Outcome: Sendable, Equatable {
        case acquired
        /// Another open file holds the lock; the pid from /proc/locks (nil when it cannot be told).
        case held(by: Int32?)
        /// flock itself failed (errno text).
        case failed(String)
    }

    /// flock(LOCK_EX | LOCK_NB) on `fd`: held until `fd` (and every copy of it) is closed or the process exits.
    public static func acquire(_ fd: Int32) -> Outcome {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK { return .held(by: self.holder(of: fd)) }
            return .failed(String(cString: strerror(e)))
        }
        return .acquired
    }

    /// Whether some process holds a flock on the file at `path`, without taking one (a lock taken even for a moment
    /// could make a relay starting then fail): /proc/locks names the holder. Where /proc/locks cannot be read, a
    /// shared lock is tried and dropped at once. A missing file is not held.
    public static func isHeld(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if FileManager.default.isReadableFile(atPath: "/proc/locks") { return self.holder(of: fd) != nil }
        while flock(fd, LOCK_SH | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            return errno == EWOULDBLOCK
        }
        flock(fd, LOCK_UN)
        return false
    }

    /// The pid of another process holding a flock on the file `fd` refers to, from /proc/locks (Linux), which lists
    /// each lock as `N: FLOCK  ADVISORY  WRITE PID MAJOR:MINOR:INODE 0 EOF`, device numbers in hex.
    public static func holder(of fd: Int32) -> Int32? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return self.holder(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The same for a path (a device another process opened exclusively, when this one cannot even open it).
    public static func holder(ofPath path: String) -> Int32? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return self.holder(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    static func holder(device: UInt64, inode: UInt64) -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        // glibc's dev_t layout (gnu_dev_major / gnu_dev_minor).
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // Blocked waiters are listed as "N: -> FLOCK ...": not holders.
            guard f.count >= 6, f[1] == "FLOCK", let pid = Int32(f[4]) else { continue }
            let id = f[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor, UInt64(id[2]) == inode else { continue }
            return pid
        }
        return nil
    }
}
