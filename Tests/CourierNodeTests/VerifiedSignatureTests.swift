import CourierMedium
@testable import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// The engine verifies each origin signature once (`Node.verifiesRemembered`): a bundle judged again (as it is taken
/// in, or overheard at each hop of a receipt) is not verified again. What it remembers proves only the exact bytes
/// that were signed.
@Suite(.timeLimit(.minutes(20)))
struct VerifiedSignatureTests {
    /// Judged three times, verified once; a copy with one signed byte changed (same id, same signature) is verified
    /// afresh and refused, and is not remembered.
    @Test func aRememberedSignatureProvesOnlyTheBytesItSigned() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let b = try p.bundle(.receipt, to: .node(h.me.nodeID.short), "receipt for 1a2b3c4d.1540000.1", at: h.now)
        for _ in 0..<3 { #expect(h.node.judge(b) == .proven) }
        #expect(h.node.verifiedSignatures.known.count == 1)
        var forged = b
        forged.body[forged.body.count - 1] ^= 0x01
        guard case .refused = h.node.judge(forged) else {
            Issue.record("a bundle whose signed bytes changed was not refused: \(h.node.judge(forged))")
            return
        }
        #expect(h.node.verifiedSignatures.known.count == 1)
        // Another origin's keys never prove it: the same signature under a different signer is not the one remembered.
        let other = h.addPeer()
        var claimed = b
        claimed.id = try BundleID(origin: other.short, created: b.id.created, sequence: b.id.sequence)
        guard case .refused = h.node.judge(claimed) else {
            Issue.record("a signature remembered for one origin proved a bundle claiming another")
            return
        }
        #expect(h.node.judge(b) == .proven)
    }

    /// The memory is bounded: past `Tuning.maxVerifiedSignatures` it starts again, and every bundle still judges as
    /// before.
    @Test func theMemoryIsBounded() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let bundles = try (0..<(Tuning.maxVerifiedSignatures + 10)).map { i in
            try p.bundle(.alert, to: .everyone, "alert \(i)", at: h.now)
        }
        for b in bundles {
            #expect(h.node.judge(b) == .proven)
            #expect(h.node.verifiedSignatures.known.count <= Tuning.maxVerifiedSignatures)
        }
        #expect(h.node.verifiedSignatures.known.count == 10)
    }
}
