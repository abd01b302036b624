import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// A neighbour's announces are written to the store (its keys, name, when last heard: `relay peers`) only when they
/// say something new: the first one, a new name, or `peerHeardKeptEvery` (ten minutes) after the last written; not
/// at every announce a relay hears.
@Suite(.timeLimit(.minutes(20)))
struct PeersKeptTests {
    @Test func anAnnounceThatSaysNothingNewIsNotWrittenAgain() throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        let store = try Store(path: ":memory:", configuration: sc)
        let storage = CountingStorage(store)
        let key = NetworkKey.random()
        let start = 1_790_000_000.0
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: key, name: "hill"), store: storage,
                            links: [ReplayRestartTests.link], now: start, seed: 5)
        _ = node.linkUp(ReplayRestartTests.link.name, now: start)
        let peer = EngineHarness.Peer(key: key)
        let k = peer.identity.publicKeys
        func hear(_ name: String?, at t: Double) {
            let bytes = peer.seal([.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement, name: name))], announce: true)
            _ = node.receive(bytes, on: ReplayRestartTests.link.name, now: start + t)
        }
        func written() -> Int { storage.calls["rememberPeer"] ?? 0 }
        func kept() throws -> PeerRecord? { try store.peers().first { $0.nodeID == k.nodeID } }

        hear("ridge", at: 1)
        #expect(written() == 1)
        #expect(try kept()?.name == "ridge" && kept()?.lastHeard == Int64(start + 1))
        for t in stride(from: 30.0, to: 600, by: 30) { hear("ridge", at: t) }
        hear(nil, at: 590)
        #expect(written() == 1, "announces that say nothing new were written")
        hear("ridge repeater", at: 595)
        #expect(written() == 2, "a new name is written")
        #expect(try kept()?.name == "ridge repeater")
        hear("ridge repeater", at: 1_194)
        #expect(written() == 2)
        hear("ridge repeater", at: 1_195)
        #expect(written() == 3, "ten minutes after the last written, when it was heard is written again")
        #expect(try kept()?.lastHeard == Int64(start + 1_195))
    }
}
