#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// TCP sockets as byte channels (loopback and LAN gateways). One thread per connection, as for serial ports.
public enum TCP {
    /// Connects to `host:port` (IPv4 or IPv6, by name or address) within `timeout` seconds.
    public static func connect(host: String, port: Int, timeout: Double = 10) throws(LinkError) -> FDChannel {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else {
            throw .notFound("\(host):\(port) (name not resolved)")
        }
        defer { freeaddrinfo(res) }
        var ai: UnsafeMutablePointer<addrinfo>? = first
        var lastError = "connection refused"
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd < 0 { continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let r = Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r == 0 || errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeout * 1000)) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    if err == 0 {
                        Self.noDelay(fd)
                        return FDChannel(fd: fd, kind: "tcp", label: "\(host):\(port)")
                    }
                    lastError = String(cString: strerror(err))
                } else {
                    lastError = "timed out"
                }
            } else {
                lastError = String(cString: strerror(errno))
            }
            Glibc.close(fd)
        }
        throw .unreachable("\(host):\(port)", reason: lastError.lowercased())
    }

    /// A listening socket; `accept` hands out connections.
    public final class Listener: @unchecked Sendable {
        private let handle: SharedFD
        public let port: Int

        public init(host: String, port: Int) throws(LinkError) {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            hints.ai_flags = AI_PASSIVE
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &res) == 0, let a = res else {
                throw .invalidSpec("cannot listen on \(host):\(port): address not resolved")
            }
            defer { freeaddrinfo(res) }
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .io("socket: \(String(cString: strerror(errno)))") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 else {
                let e = errno
                Glibc.close(fd)
                // Not a serial port's advice (ModemManager, the dialout group): what a listening address needs.
                if e == EADDRINUSE {
                    throw .io("cannot listen on \(host):\(port): the port is in use by another program (another relay? `ss -ltnp 'sport = :\(port)'` names it); stop it or give this link another port")
                }
                if e == EACCES {
                    throw .io("cannot listen on \(host):\(port): ports below 1024 need root; give this link a port from 1024 up (e.g. 4040)")
                }
                throw .io("cannot listen on \(host):\(port): \(String(cString: strerror(e)))")
            }
            guard listen(fd, 16) == 0 else {
                Glibc.close(fd)
                throw .io("listen: \(String(cString: strerror(errno)))")
            }
            var ss = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) } }
            let bound = withUnsafePointer(to: &ss) { p -> Int in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
            self.handle = SharedFD(fd)
            self.port = bound
        }

        /// Waits up to `timeout` seconds for a connection; nil on timeout.
        public func accept(timeout: Double) throws(LinkError) -> FDChannel? {
            guard let fd = self.handle.borrow() else { throw .closed("listener") }
            defer { self.handle.giveBack() }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { return nil }
            let c = Glibc.accept(fd, nil, nil)
            guard c >= 0 else { return nil }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            TCP.noDelay(c)
            return FDChannel(fd: c, kind: "tcp", label: "peer on :\(self.port)")
        }

        /// Wakes a waiting `accept` (shutdown of a listening socket) and closes: when it returns, the port is free.
        public func close() { self.handle.close(kick: { _ = Glibc.shutdown($0, Int32(SHUT_RDWR)) }) }
    }

    /// Small packets go out at once (no Nagle delay): relays send acks and short bundles.
    static func noDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// Relay-to-relay TCP framing: a 2-byte big-endian length, then the packet. Length 0 is a keepalive.
public struct LengthPrefixCodec: FrameCodec {
    public private(set) var dropped = 0
    private var buffer: [UInt8] = []
    public init() {}

    public func encode(_ packet: [UInt8]) -> [UInt8] {
        precondition(packet.count <= 0xFFFF)
        return [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet
    }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        self.buffer += bytes
        var out: [[UInt8]] = []
        var i = 0
        while self.buffer.count - i >= 2 {
            let n = Int(self.buffer[i]) << 8 | Int(self.buffer[i + 1])
            guard self.buffer.count - i - 2 >= n else { break }
            if n > 0 { out.append(Array(self.buffer[(i + 2)..<(i + 2 + n)])) }
            i += 2 + n
        }
        self.buffer.removeFirst(i)
        return out
    }

    /// Part of a frame has arrived and the rest has not.
    public var isBuffering: Bool { !self.buffer.isEmpty }
}
