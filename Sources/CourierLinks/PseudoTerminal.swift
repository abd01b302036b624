import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A kernel pseudo-terminal pair whose far end is reached by a name of its own: `path`, a symlink in a private
/// folder under the temporary directory, as udev's /dev/serial/by-id names reach a USB adapter. A relay opens `path`
/// (a `serial:` or `kiss:` link); the owner reads and writes `master`.
///
/// Why the name: the kernel gives a closed terminal's /dev/pts number to the next one opened. A relay that lost its
/// line retries the path it was given; given /dev/pts/N, it would open whichever terminal has that number now (another
/// cable's, another test's) and take its bytes. `close()` removes the name before it closes the terminal, so a relay
/// still retrying finds no device instead.
public final class PseudoTerminal: @unchecked Sendable {
    /// The name to open: a symlink to the terminal's slave end.
    public let path: String
    /// The slave end's device (/dev/pts/N), for messages.
    public let device: String
    /// The controlling end, non-blocking. Valid until `close()`.
    public let master: Int32
    private let slave: Int32
    private let folder: String
    private let lock = NSLock()
    private var named = true
    private var open = true

    /// - Parameter label: names the private folder (`courier-LABEL-UUID`), so a stray one says who left it.
    public init(label: String) throws(LinkError) {
        var m: Int32 = -1
        var s: Int32 = -1
        guard openpty(&m, &s, nil, nil, nil) == 0 else {
            throw LinkError.io("cannot open a pseudo-terminal (/dev/ptmx): \(String(cString: strerror(errno)))")
        }
        var t = termios()
        tcgetattr(s, &t)
        cfmakeraw(&t)
        tcsetattr(s, TCSANOW, &t)
        _ = fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK)
        // ttyname_r, not ttyname: ttyname's answer is one static buffer for the whole process, and terminals are
        // opened on several threads at once (a test suite, the demo's cables); a name read while another thread
        // rewrites it can come out as "/dev/pts", a directory, and the symlink then opens nothing.
        var name = [CChar](repeating: 0, count: 256)
        let failed = ttyname_r(s, &name, name.count)
        guard failed == 0 else {
            Glibc.close(m)
            Glibc.close(s)
            throw LinkError.io("cannot read a pseudo-terminal's name: \(String(cString: strerror(failed)))")
        }
        let device = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("courier-\(label)-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(atPath: folder + "/tty", withDestinationPath: device)
        } catch {
            Glibc.close(m)
            Glibc.close(s)
            throw LinkError.io("cannot name a pseudo-terminal in \(folder): \(error)")
        }
        (self.master, self.slave, self.device, self.folder, self.path) = (m, s, device, folder, folder + "/tty")
    }

    /// Removes the name (and its folder): from now on nothing new opens this terminal by it. The terminal stays open.
    public func removeName() {
        let first: Bool = self.lock.withLock {
            defer { self.named = false }
            return self.named
        }
        guard first else { return }
        do { try FileManager.default.removeItem(atPath: self.folder) } catch {
            FileHandle.standardError.write(Data("pseudo-terminal \(self.device): cannot remove \(self.folder): \(error)\n".utf8))
        }
    }

    /// Removes the name, then closes both ends: a relay on it reads end-of-line, as when a USB adapter is pulled.
    public func close() {
        self.removeName()
        let first: Bool = self.lock.withLock {
            defer { self.open = false }
            return self.open
        }
        guard first else { return }
        Glibc.close(self.master)
        Glibc.close(self.slave)
    }

    deinit { self.close() }
}
