import Foundation
import CourierWire

#if canImport(Glibc)
import Glibc
#endif

/// A serial cable between two pseudo-terminals on this machine: whatever is written to one end's tty comes out of
/// the other's, as between two radio modems on the same channel. `relay demo` and the tests run relays on these
/// with no hardware; any serial link spec (`serial:`, `kiss:`) opens the paths.
///
/// Bytes sent while nothing listens on the far end are dropped, as on a cable to a switched-off box.
public final class VirtualCable: @unchecked Sendable {
    /// The path of each end: a name of its own, a symlink to its pseudo-terminal in a private folder that `stop()`
    /// removes, as udev's /dev/serial/by-id names are (see `PseudoTerminal`). A relay still retrying after the cable
    /// is gone then finds no device, instead of a /dev/pts number the kernel has since given to another cable (tests
    /// run many cables and relays at once; `relay demo` runs beside the tests).
    public let pathA: String
    public let pathB: String
    private let ends: [PseudoTerminal]
    private let lock = NSLock()
    private var stopped = false
    private var noise = 0.0
    private var rng = SplitMix64(seed: 0x0C0FFEE)
    private let done = DispatchSemaphore(value: 0)

    public init() throws(LinkError) {
        let endA = try PseudoTerminal(label: "cable")
        let endB = try PseudoTerminal(label: "cable")
        (self.pathA, self.pathB, self.ends) = (endA.path, endB.path, [endA, endB])
        let (a, b) = (endA.master, endB.master)
        Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 4_096)
            while !self.isStopped {
                var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, 200) > 0 else { continue }
                // POLLHUP without data: nobody has the tty open; wait instead of spinning.
                if fds.allSatisfy({ $0.revents & Int16(POLLIN) == 0 }) {
                    usleep(20_000)
                    continue
                }
                for (i, (from, to)) in [(a, b), (b, a)].enumerated() where fds[i].revents & Int16(POLLIN) != 0 {
                    let n = read(from, &buf, buf.count)
                    if n > 0 {
                        self.damage(&buf, count: n)
                        _ = buf.withUnsafeBytes { write(to, $0.baseAddress, n) }
                    }
                }
            }
            self.done.signal()
        }.start()
    }

    /// Line noise from now on: each byte crossing the cable, either way, has one bit flipped with this probability
    /// (0.02: 2% of bytes damaged). 0 makes the line clean again.
    public func setNoise(_ probability: Double) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.noise = probability
    }

    /// Writes `bytes` so that they come out at `path` (one end's tty), as a modem at the wrong baud rate or a
    /// loose connector delivers garbage to the relay on that end.
    public func inject(_ bytes: [UInt8], toward path: String) {
        let fd = path == self.pathA ? self.ends[0].master : self.ends[1].master
        var off = 0
        while off < bytes.count && !self.isStopped {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { off += n } else { usleep(5_000) }
        }
    }

    private func damage(_ buf: inout [UInt8], count: Int) {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.noise > 0 else { return }
        for i in 0..<count where Double(self.rng.next() >> 11) / Double(1 << 53) < self.noise {
            buf[i] ^= UInt8(1) << UInt8(self.rng.next() % 8)
        }
    }

    var isStopped: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.stopped
    }

    /// Stops carrying bytes and closes both pseudo-terminals.
    public func stop() {
        self.lock.lock()
        let first = !self.stopped
        self.stopped = true
        self.lock.unlock()
        guard first else { return }
        // The names go first, so nothing reopens these terminals by name once their numbers are free again.
        for end in self.ends { end.removeName() }
        self.done.wait()
        for end in self.ends { end.close() }
    }

    deinit { self.stop() }
}
