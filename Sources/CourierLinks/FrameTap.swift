import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A wiretap on a serial line: two pseudo-terminals, `pathA` and `pathB`, joined through the tap, which passes every
/// framed-serial frame (SPEC 18.1) from one side to the other, records it, and can inject frames of its own: a
/// captured one sent again (a replay), or one sealed by hand (a forgery). Relays on `pathA` and `pathB` hear each
/// other as on a `VirtualCable`. Tests use it to play the outsider who records the channel and the member who
/// crafts packets; `courier-dev tap` runs one from the command line.
///
/// Frames are decoded and encoded again on the way through (bytes that are not a valid frame are counted and not
/// passed on), so an injected frame never lands inside one in flight.
public final class FrameTap: @unchecked Sendable {
    public enum Side: String, Sendable, Codable {
        /// Sent by the relay on `pathA` (travelling towards `pathB`).
        case a
        /// Sent by the relay on `pathB`.
        case b
    }

    /// One frame seen on the line: which side sent it, the packet inside, and when (unix seconds).
    public struct Frame: Sendable, Hashable, Codable {
        public let from: Side
        public let packet: [UInt8]
        public let at: Double
        /// Sent by the tap itself (`inject`), not by a relay.
        public let injected: Bool
    }

    public let pathA: String
    public let pathB: String
    private let ends: [PseudoTerminal]
    private let lock = NSLock()
    private var stopped = false
    private var recorded: [Frame] = []
    private var pending: [(Side, [UInt8])] = []
    private var passing: [Side: Bool] = [.a: true, .b: true]
    private var damagedFrames = 0
    private let done = DispatchSemaphore(value: 0)

    /// Opens the two pseudo-terminals (each reached by a name of its own, see `PseudoTerminal`) and starts passing
    /// frames.
    public init() throws(LinkError) {
        let a = try PseudoTerminal(label: "tap")
        let b = try PseudoTerminal(label: "tap")
        (self.pathA, self.pathB, self.ends) = (a.path, b.path, [a, b])
        Thread { [self] in self.pump() }.start()
    }

    /// Every frame seen so far, in order.
    public var frames: [Frame] { self.locked { self.recorded } }

    /// Frames sent by the relay on `side` (not injected ones).
    public func frames(from side: Side) -> [Frame] { self.frames.filter { $0.from == side && !$0.injected } }

    /// Bytes from a relay that were not a valid frame (not passed on).
    public var damaged: Int { self.locked { self.damagedFrames } }

    /// Sends `packet` in a frame as if the relay on `side` had sent it: it comes out at the other end.
    public func inject(_ packet: [UInt8], from side: Side) {
        self.locked { self.pending.append((side, packet)) }
    }

    /// Passes frames sent by `side` on (the default), or only records them (the other relay hears nothing from it).
    public func setPassing(_ on: Bool, from side: Side) {
        self.locked { self.passing[side] = on }
    }

    /// Stops and closes both pseudo-terminals.
    public func stop() {
        let first: Bool = self.locked {
            defer { self.stopped = true }
            return !self.stopped
        }
        guard first else { return }
        // The names go first, so nothing reopens these terminals by name once their numbers are free again.
        for end in self.ends { end.removeName() }
        self.done.wait()
        for end in self.ends { end.close() }
    }

    deinit { self.stop() }

    private func locked<T>(_ body: () -> T) -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return body()
    }

    private func pump() {
        var codecs = [COBSFrameCodec(), COBSFrameCodec()]
        let encoder = COBSFrameCodec()
        var buf = [UInt8](repeating: 0, count: 4_096)
        // Bytes waiting to be written to each master (0: towards the relay on A, 1: towards B).
        var out: [[UInt8]] = [[], []]
        while !self.locked({ self.stopped }) {
            for (side, packet) in self.locked({ defer { self.pending.removeAll() }; return self.pending }) {
                let to = side == .a ? 1 : 0
                out[to] += encoder.encode(packet)
                let f = Frame(from: side, packet: packet, at: Date().timeIntervalSince1970, injected: true)
                self.locked { self.recorded.append(f) }
            }
            var fds = self.ends.map(\.master).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            for i in 0..<2 where !out[i].isEmpty { fds[i].events |= Int16(POLLOUT) }
            guard poll(&fds, 2, 20) > 0 else { continue }
            for i in 0..<2 {
                if fds[i].revents & Int16(POLLOUT) != 0, !out[i].isEmpty {
                    let n = out[i].withUnsafeBytes { write(self.ends[i].master, $0.baseAddress, $0.count) }
                    if n > 0 {
                        out[i].removeFirst(n)
                    } else if n < 0 && errno != EAGAIN && errno != EINTR {
                        out[i].removeAll()  // nobody has that end open: dropped, as on a cable to a switched-off box
                    }
                }
                guard fds[i].revents & Int16(POLLIN) != 0 else { continue }
                let n = read(self.ends[i].master, &buf, buf.count)
                guard n > 0 else { continue }
                let side: Side = i == 0 ? .a : .b
                let before = codecs[i].dropped
                let packets = codecs[i].feed(buf[0..<n])
                let pass = self.locked { () -> Bool in
                    self.damagedFrames += codecs[i].dropped - before
                    for p in packets { self.recorded.append(Frame(from: side, packet: p, at: Date().timeIntervalSince1970, injected: false)) }
                    return self.passing[side] ?? true
                }
                if pass { for p in packets { out[1 - i] += encoder.encode(p) } }
            }
            // POLLHUP without data: nobody has that end open; wait instead of spinning.
            if fds.allSatisfy({ $0.revents & Int16(POLLIN) == 0 }) && fds.contains(where: { $0.revents & Int16(POLLHUP) != 0 }) {
                usleep(20_000)
            }
        }
        self.done.signal()
    }
}
