import Foundation
import Synchronization

/// A link that records every packet it sends (time and bytes) and otherwise is the link it wraps: for counting
/// what a relay puts on the air (`relay demo`, `courier-bench direwolf`).
public final class RecordingLink: Link {
    public struct Frame: Sendable {
        /// Unix seconds, when the packet was handed to the link.
        public let time: Double
        public let bytes: [UInt8]
    }

    public let inner: any Link
    private let frames = Mutex<[Frame]>([])
    public init(_ inner: any Link) { self.inner = inner }

    public var name: String { self.inner.name }
    public var properties: LinkProperties { self.inner.properties }
    public var events: AsyncStream<LinkEvent> { self.inner.events }
    public var isUp: Bool { self.inner.isUp }
    public var counters: LinkCounters { self.inner.counters }
    /// Every packet sent so far, in order.
    public var sent: [Frame] { self.frames.withLock { $0 } }
    /// Packets and bytes sent so far.
    public var totals: (packets: Int, bytes: Int) { self.frames.withLock { ($0.count, $0.reduce(0) { $0 + $1.bytes.count }) } }
    public func start() { self.inner.start() }
    public func openAtStart() throws(LinkError) { try self.inner.openAtStart() }
    public func stop() { self.inner.stop() }

    public func send(_ packet: [UInt8]) async throws(LinkError) {
        let t = Date().timeIntervalSince1970
        try await self.inner.send(packet)
        self.frames.withLock { $0.append(Frame(time: t, bytes: packet)) }
    }
}
