import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An SD card as a relay box has one, for tests: an ext4 file system in an image file, on a loop device, mounted with
/// `errors=remount-ro` as Debian and Raspberry Pi OS mount their root. `fail()` takes the kernel's own error path
/// (/sys/fs/ext4/DEV/trigger_fs_error): the journal is aborted and the file system goes read-only under whatever has
/// it open, as after a write error on a worn card. `checkAndMountAgain()` is what the operator does then: unmount,
/// `e2fsck -f -y`, mount. Needs root, loop devices and e2fsprogs: `Ext4Card.available` says.
public final class Ext4Card: @unchecked Sendable {
    public let image: String
    /// Where it is mounted.
    public let dir: String
    /// The loop device it is mounted from now ("/dev/loop3").
    public private(set) var device: String

    /// A new card of `megabytes`, mounted; nil when this machine cannot make one (not root, no loop device, no
    /// mkfs.ext4, no ext4 error trigger).
    public init?(megabytes: Int = 16) {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/sbin/mkfs.ext4") else { return nil }
        let root = NSTemporaryDirectory() + "courier-card-" + UUID().uuidString
        self.image = root + "/card.img"
        self.dir = root + "/card"
        self.device = ""
        guard mkdir(root, 0o755) == 0, mkdir(self.dir, 0o755) == 0,
              Self.run("/usr/bin/truncate", ["-s", "\(megabytes)M", self.image]).0 == 0,
              Self.run("/sbin/mkfs.ext4", ["-q", "-F", self.image]).0 == 0,
              self.mount(), FileManager.default.fileExists(atPath: self.trigger) else {
            self.remove()
            return nil
        }
    }

    /// Whether cards can be made here (checked once).
    public static let available: Bool = {
        guard let card = Ext4Card(megabytes: 8) else { return false }
        card.remove()
        return true
    }()

    var trigger: String { "/sys/fs/ext4/\((self.device as NSString).lastPathComponent)/trigger_fs_error" }

    /// Mounts the image through a new loop device. A new one each time: the file system of the last may live on in
    /// a mount namespace made while it was mounted (another process's `unshare -m`), and mounting that device again
    /// would find it still failed.
    func mount() -> Bool {
        let (rc, out) = Self.run("/sbin/losetup", ["--find", "--show", self.image])
        let device = out.trimmingCharacters(in: .whitespacesAndNewlines)
        guard rc == 0, device.hasPrefix("/dev/loop") else { return false }
        self.device = device
        guard Self.run("/bin/mount", ["-o", "errors=remount-ro", device, self.dir]).0 == 0 else {
            _ = Self.run("/sbin/losetup", ["-d", device])
            return false
        }
        return true
    }

    /// The card fails: the kernel aborts its journal and makes it read-only (on Linux 6.x the mount still says `rw`,
    /// with `emergency_ro`).
    public func fail() throws {
        try "1".write(toFile: self.trigger, atomically: false, encoding: .utf8)
    }

    /// Unmounts, checks with `e2fsck -f -y` and mounts again; what failed, or nil. Everything on it must be closed.
    public func checkAndMountAgain() -> String? {
        let (u, uOut) = Self.run("/bin/umount", [self.dir])
        guard u == 0 else { return "umount \(self.dir): exit \(u): \(uOut)" }
        _ = Self.run("/sbin/losetup", ["-d", self.device])
        let (f, fOut) = Self.run("/sbin/e2fsck", ["-f", "-y", self.image])
        guard f <= 1 else { return "e2fsck: exit \(f): \(fOut)" }
        return self.mount() ? nil : "could not mount \(self.image) again"
    }

    /// Unmounts (lazily, if something still holds it), detaches the loop device and removes the image.
    public func remove() {
        if !self.device.isEmpty {
            _ = Self.run("/bin/umount", ["-l", self.dir])
            _ = Self.run("/sbin/losetup", ["-d", self.device])
        }
        let root = (self.image as NSString).deletingLastPathComponent
        do { try FileManager.default.removeItem(atPath: root) } catch {
            FileHandle.standardError.write(Data("Ext4Card: \(root) not removed: \(error)\n".utf8))
        }
    }

    /// Runs a program; its exit status and what it printed (both streams).
    static func run(_ program: String, _ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }
}
