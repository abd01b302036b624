import Foundation
import Logging
import Synchronization

/// What a link reports.
public enum LinkEvent: Sendable, Equatable {
    case up
    case down(String)
    /// A packet, with the signal it was heard with when the modem reports one (an RNode does).
    case frame([UInt8], signal: ReceivedSignal? = nil)
}

/// A way to reach neighbours: a serial modem, a KISS TNC, an RNode, a TCP connection. Frames are Courier packets.
public protocol Link: AnyObject, Sendable {
    var name: String { get }
    var properties: LinkProperties { get }
    var events: AsyncStream<LinkEvent> { get }
    var isUp: Bool { get }
    func start()
    /// Opens the device now, on the caller's thread, so that a missing port, a port another process holds or a
    /// TNC that is not listening is an error at start (`relay run` exits 69) rather than a retry loop. The reader
    /// that `start()` begins uses what this opened. Links with nothing to open beforehand do nothing.
    func openAtStart() throws(LinkError)
    /// Sends one packet. Throws `LinkError.down` when the link is down: nothing is lost, the store still holds it.
    func send(_ packet: [UInt8]) async throws(LinkError)
    func stop()
    /// What crossed the link since the start: frames and bytes each way, damaged frames dropped.
    var counters: LinkCounters { get }
    /// For a link through a server (an MQTT broker): whether it is connected, since when, and the last error.
    var connection: LinkConnection? { get }
    /// The federation's network keys in force (fingerprints, SPEC 3.1 and 3.7): the one packets are sealed under
    /// and every one accepted. Links whose addressing depends on the key (MQTT topics) follow; others ignore it.
    func networkKeysChanged(sending: String, accepting: [String])
}

extension Link {
    public func openAtStart() throws(LinkError) {}
    public var counters: LinkCounters { LinkCounters() }
    public var connection: LinkConnection? { nil }
    public func networkKeysChanged(sending: String, accepting: [String]) {}
}

/// The state of a link's connection to a server (an MQTT broker), as `relay status` shows it.
public struct LinkConnection: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable {
        /// Never connected yet since the start.
        case connecting
        case connected
        /// Was connected, or tried: retrying with backoff.
        case reconnecting
    }
    /// What the link connects to, e.g. "broker 127.0.0.1:1883, topic courier/1a2b3c4d/+".
    public var peer: String
    public var state: State
    /// Unix time the state began.
    public var since: Double
    /// The last failure (cannot connect, refused, connection lost) and when, kept after a reconnect.
    public var lastError: String?
    public var lastErrorAt: Double?
    /// Connection attempts that failed since the last success.
    public var failedAttempts: Int

    public init(peer: String, state: State, since: Double, lastError: String? = nil, lastErrorAt: Double? = nil, failedAttempts: Int = 0) {
        self.peer = peer
        self.state = state
        self.since = since
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.failedAttempts = failedAttempts
    }
}

/// Retry delays after a failure: doubling from `initial` to `maximum`, with ±20% jitter.
public struct Backoff: Sendable, Hashable {
    public var initial: Double
    public var maximum: Double
    public init(initial: Double = 0.5, maximum: Double = 30) {
        self.initial = initial
        self.maximum = maximum
    }
    public func delay(attempt: Int) -> Double {
        let base = min(self.maximum, self.initial * pow(2, Double(min(attempt, 30))))
        return base * Double.random(in: 0.8...1.2)
    }
}

/// Since the link started (kept across reconnects).
public struct LinkCounters: Sendable, Hashable, Codable {
    /// Good frames received (passed the link's own checks) and their bytes; bytes count everything read, garbage too.
    public var framesIn = 0
    public var framesOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    /// Frames dropped because their checksum failed (serial links: CRC-32C): line noise.
    public var crcErrors = 0
    /// Frames dropped as malformed (bad stuffing or escape, oversize, too short): typically a wrong baud rate.
    public var framingErrors = 0
    public var reconnects = 0
    /// Listening links (`tcp-listen`): connections refused because `TCPListenLink.maxConnections` peers were
    /// connected, and connections closed for silence or a frame left half sent.
    public var connectionsRefused = 0
    public var connectionsTimedOut = 0
    public init() {}
}

/// A link over a byte stream: opens the channel (a serial port, a pty, a TCP connection), runs an optional
/// handshake (KISS parameters, RNode radio set-up), reads on a dedicated thread and decodes frames with its codec.
/// When the device disappears it reports down, retries with backoff, and reports up when it is back: no restart,
/// and the engine resends what was not acknowledged. A device that opens and fails at once (a flapping port, a
/// TNC that accepts and hangs up) is retried with growing delays, reported down once and logged once per retry, not
/// up and down every half second.
public final class StreamLink<Codec: FrameCodec>: Link, @unchecked Sendable {
    public typealias Opener = @Sendable () throws(LinkError) -> ByteChannel
    public typealias Handshake = @Sendable (ByteChannel) throws(LinkError) -> Void

    public let name: String
    public let properties: LinkProperties
    public let events: AsyncStream<LinkEvent>
    private let continuation: AsyncStream<LinkEvent>.Continuation
    private let opener: Opener
    private let handshake: Handshake?
    private let makeCodec: @Sendable () -> Codec
    private let backoff: Backoff
    private let logger: Logger
    private let writeTimeout: Double

    /// A connection counts as working (the next failure starts the backoff again from `initial`) once it has
    /// stayed open this long or carried a frame.
    static var stableAfter: Double { 10 }
    /// After a connection failed at once, the next one is reported up only once it stays open this long or
    /// carries a frame.
    static var probation: Double { 2 }

    private struct State {
        var channel: ByteChannel?
        /// Opened by `openAtStart()`, not yet taken by the reader.
        var opened: ByteChannel?
        var stopped = false
        var counters = LinkCounters()
        var codec: Codec
    }
    private let state: Mutex<State>
    private let writer = DispatchQueue(label: "courier.link.writer")

    public init(
        name: String, properties: LinkProperties, backoff: Backoff = Backoff(), writeTimeout: Double = 30,
        logger: Logger, codec: @escaping @Sendable () -> Codec, handshake: Handshake? = nil, open: @escaping Opener
    ) {
        self.name = name
        self.properties = properties
        (self.events, self.continuation) = AsyncStream.makeStream(of: LinkEvent.self, bufferingPolicy: .bufferingNewest(4_096))
        self.opener = open
        self.handshake = handshake
        self.makeCodec = codec
        self.backoff = backoff
        self.logger = logger
        self.writeTimeout = writeTimeout
        self.state = Mutex(State(codec: codec()))
    }

    public var isUp: Bool { self.state.withLock { $0.channel != nil } }
    public var counters: LinkCounters { self.state.withLock { $0.counters } }

    public func start() {
        let t = Thread { [self] in self.run() }
        t.name = "courier.link.\(self.name)"
        t.start()
    }

    public func stop() {
        let chs = self.state.withLock { s -> [ByteChannel] in
            s.stopped = true
            defer { s.channel = nil; s.opened = nil }
            return [s.channel, s.opened].compactMap { $0 }
        }
        for ch in chs { ch.close() }
    }

    public func openAtStart() throws(LinkError) {
        let channel = try self.opener()
        do throws(LinkError) { try self.handshake?(channel) } catch {
            channel.close()
            throw error
        }
        let old = self.state.withLock { s -> ByteChannel? in
            defer { s.opened = channel }
            return s.opened
        }
        old?.close()
    }

    private var stopped: Bool { self.state.withLock { $0.stopped } }

    private func run() {
        var attempt = 0
        var lastError = ""
        // Whether the engine was last told the link is up; whether the last connection failed at once.
        var reportedUp = false
        var flapping = false
        while !self.stopped {
            let channel: ByteChannel
            if let pre = self.state.withLock({ s -> ByteChannel? in defer { s.opened = nil }; return s.opened }) {
                channel = pre
            } else {
                do throws(LinkError) {
                    channel = try self.opener()
                    do throws(LinkError) { try self.handshake?(channel) } catch {
                        channel.close()
                        throw error
                    }
                } catch {
                    let delay = self.backoff.delay(attempt: attempt)
                    if error.description != lastError {
                        self.logger.warning("link cannot open; retrying", metadata: [
                            "link": "\(self.name)", "error": "\(error)", "retry": "\(Self.seconds(delay)), then up to every \(Self.seconds(self.backoff.maximum))",
                        ])
                        lastError = error.description
                    }
                    self.sleep(delay)
                    attempt += 1
                    continue
                }
            }
            let wasStopped = self.state.withLock { s -> Bool in
                if s.stopped { return true }
                s.channel = channel
                s.codec = self.makeCodec()
                if attempt > 0 || s.counters.framesIn + s.counters.framesOut > 0 { s.counters.reconnects += 1 }
                return false
            }
            if wasStopped { channel.close(); break }
            lastError = ""
            let opened = Date()
            // After a connection that failed at once, this one must prove itself before the engine hears "up".
            let onProbation = flapping
            func reportUp() {
                guard !reportedUp else { return }
                reportedUp = true
                self.logger.info("link up", metadata: ["link": "\(self.name)", "via": "\(channel.kind)"])
                self.continuation.yield(.up)
            }
            if !onProbation { reportUp() }
            var reason = "stopped"
            var carried = false
            while !self.stopped {
                do {
                    let bytes = try channel.read(max: 4_096, timeout: 0.25)
                    if bytes.isEmpty {
                        if !reportedUp && Date().timeIntervalSince(opened) >= Self.probation { reportUp() }
                        continue
                    }
                    let (frames, crc, framing, failure) = self.state.withLock { s -> ([(frame: [UInt8], signal: ReceivedSignal?)], Int, Int, String?) in
                        s.counters.bytesIn += bytes.count
                        let (crc0, framing0) = (s.codec.crcErrors, s.codec.framingErrors)
                        let f = s.codec.feedWithSignal(bytes[...])
                        s.counters.framesIn += f.count
                        let crc = s.codec.crcErrors - crc0
                        let framing = s.codec.framingErrors - framing0
                        s.counters.crcErrors += crc
                        s.counters.framingErrors += framing
                        return (f, crc, framing, s.codec.deviceFailure)
                    }
                    // Every damaged frame is a refused packet: visible with --log-level debug.
                    if crc > 0 {
                        self.logger.debug("refused frame", metadata: ["link": "\(self.name)", "reason": "CRC mismatch (line noise?)", "count": "\(crc)"])
                    }
                    if framing > 0 {
                        self.logger.debug("refused frame", metadata: ["link": "\(self.name)", "reason": "framing error (wrong baud rate?)", "count": "\(framing)"])
                    }
                    if !frames.isEmpty {
                        carried = true
                        reportUp()
                    }
                    for f in frames { self.continuation.yield(.frame(f.frame, signal: f.signal)) }
                    // The device said it no longer carries packets as set up (an RNode that reset itself): close and
                    // open again, which runs the set-up anew; meanwhile the engine knows the link is down.
                    if let failure {
                        reason = failure
                        break
                    }
                } catch {
                    reason = error.description
                    break
                }
            }
            channel.close()
            self.state.withLock { s in if s.channel === channel { s.channel = nil } }
            if self.stopped { break }
            // A connection that worked for a while starts the backoff again; one that failed at once does not.
            flapping = !carried && Date().timeIntervalSince(opened) < Self.stableAfter
            attempt = flapping ? attempt + 1 : 0
            let delay = self.backoff.delay(attempt: attempt)
            if reportedUp {
                reportedUp = false
                self.logger.warning("link down; will retry", metadata: ["link": "\(self.name)", "reason": "\(reason)", "retry": "\(Self.seconds(delay))"])
                self.continuation.yield(.down(reason))
            } else {
                self.logger.warning("link failed right after opening; retrying", metadata: [
                    "link": "\(self.name)", "reason": "\(reason)", "retry": "\(Self.seconds(delay))",
                ])
            }
            self.sleep(delay)
            if attempt == 0 { attempt = 1 }
        }
        self.continuation.finish()
    }

    static func seconds(_ s: Double) -> String { s < 10 ? String(format: "%.1f s", s) : String(format: "%.0f s", s) }

    /// Sleeps in small steps so `stop()` takes effect quickly.
    private func sleep(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !self.stopped && Date() < end { Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow))) }
    }

    public func send(_ packet: [UInt8]) async throws(LinkError) {
        let prepared = self.state.withLock { s -> (ByteChannel, [UInt8])? in
            guard let ch = s.channel else { return nil }
            return (ch, s.codec.encode(packet))
        }
        guard let (channel, bytes) = prepared else { throw .down(self.name) }
        let timeout = self.writeTimeout
        let result: Result<Void, LinkError> = await withCheckedContinuation { cont in
            self.writer.async {
                do {
                    try channel.write(bytes, timeout: timeout)
                    cont.resume(returning: .success(()))
                } catch let e as LinkError {
                    cont.resume(returning: .failure(e))
                } catch {
                    cont.resume(returning: .failure(.io("\(error)")))
                }
            }
        }
        switch result {
        case .success:
            self.state.withLock { s in
                s.counters.framesOut += 1
                s.counters.bytesOut += bytes.count
            }
        case .failure(let e):
            // The reader notices the device went away and reports down; the packet stays in the store.
            if case .timeout = e { throw e }
            throw .down(self.name)
        }
    }
}
