import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The file system a data directory lives on, as an operator needs it named when it stops taking writes: which
/// device and mount point, whether it is read-only and why, how much room is left. Read from `statvfs` and
/// /proc/self/mounts; nothing here writes.
public enum Disk {
    /// One line of /proc/self/mounts: the device, where it is mounted, its type and options.
    public struct Mount: Sendable, Equatable {
        public var device: String
        public var point: String
        public var type: String
        public var options: [String]

        /// "/dev/mmcblk0p2 (/, ext4)".
        public var named: String { "\(self.device) (\(self.point), \(self.type))" }
    }

    /// Why a file system takes no writes.
    public enum ReadOnly: Sendable, Equatable {
        /// Mounted `ro`: by hand, or by the kernel after write errors on kernels that set the mount read-only
        /// (ext4 `errors=remount-ro` before Linux 6.x's `emergency_ro`).
        case mounted
        /// ext4 `errors=remount-ro` on Linux 6.x: the mount still says `rw`, with `emergency_ro`, and `statvfs` does
        /// not say read-only; every write fails with EROFS, and `mount -o remount,rw` is refused until the file
        /// system is unmounted and checked.
        case afterErrors
    }

    /// The file system holding `path`, from /proc/self/mounts (the longest mount point that holds it); nil when it
    /// cannot be told (no /proc).
    public static func mount(of path: String) -> Mount? {
        let real = (path as NSString).resolvingSymlinksInPath
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        let mounts = table.split(separator: "\n").compactMap { line -> Mount? in
            let f = line.split(separator: " ")
            guard f.count >= 4 else { return nil }
            return Mount(device: String(f[0]), point: String(f[1]).replacingOccurrences(of: "\\040", with: " "),
                         type: String(f[2]), options: f[3].split(separator: ",").map(String.init))
        }
        return mounts.filter { real == $0.point || real.hasPrefix($0.point == "/" ? "/" : $0.point + "/") }
            .max { $0.point.count < $1.point.count }
    }

    /// Whether, and why, the file system holding `path` takes no writes; nil when it does.
    public static func readOnly(_ path: String) -> ReadOnly? {
        let m = Self.mount(of: path)
        if m?.options.contains("emergency_ro") == true { return .afterErrors }
        var st = statvfs()
        if statvfs(path, &st) == 0 && st.f_flag & UInt(ST_RDONLY) != 0 { return .mounted }
        return m?.options.first == "ro" ? .mounted : nil
    }

    /// What the operator sees and does when the file system holding `path` is read-only: "/dev/mmcblk0p2 (/, ext4)
    /// ..." and how to make it writable again.
    public static func readOnlyProblem(_ path: String) -> String {
        let m = Self.mount(of: path)
        let named = m?.named ?? path
        let point = m?.point ?? path
        switch Self.readOnly(path) {
        case .afterErrors:
            return "\(named) was made read-only by the kernel after write errors (emergency_ro): it cannot be remounted read-write; stop the relay, unmount it and check it with `fsck` (the system card: reboot, which checks it), or replace the card"
        case .mounted, nil:
            return "\(named) is mounted read-only (the kernel does this to a card after write errors): `mount -o remount,rw \(point)` once it is checked, or replace the card"
        }
    }

    /// "12 KB free of 4 MB on /dev/sda1 (/var)": the room left (for this user) on the file system holding `path`.
    public static func freeSpace(_ path: String) -> String {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return "free space unknown: \(String(cString: strerror(errno)))" }
        let free = UInt64(getuid() == 0 ? st.f_bfree : st.f_bavail) * UInt64(st.f_frsize)
        let size = UInt64(st.f_blocks) * UInt64(st.f_frsize)
        let amount = free >= 1_048_576 ? String(format: "%.1f MB", Double(free) / 1_048_576) : "\(free / 1_024) KB"
        let total = size >= 1_048_576 ? String(format: "%.0f MB", Double(size) / 1_048_576) : "\(size / 1_024) KB"
        return "\(amount) free of \(total)" + (Self.mount(of: path).map { " on \($0.device) (\($0.point))" } ?? "")
    }
}
