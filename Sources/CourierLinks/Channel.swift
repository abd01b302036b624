#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A byte stream with timed reads and blocking writes: a serial port, a pseudo-terminal or a TCP socket.
public protocol ByteChannel: AnyObject, Sendable {
    /// Up to `max` bytes, waiting at most `timeout` seconds; empty on timeout. Throws `.closed` when the device or
    /// peer is gone.
    func read(max: Int, timeout: Double) throws(LinkError) -> [UInt8]
    /// Writes everything, waiting while the device cannot take more (backpressure), at most `timeout` seconds.
    func write(_ bytes: [UInt8], timeout: Double) throws(LinkError)
    func close()
    /// Which path the channel uses, for the log: "libserialport", "termios (pseudo-terminal)", "tcp".
    var kind: String { get }
}

/// A file descriptor that one thread may close while another uses it: readers take `current` (-1 once closed).
final class SharedFD: @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    deinit { self.close() }

    var current: Int32 {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.fd
    }

    func close() {
        self.lock.lock()
        let f = self.fd
        self.fd = -1
        self.lock.unlock()
        if f >= 0 { Glibc.close(f) }
    }
}

/// A file descriptor channel: termios serial devices and pseudo-terminals, and TCP sockets.
public final class FDChannel: ByteChannel, @unchecked Sendable {
    private let handle: SharedFD
    public let kind: String
    public let label: String

    init(fd: Int32, kind: String, label: String) {
        self.handle = SharedFD(fd)
        self.kind = kind
        self.label = label
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    private var current: Int32 { self.handle.current }

    public func close() { self.handle.close() }

    /// Ends a socket's connection both ways without closing the descriptor: a read waiting in another thread
    /// returns at once (the connection is closed), and that thread closes it.
    public func shutdown() {
        let fd = self.current
        if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    public func read(max: Int, timeout: Double) throws(LinkError) -> [UInt8] {
        let fd = self.current
        guard fd >= 0 else { throw .closed(self.label) }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(Swift.max(0, timeout) * 1000))
        if r < 0 {
            if errno == EINTR { return [] }
            throw .io("\(self.label): poll failed: \(String(cString: strerror(errno)))")
        }
        if r == 0 { return [] }
        if p.revents & Int16(POLLIN) == 0 && p.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            throw .closed(self.label)
        }
        var buf = [UInt8](repeating: 0, count: max)
        let n = Glibc.read(fd, &buf, max)
        if n > 0 { return Array(buf[0..<n]) }
        if n == 0 { throw .closed(self.label) }
        if errno == EAGAIN || errno == EINTR { return [] }
        // EIO: a pseudo-terminal whose other end closed, or a USB device unplugged.
        throw .closed(self.label)
    }

    public func write(_ bytes: [UInt8], timeout: Double) throws(LinkError) {
        let deadline = Date().addingTimeInterval(timeout)
        var off = 0
        while off < bytes.count {
            let fd = self.current
            guard fd >= 0 else { throw .closed(self.label) }
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let w = n >= 0 ? n : (errno == ENOTSOCK ? bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } : -1)
            if w > 0 { off += w; continue }
            if w < 0 && errno != EAGAIN && errno != EINTR { throw .closed(self.label) }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw .timeout("\(self.label): write timed out (device not taking data)") }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, Int32(min(left, 1) * 1000))
            if p.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { throw .closed(self.label) }
        }
    }
}
