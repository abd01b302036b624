import CourierNode
import CourierWire
import Testing

/// A directed bundle handed back to a relay that passed it on earlier (a route that turned back, the last copy of a
/// budget moving on): the relay takes custody again. Acknowledged as a duplicate instead, the sender let its copy
/// go, and with the last copy the bundle vanished, reported nowhere (SPEC 8.5, directed bundles, rule 2).
@Suite(.timeLimit(.minutes(5))) struct CustodyAgainTests {
    @Test func aBundleHandedBackAfterItWasPassedOnIsKept() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let q = h.addPeer()
        // z is heard of through q (a flood of z's came from q): the route to z goes through q.
        let z = EngineHarness.Peer(key: h.key)
        h.receive(from: q, [.bundle(BundleRecord(bundle: try z.bundle(.text, to: .everyone, "Market day moved to Friday.", at: h.now).encode()))])
        // p hands hill a message for z; hill takes custody and passes it on to q.
        let b = try p.bundle(.text, to: .node(z.short), "Seed potatoes for the upper terraces.", at: h.now)
        var out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 1, bundle: b.encode()))])
        out.packets += h.run(for: 30).packets
        #expect(out.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 1 } }, "custody taken from p")
        let toQ = try #require(out.bundles.first { $0.nextHop == q.short && (try? CourierBundle(decoding: $0.bundle).id) == b.id },
                               "passed on to q: \(out.records)")
        let transfer = try #require(toQ.transfer)
        // q acknowledges: custody moves to q, and hill lets its copy go.
        h.receive(from: q, [.ack(AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: transfer, received: 1)]))])
        _ = h.run(for: 1)
        #expect(try h.store.bundle(b.id) == nil, "custody released to q")
        // q's way to z closed; it hands the bundle back to hill.
        out = h.receive(from: q, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 9, bundle: b.encode()))])
        out.packets += h.run(for: 2).packets
        #expect(out.acks.contains { $0.target == q.short && $0.entries.contains { $0.transfer == 9 } }, "acknowledged to q")
        #expect(try h.store.bundle(b.id) != nil, "acknowledged, so kept: custody is hill's again")
        // A copy handed while hill still holds it stays a duplicate: one copy in the store.
        out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 2, bundle: b.encode()))])
        #expect(out.events.contains(.duplicate(b.id)))
        #expect(try h.store.held().filter { $0.id == b.id }.count == 1)
    }
}
