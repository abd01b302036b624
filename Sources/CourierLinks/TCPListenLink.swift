import Foundation
import Logging
import Synchronization

/// A TCP listener that relays connect to (`tcp-listen:HOST:PORT`). Every connected peer shares the link, as
/// stations share a radio channel: a packet sent goes to all of them, and frames from any of them come up. The link
/// is up while at least one peer is connected.
///
/// Bounded: at most `maxConnections` peers at once, one thread each. A peer counts as established once it has sent
/// a whole frame (a relay says hello at once). A connection beyond the limit takes the place of the oldest one not yet
/// established, else it is refused (closed at once); either way it is counted in `connectionsRefused` and logged,
/// at most once a minute with the count since the last line. A connection that sends no whole frame within `firstFrameTimeout`, leaves a frame half sent
/// for `frameTimeout`, or sends nothing for `idleTimeout` is closed (`connectionsTimedOut`); so is one that does not
/// take a packet within `writeTimeout`.
public final class TCPListenLink: Link, @unchecked Sendable {
    /// Peers connected at once (each has a reading thread).
    public static let maxConnections = 32
    /// Seconds a new connection has to send its first whole frame.
    public static let firstFrameTimeout: Double = 30
    /// Seconds a frame may take to arrive once begun.
    public static let frameTimeout: Double = 30
    /// Seconds without a byte after which an established peer is dropped (longer than two announce intervals:
    /// a quiet relay still announces every 15 minutes; a dropped one reconnects).
    public static let idleTimeout: Double = 2_400
    /// Seconds a peer has to take a packet we send it.
    public static let writeTimeout: Double = 5

    public let name: String
    public let properties: LinkProperties
    public let events: AsyncStream<LinkEvent>
    private let continuation: AsyncStream<LinkEvent>.Continuation
    private let listener: TCP.Listener
    private let logger: Logger
    private struct Peer {
        let channel: FDChannel
        let since: Double
        var codec = LengthPrefixCodec()
        var established = false
        var evicted = false
    }
    private struct State {
        var peers: [ObjectIdentifier: Peer] = [:]
        var stopped = false
        var counters = LinkCounters()
        /// Connections refused since the last log line about them, and when that line was written.
        var refusedUnlogged = 0
        var refusedLoggedAt: Double = -1e9
    }
    private let state = Mutex(State())
    private let writer = DispatchQueue(label: "courier.link.tcp-listen")

    public var port: Int { self.listener.port }

    public init(name: String, host: String, port: Int, properties: LinkProperties, logger: Logger) throws(LinkError) {
        self.name = name
        self.properties = properties
        self.logger = logger
        self.listener = try TCP.Listener(host: host, port: port)
        (self.events, self.continuation) = AsyncStream.makeStream(of: LinkEvent.self, bufferingPolicy: .bufferingNewest(4_096))
    }

    public var isUp: Bool { self.state.withLock { !$0.peers.isEmpty } }
    public var counters: LinkCounters { self.state.withLock { $0.counters } }

    public func start() {
        let t = Thread { [self] in
            while !self.state.withLock({ $0.stopped }) {
                let ch: FDChannel?
                do { ch = try self.listener.accept(timeout: 0.25) } catch { break }
                guard let ch else { continue }
                self.admit(ch)
            }
        }
        t.name = "courier.link.\(self.name).accept"
        t.start()
    }

    /// Takes a new connection in (at the limit, in place of the oldest connection not yet established, which is
    /// closed first), or refuses it. Never more than `maxConnections` reading threads.
    private func admit(_ ch: FDChannel) {
        let now = Date().timeIntervalSince1970
        let (refused, evict, logCount) = self.state.withLock { s -> (Bool, FDChannel?, Int?) in
            var refused = false
            var evict: FDChannel?
            if s.peers.count >= Self.maxConnections {
                s.counters.connectionsRefused += 1
                s.refusedUnlogged += 1
                if let (id, p) = s.peers.filter({ !$0.value.established && !$0.value.evicted }).min(by: { $0.value.since < $1.value.since }) {
                    s.peers[id]?.evicted = true
                    evict = p.channel
                } else {
                    refused = true
                }
            }
            var logCount: Int?
            if s.refusedUnlogged > 0 && now - s.refusedLoggedAt >= 60 {
                s.refusedLoggedAt = now
                logCount = s.refusedUnlogged
                s.refusedUnlogged = 0
            }
            return (refused, evict, logCount)
        }
        if let n = logCount {
            self.logger.warning("connection limit reached: \(Self.maxConnections) peers connected; a new connection takes the place of the oldest that has not sent a whole frame, else it is refused (\(n) since the last such line; counted in `relay status`, logged at most once a minute)", metadata: ["link": "\(self.name)"])
        }
        if let evict {
            // Shutting it down ends its reading thread, which closes and removes it: wait for that (a moment) before
            // starting ours.
            evict.shutdown()
            let end = Date().addingTimeInterval(2)
            while self.state.withLock({ $0.peers.count >= Self.maxConnections && !$0.stopped }) && Date() < end { usleep(5_000) }
        }
        let first = self.state.withLock { s -> Bool? in
            guard !refused, !s.stopped, s.peers.count < Self.maxConnections else { return nil }
            s.peers[ObjectIdentifier(ch)] = Peer(channel: ch, since: now)
            return s.peers.count == 1
        }
        guard let first else {
            ch.close()
            return
        }
        // Logged at info once it sends a whole frame (a peer, not a port scan or a flood of connections).
        self.logger.debug("connection accepted", metadata: ["link": "\(self.name)"])
        if first { self.continuation.yield(.up) }
        let r = Thread { [self] in self.serve(ch) }
        r.name = "courier.link.\(self.name).peer"
        r.start()
    }

    private func serve(_ ch: FDChannel) {
        let id = ObjectIdentifier(ch)
        let opened = Date().timeIntervalSince1970
        var lastByte = opened
        var frameStarted: Double?
        var why = "closed by the peer"
        while !self.state.withLock({ $0.stopped }) {
            let bytes: [UInt8]
            do { bytes = try ch.read(max: 4_096, timeout: 0.25) } catch {
                why = "read failed: \(error)"
                break
            }
            let now = Date().timeIntervalSince1970
            if bytes.isEmpty {
                let established = self.state.withLock { $0.peers[id]?.established ?? false }
                if !established && now - opened > Self.firstFrameTimeout {
                    why = "no whole frame within \(Int(Self.firstFrameTimeout)) s"
                } else if let f = frameStarted, now - f > Self.frameTimeout {
                    why = "a frame left half sent for \(Int(Self.frameTimeout)) s"
                } else if now - lastByte > Self.idleTimeout {
                    why = "silent for \(Int(Self.idleTimeout)) s"
                } else {
                    continue
                }
                self.state.withLock { $0.counters.connectionsTimedOut += 1 }
                break
            }
            lastByte = now
            let (frames, pending, established) = self.state.withLock { s -> ([[UInt8]], Bool, Bool) in
                let f = s.peers[id]?.codec.feed(bytes[...]) ?? []
                let newly = !f.isEmpty && s.peers[id]?.established == false
                if newly { s.peers[id]?.established = true }
                s.counters.bytesIn += bytes.count
                s.counters.framesIn += f.count
                return (f, s.peers[id]?.codec.isBuffering ?? false, newly)
            }
            if established { self.logger.info("peer connected", metadata: ["link": "\(self.name)"]) }
            if !pending { frameStarted = nil } else if frameStarted == nil || !frames.isEmpty { frameStarted = now }
            for f in frames { self.continuation.yield(.frame(f)) }
        }
        ch.close()
        let (last, evicted, established) = self.state.withLock { s -> (Bool, Bool, Bool) in
            guard let p = s.peers.removeValue(forKey: id) else { return (false, false, false) }
            return (s.peers.isEmpty && !s.stopped, p.evicted, p.established)
        }
        let reason = evicted ? "made room for a new connection (it had sent no whole frame)" : why
        if established {
            self.logger.info("peer disconnected", metadata: ["link": "\(self.name)", "reason": "\(reason)"])
        } else {
            // Connections that never sent a frame are counted (time-outs, refusals), not logged one line each.
            self.logger.debug("connection closed", metadata: ["link": "\(self.name)", "reason": "\(reason)"])
        }
        if last { self.continuation.yield(.down("no peer connected")) }
    }

    public func send(_ packet: [UInt8]) async throws(LinkError) {
        let peers = self.state.withLock { s in s.peers.values.map(\.channel) }
        guard !peers.isEmpty else { throw .down(self.name) }
        let bytes = LengthPrefixCodec().encode(packet)
        let delivered: Int = await withCheckedContinuation { cont in
            self.writer.async {
                var n = 0
                for p in peers {
                    // A peer that does not take it in time is dropped (its reading thread ends and removes it).
                    do {
                        try p.write(bytes, timeout: Self.writeTimeout)
                        n += 1
                    } catch {
                        self.logger.info("peer dropped: it did not take a packet", metadata: ["link": "\(self.name)", "error": "\(error)"])
                        p.close()
                    }
                }
                cont.resume(returning: n)
            }
        }
        if delivered == 0 { throw .down(self.name) }
        self.state.withLock { s in
            s.counters.framesOut += 1
            s.counters.bytesOut += bytes.count
        }
    }

    public func stop() {
        let peers = self.state.withLock { s -> [FDChannel] in
            s.stopped = true
            return s.peers.values.map(\.channel)
        }
        self.listener.close()
        for p in peers { p.close() }
        self.continuation.finish()
    }
}
