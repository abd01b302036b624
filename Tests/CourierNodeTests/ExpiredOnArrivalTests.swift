import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// A bundle whose lifetime passed on the way (a neighbour that kept it too long, a clock behind) is dropped as it
/// arrives (SPEC 6.14 step 2), but not in silence: it is acknowledged (nobody can use it now), the log and the feed
/// say it expired and from whom, `relay status` counts it, and a directed one handed to this relay is given up on
/// and its origin told (failure notice, reason 1), as if it had expired in this relay's queue. Before, it was
/// acknowledged and dropped with no word anywhere.
@Suite(.timeLimit(.minutes(20))) struct ExpiredOnArrivalTests {
    @Test func anExpiredFloodIsAcknowledgedDroppedAndReportedOnce() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        // Made 30 days ago: a text's lifetime is far shorter.
        let b = try p.bundle(.text, to: .everyone, "Minutes of the water committee, read at the assembly", at: h.now - 30 * 86_400)
        let out = h.receive(from: p, [.bundle(BundleRecord(bundle: b.encode()))])
        #expect(out.delivered.isEmpty)
        #expect(out.events.contains(.expired(b.id)), "\(out.events)")
        let feed = try h.store.events(after: 0).filter { $0.bundle == "\(b.id)" }
        #expect(feed.map(\.type) == [.expired], "\(feed)")
        #expect(feed.first?.detail?.contains("lifetime passed before it arrived (from \(p.short))") == true, "\(feed)")
        #expect(try h.store.snapshot().expiredTotal == 1)
        #expect(try h.store.count() == 0, "not stored")
        // Another copy: nothing recorded again.
        let again = h.receive(from: p, [.bundle(BundleRecord(bundle: b.encode()))])
        #expect(!again.events.contains(.expired(b.id)))
        #expect(try h.store.snapshot().expiredTotal == 1)
    }

    @Test func anExpiredDirectedBundleHandedToUsIsGivenUpOnAndItsOriginTold() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let far = NodeIdentity().nodeID.short
        let b = try p.bundle(.text, to: .node(far), "Aid request: two water pumps for the lower village", at: h.now - 30 * 86_400)
        var out = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 9, bundle: b.encode()))])
        out.packets += h.run(for: 10).packets
        #expect(out.acks.filter { $0.target == p.short }.flatMap(\.entries).contains { $0.transfer == 9 }, "acknowledged: \(out.acks)")
        #expect(out.events.contains { if case .gaveUp(b.id, let why) = $0 { why.contains("already expired") } else { false } }, "\(out.events)")
        let notices = try h.store.held(kind: .failure, origin: h.me.nodeID.short)
        #expect(notices.count == 1 && notices.first?.destination == .node(p.short), "a failure notice to the origin: \(notices)")
        #expect(try h.store.snapshot().expiredTotal == 1)
    }
}
