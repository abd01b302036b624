import Foundation
import Logging
import Synchronization

/// A TCP listener that relays connect to (`tcp-listen:HOST:PORT`). Every connected peer shares the link, as
/// stations share a radio channel: a packet sent goes to all of them, and frames from any of them come up. The link
/// is up while at least one peer is connected.
public final class TCPListenLink: Link, @unchecked Sendable {
    public let name: String
    public let properties: LinkProperties
    public let events: AsyncStream<LinkEvent>
    private let continuation: AsyncStream<LinkEvent>.Continuation
    private let listener: TCP.Listener
    private let logger: Logger
    private struct Peer {
        let channel: FDChannel
        var codec = LengthPrefixCodec()
    }
    private struct State {
        var peers: [ObjectIdentifier: Peer] = [:]
        var stopped = false
        var counters = LinkCounters()
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
                guard let ch = try? self.listener.accept(timeout: 0.25) else { continue }
                let first = self.state.withLock { s -> Bool in
                    s.peers[ObjectIdentifier(ch)] = Peer(channel: ch)
                    return s.peers.count == 1
                }
                self.logger.info("peer connected", metadata: ["link": "\(self.name)"])
                if first { self.continuation.yield(.up) }
                let r = Thread { [self] in self.serve(ch) }
                r.start()
            }
        }
        t.name = "courier.link.\(self.name).accept"
        t.start()
    }

    private func serve(_ ch: FDChannel) {
        let id = ObjectIdentifier(ch)
        while !self.state.withLock({ $0.stopped }) {
            guard let bytes = try? ch.read(max: 4_096, timeout: 0.25) else { break }
            if bytes.isEmpty { continue }
            let frames = self.state.withLock { s -> [[UInt8]] in
                let f = s.peers[id]?.codec.feed(bytes[...]) ?? []
                s.counters.bytesIn += bytes.count
                s.counters.framesIn += f.count
                return f
            }
            for f in frames { self.continuation.yield(.frame(f)) }
        }
        ch.close()
        let last = self.state.withLock { s -> Bool in
            guard s.peers.removeValue(forKey: id) != nil else { return false }
            return s.peers.isEmpty && !s.stopped
        }
        self.logger.info("peer disconnected", metadata: ["link": "\(self.name)"])
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
                    if (try? p.write(bytes, timeout: 10)) != nil { n += 1 } else { p.close() }
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
