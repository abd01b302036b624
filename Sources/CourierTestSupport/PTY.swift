import CourierLinks
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real kernel pseudo-terminal pair. The driver under test opens `path` (a name of the terminal's own, see
/// `PseudoTerminal`); the test reads and writes the master, or relays it to another pty.
public final class PTY: @unchecked Sendable {
    private let pty: PseudoTerminal
    public var master: Int32 { self.pty.master }
    public let path: String

    public init() {
        do { self.pty = try PseudoTerminal(label: "links") } catch { preconditionFailure("\(error)") }
        self.path = self.pty.path
    }

    public func write(_ bytes: [UInt8]) {
        var off = 0
        let end = Date().addingTimeInterval(30)
        while off < bytes.count && Date() < end {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(self.master, $0.baseAddress, $0.count) }
            if n > 0 { off += n } else { usleep(1_000) }
        }
    }

    public func read(timeout: Double) -> [UInt8] {
        var p = pollfd(fd: self.master, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { return [] }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(self.master, &buf, buf.count)
        return n > 0 ? Array(buf[0..<n]) : []
    }

    /// Unplugs: the name goes and both ends close, so the driver's reads fail as when a USB adapter is pulled.
    public func close() { self.pty.close() }
}
