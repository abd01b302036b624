import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// The replay guard across a restart (SPEC 4.8: windows MUST survive one): an engine on a real SQLite file hears a
/// neighbour's packets, stops, and a new engine on the same file refuses copies of them, and takes the next ones.
@Suite(.timeLimit(.minutes(20)))
struct ReplayRestartTests {
    static let link = LinkInfo(name: "radio", properties: LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full,
                                                                           mediumChecksFrames: true, airtime: .none), dutyCycle: nil)

    static func refusedAsReplay(_ out: [NodeOutput]) -> Bool {
        out.contains { if case .event(.packetRefused(_, .replay, _)) = $0 { true } else { false } }
    }

    static func delivered(_ out: [NodeOutput]) -> [BundleID] {
        out.compactMap { if case .delivered(let m) = $0 { m.id } else { nil } }
    }

    @Test func packetsHeardBeforeARestartAreRefusedAfterIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("courier-replay-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = NetworkKey.random()
        let me = NodeIdentity()
        let peer = EngineHarness.Peer(key: key)
        var now = 1_790_000_000.0
        func start() throws -> Node {
            let node = try Node(config: NodeConfig(identity: me, networkKey: key, name: "hill"), store: try Store(path: dir + "/courier.db"),
                                links: [Self.link], now: now, seed: 5)
            _ = node.linkUp(Self.link.name, now: now)
            return node
        }
        let k = peer.identity.publicKeys
        let announce = peer.seal([.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement))], announce: true)
        // Packets out of order: the window has a gap (counters 2 and 4 heard, 3 not yet).
        let first = try peer.bundle(.text, to: .everyone, "The ford is passable again.", at: now)
        let p2 = peer.seal([.bundle(BundleRecord(bundle: first.encode()))])
        let late = try peer.bundle(.text, to: .everyone, "Market moved to Thursday.", at: now)
        let p3 = peer.seal([.bundle(BundleRecord(bundle: late.encode()))])
        let second = try peer.bundle(.text, to: .everyone, "Bring the spare antenna.", at: now)
        let p4 = peer.seal([.bundle(BundleRecord(bundle: second.encode()))])
        do {
            let node = try start()
            now += 1
            _ = node.receive(announce, on: Self.link.name, now: now)
            now += 1
            #expect(Self.delivered(node.receive(p2, on: Self.link.name, now: now)) == [first.id])
            now += 1
            #expect(Self.delivered(node.receive(p4, on: Self.link.name, now: now)) == [second.id])
            #expect(Self.refusedAsReplay(node.receive(p2, on: Self.link.name, now: now)), "a copy is refused before the restart")
        }
        // The restart: a new engine on the same file.
        now += 60
        let node = try start()
        for (name, bytes) in [("the announce", announce), ("the first packet", p2), ("the last packet", p4)] {
            let out = node.receive(bytes, on: Self.link.name, now: now)
            #expect(Self.refusedAsReplay(out), "\(name) heard again after the restart is not refused as a replay: \(out)")
            #expect(Self.delivered(out).isEmpty)
        }
        // The window kept its gap: the packet not heard before the restart is new, and so is the next.
        #expect(Self.delivered(node.receive(p3, on: Self.link.name, now: now + 1)) == [late.id])
        let next = try peer.bundle(.text, to: .everyone, "The bridge is open.", at: now)
        #expect(Self.delivered(node.receive(peer.seal([.bundle(BundleRecord(bundle: next.encode()))]), on: Self.link.name, now: now + 2)) == [next.id])
    }
}
