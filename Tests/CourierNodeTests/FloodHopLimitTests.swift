import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// SPEC 6.10: a flood held with fewer hops left than a copy heard later keeps that copy's hop limit, so a relay whose
/// first copy came the long way round still passes the bundle on (a summary answer) when a shorter way reached it too.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct FloodHopLimitTests {
    /// The first copy arrives with no hop left (15 hops from its origin), a second with three: a neighbour whose
    /// summary then shows it lacks the alert gets it, with two hops left. Kept at the first copy's hop limit, the
    /// relay sent nothing (on regional-200, seed 200, with wip-receipts2's timing, relays r072 and r077 never got
    /// the first alert: every neighbour of theirs held it with no hop left).
    @Test func aLaterCopyWithMoreHopsLeftLetsAHeldAlertAnswerASummary() throws {
        let h = try EngineHarness()
        let origin = h.addPeer()
        let far = h.addPeer()
        let asker = h.addPeer()
        var b = try origin.bundle(.alert, to: .everyone, "Evacuate the lower town.", at: h.now)
        b.hopLimit = 0
        let spent = b.encode()
        b.hopLimit = 3
        let nearer = b.encode()
        b.hopLimit = 1
        let fewer = b.encode()
        func held() throws -> UInt8? { try h.store.bundle(b.id)?.data.first.map { $0 >> 4 } }

        h.receive(from: far, [.bundle(BundleRecord(bundle: spent))])
        #expect(try held() == 0)
        h.run(for: 120)
        h.receive(from: origin, [.bundle(BundleRecord(bundle: nearer))])
        #expect(try held() == 3, "the copy with more hops left sets the held hop limit")
        h.receive(from: far, [.bundle(BundleRecord(bundle: fewer))])
        #expect(try held() == 3, "a copy with fewer hops left changes nothing")

        h.receive(from: asker, [.summary(SummaryRecord(isFinal: true, digests: []))])
        let out = h.run(for: 60)
        let sent = try out.bundles.map { try CourierBundle(decoding: $0.bundle) }.filter { $0.id == b.id }
        #expect(!sent.isEmpty, "the alert went to the neighbour that lacks it")
        #expect(sent.allSatisfy { $0.hopLimit == 2 }, "\(sent.map(\.hopLimit))")
    }
}
