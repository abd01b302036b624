import CourierMedium
import CourierNode
import CourierWire
import Foundation
import Testing

/// Two-hop knowledge (SPEC 5.13, 8.5 rule 5): relays send the neighbours they hear with their announces; a relay that heard
/// a flood from a neighbour whose list names every other neighbour of its own leaves its rebroadcast out, and one
/// that heard it from an older neighbour (no list) rebroadcasts as before.
@Suite(.serialized, .timeLimit(.minutes(20))) struct TwoHopFloodTests {
    /// The engine with three neighbours S, A and B; S sends (as its list) `list`, then its alert (with `relays`
    /// named in its packet when given), once the engine's neighbour table has settled (an announce interval after its
    /// link came up: before, an alert is passed on whatever the lists say, `alertMayMissNeighbours`).
    func alertFromS(list: ((EngineHarness.Peer, EngineHarness.Peer, EngineHarness.Peer, ShortID) -> [ShortID])?,
                    relays: ((EngineHarness.Peer, EngineHarness.Peer, ShortID) -> [ShortID])? = nil) throws
        -> (h: EngineHarness, id: BundleID, out: EngineHarness.Out) {
        let h = try EngineHarness(configure: { $0.neighbourLists = true })
        let s = h.addPeer(), a = h.addPeer(), b = h.addPeer()
        h.run(for: 905)
        if let list {
            let k = s.identity.publicKeys
            h.receive(from: s, [.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement)),
                                .neighbours(NeighbourListRecord(list(s, a, b, h.me.nodeID.short)))], announce: true)
        }
        h.run(for: 5)
        let alert = try s.bundle(.alert, to: .everyone, "Flash flood: move to high ground now.", at: h.now)
        var records: [Record] = [.bundle(BundleRecord(bundle: alert.encode()))]
        if let relays {
            let ids = list?(s, a, b, h.me.nodeID.short) ?? []
            records.append(.neighbours(NeighbourListRecord(ids, relays: relays(a, b, h.me.nodeID.short))))
        }
        var out = h.receive(from: s, records)
        let later = h.run(for: 120)
        out.packets += later.packets
        out.events += later.events
        return (h, alert.id, out)
    }

    func rebroadcasts(_ id: BundleID, _ out: EngineHarness.Out) -> Int {
        out.bundles.filter { $0.nextHop == nil && (try? CourierBundle(decoding: $0.bundle).id) == id }.count
    }

    func suppressed(_ id: BundleID, _ out: EngineHarness.Out) -> Bool {
        out.events.contains { if case .suppressed(let x) = $0 { x == id } else { false } }
    }

    @Test func aRelayWhoseEveryNeighbourWasCoveredByTheFloodItHeardDoesNotRebroadcast() throws {
        let (_, id, out) = try self.alertFromS { _, a, b, me in [a.short, b.short, me] }
        #expect(self.rebroadcasts(id, out) == 0, "rebroadcast although S's copy reached A and B")
        #expect(self.suppressed(id, out), "the rebroadcast left out is not reported")
    }

    @Test func anOlderRelaysAnnounceWithoutANeighbourListKeepsRebroadcasting() throws {
        let (_, id, out) = try self.alertFromS(list: nil)
        #expect(self.rebroadcasts(id, out) == 1, "an older neighbour's copy (no list) must not stop ours")
        #expect(!self.suppressed(id, out))
    }

    @Test func aNeighbourTheSendersListLeavesOutKeepsTheRebroadcast() throws {
        let (_, id, out) = try self.alertFromS { _, a, _, me in [a.short, me] }
        #expect(self.rebroadcasts(id, out) == 1, "B is not in S's list: our copy is its only one")
    }

    /// S's list names A, B and us, but only A reaches a node two hops from S: S names A its relay, not us.
    @Test func aRelayNotNamedByTheCopyItHeardDoesNotRebroadcast() throws {
        // B is not in S's list: without the relays named we would pass it on (previous test).
        let (_, id, out) = try self.alertFromS(list: { _, a, _, me in [a.short, me] }, relays: { a, _, _ in [a.short] })
        #expect(self.rebroadcasts(id, out) == 0, "S named only A its relay")
        #expect(self.suppressed(id, out))
    }

    @Test func aRelayNamedByTheCopyItHeardRebroadcasts() throws {
        let (_, id, out) = try self.alertFromS(list: { _, a, _, me in [a.short, me] }, relays: { _, _, me in [me] })
        #expect(self.rebroadcasts(id, out) == 1, "S named us its relay, and B has no other copy")
    }

    /// The engine's own alert goes with its list naming as relays the neighbours that reach nodes two hops away:
    /// A reaches X and Y, B reaches Y only, C nobody new, D sent no list (an older node: always named).
    @Test func theEngineNamesTheFewestRelaysThatReachEveryNodeTwoHopsAway() throws {
        let h = try EngineHarness(configure: { $0.neighbourLists = true })
        let a = h.addPeer(), b = h.addPeer(), c = h.addPeer(), d = h.addPeer()
        let x = ShortID(0x7000_0001), y = ShortID(0x7000_0002)
        let me = h.me.nodeID.short
        for (p, list) in [(a, [me, x, y]), (b, [me, y, c.short]), (c, [me, b.short])] {
            let k = p.identity.publicKeys
            h.receive(from: p, [.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement)),
                                .neighbours(NeighbourListRecord(list))], announce: true)
        }
        h.run(for: 5)
        let (_, sent) = try h.node.submit(kind: .alert, destination: .everyone, content: Array("Bridge closed.".utf8), now: h.now)
        var packets = h.read(sent).packets
        packets += h.run(for: 5).packets
        let withAlert = packets.filter { p in p.contains { if case .bundle(let r) = $0 { r.nextHop == nil } else { false } } }
        let lists = withAlert.compactMap { p -> NeighbourListRecord? in
            for case .neighbours(let l) in p { return l }
            return nil
        }
        let l = try #require(lists.first, "the alert went without a neighbour list")
        #expect(l.relays == [a.short, d.short].sorted())
        #expect(l.ids == [a.short, b.short, c.short, d.short].sorted())
    }

    @Test func theEngineSendsItsNeighbourListWithItsAnnounce() throws {
        let h = try EngineHarness(configure: { $0.neighbourLists = true })
        let a = h.addPeer(capabilities: 1 | AnnounceRecord.hello)
        let b = h.addPeer(capabilities: 1 | AnnounceRecord.hello)
        var all = a.out
        all.packets += b.out.packets
        all.packets += h.run(for: 600).packets
        let lists = all.packets.compactMap { p -> [ShortID]? in
            guard p.contains(where: { if case .announce = $0 { true } else { false } }) else { return nil }
            for case .neighbours(let l) in p { return l.ids }
            return nil
        }
        try #require(!lists.isEmpty, "no announce carried a neighbour list")
        #expect(lists.last == [a.peer.short, b.peer.short].sorted())
    }
}
