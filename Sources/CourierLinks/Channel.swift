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

/// A resource (a file descriptor, a libserialport port) that one thread may close while others use it.
///
/// Users borrow it for one call and give it back; `close()` stops new borrows, wakes users where it can (`kick`),
/// waits for the borrowed calls to end (reads wait at most their timeout), and only then releases it. Releasing a
/// descriptor while another thread still polls, reads or writes it would let the kernel hand the same number to the
/// next `open` in the process (another link's terminal, a test's pseudo-terminal), and that thread would then read
/// or write someone else's device.
final class InUse<Resource>: @unchecked Sendable {
    private let cond = NSCondition()
    private var resource: Resource?
    private var users = 0
    private var closing = false
    private var closerWaiting = false
    private let release: (Resource) -> Void

    /// How long `close()` waits for borrowed calls to end before leaving the release to the last of them.
    static var closeWait: Double { 3 }

    init(_ resource: Resource, release: @escaping (Resource) -> Void) {
        self.resource = resource
        self.release = release
    }

    deinit {
        if let r = self.resource { self.release(r) }
    }

    /// The resource for one call (nil once closing); every non-nil borrow must be given back.
    func borrow() -> Resource? {
        self.cond.lock()
        defer { self.cond.unlock() }
        guard !self.closing, let r = self.resource else { return nil }
        self.users += 1
        return r
    }

    func giveBack() {
        self.cond.lock()
        self.users -= 1
        var released: Resource?
        if self.users == 0 && self.closing {
            if self.closerWaiting {
                self.cond.broadcast()
            } else {
                released = self.resource
                self.resource = nil
            }
        }
        self.cond.unlock()
        if let released { self.release(released) }
    }

    /// Stops new borrows, calls `kick` (to wake a call waiting on the resource, e.g. `shutdown` of a socket), waits
    /// for borrowed calls to end, and releases. Safe to call more than once and from any thread that holds no borrow.
    func close(kick: ((Resource) -> Void)? = nil) {
        self.cond.lock()
        guard !self.closing, let r = self.resource else {
            self.cond.unlock()
            return
        }
        self.closing = true
        self.users += 1  // the kick's own borrow
        self.cond.unlock()
        kick?(r)
        self.cond.lock()
        self.users -= 1
        self.closerWaiting = true
        let deadline = Date().addingTimeInterval(Self.closeWait)
        while self.users > 0 && self.cond.wait(until: deadline) {}
        self.closerWaiting = false
        var released: Resource?
        if self.users == 0 {
            released = self.resource
            self.resource = nil
        }
        self.cond.unlock()
        if let released { self.release(released) }
    }
}

/// A file descriptor shared by the threads of one channel (see `InUse`).
typealias SharedFD = InUse<Int32>

extension InUse where Resource == Int32 {
    convenience init(_ fd: Int32) { self.init(fd, release: { _ = Glibc.close($0) }) }
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

    public func close() { self.handle.close() }

    /// Ends a socket's connection both ways without closing the descriptor: a read waiting in another thread
    /// returns at once (the connection is closed), and that thread closes it.
    public func shutdown() {
        guard let fd = self.handle.borrow() else { return }
        defer { self.handle.giveBack() }
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    public func read(max: Int, timeout: Double) throws(LinkError) -> [UInt8] {
        guard let fd = self.handle.borrow() else { throw .closed(self.label) }
        defer { self.handle.giveBack() }
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
        guard let fd = self.handle.borrow() else { throw .closed(self.label) }
        defer { self.handle.giveBack() }
        while off < bytes.count {
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
