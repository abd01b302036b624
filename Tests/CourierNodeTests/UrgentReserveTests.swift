import CourierMedium
@testable import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// The urgent reserve of a duty-cycled link (SPEC 8.5): ordinary traffic stops when a fifth of the hour's
/// allowance is left, and an alert spends it at once instead of waiting for the bucket to refill.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct UrgentReserveTests {
    static let lora = LinkProperties(
        mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
        airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0))

    /// Ticks at the engine's wake-ups until `until` returns true for what one call sent or `seconds` pass.
    /// Returns the moment that happened (nil: it did not).
    static func step(_ h: EngineHarness, for seconds: Double, until: ([NodeOutput]) -> Bool) -> Double? {
        let end = h.now + seconds
        while true {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            guard next <= end else { break }
            h.now = next
            if until(h.node.tick(now: h.now)) { return h.now }
        }
        h.now = end
        return nil
    }

    static func carries(_ outputs: [NodeOutput], _ ids: Set<BundleID>) -> Bool {
        outputs.contains { if case .send(_, _, let carrying) = $0 { !ids.isDisjoint(with: carrying) } else { false } }
    }

    /// A relay on a 1% LoRa link with 80 texts to flood spends its allowance on them down to the reserve, no
    /// further; an alert submitted just after one of them went out (the bucket at its lowest) is on the air within
    /// seconds, ahead of the texts still waiting. (Before the reserve the texts spent the bucket to zero and below,
    /// and the alert waited up to a packet's airtime × 100 for the refill: about 100 s.) The allowance is a sliding hour
    /// (SPEC 8.5): texts go again once the first ones are an hour old.
    @Test func anAlertBehindOrdinaryTrafficOnALinkAtItsBudgetGoesFirst() throws {
        let h = try EngineHarness(properties: Self.lora, dutyCycle: 0.01)
        _ = h.addPeer()
        _ = h.addPeer()
        h.run(for: 60)
        var texts: Set<BundleID> = []
        var rng = SplitMix64(seed: 3)
        for _ in 0..<80 {
            let words = (0..<30).map { _ in ["water", "road", "clinic", "bridge", "seed", "tents"][Int(rng.next() % 6)] }
            let (id, _) = try h.node.submit(kind: .text, destination: .everyone, content: Array(words.joined(separator: " ").utf8), now: h.now)
            texts.insert(id)
        }
        // Ten minutes of texts: the hour's allowance (36 s) is spent down to the reserve (7.2 s), not beyond.
        h.run(for: 600)
        let budget = try #require(h.node.airtime().first?.budget)
        #expect(budget == 36)
        let reserve = budget / 5  // Tuning.urgentReserveShare
        // The next text to go (the first texts left the hour's window, SPEC 8.5: more than the reserve is left
        // again): the alert is submitted right after it.
        let textSent = Self.step(h, for: 3_600) { Self.carries($0, texts) }
        #expect(textSent != nil, "no text went out in an hour")
        let tokens = try #require(h.node.airtime().first?.tokens)
        // (At most one packet's airtime above the reserve: a text goes once more than the reserve is left.)
        #expect(tokens > 0 && tokens < reserve + 1.3, "after a text, \(tokens) s are left of the hour's allowance (reserve \(reserve) s)")
        let at = h.now
        let (alert, out) = try h.node.submit(kind: .alert, destination: .everyone, content: Array("the river is rising".utf8), now: h.now)
        var sentAt: Double? = Self.carries(out, [alert]) ? h.now : nil
        if sentAt == nil { sentAt = Self.step(h, for: 300) { Self.carries($0, [alert]) } }
        let delay = try #require(sentAt.map { $0 - at }, "the alert did not go out within 300 s")
        #expect(delay < 5, "the alert waited \(delay) s behind a spent allowance")
        // The texts still wait for more than the reserve to be left: one that goes leaves it less at most its own
        // airtime (about a second at SF9).
        if Self.step(h, for: 30, until: { Self.carries($0, texts) }) != nil {
            let left = try #require(h.node.airtime().first?.tokens)
            #expect(left > reserve - 1.3, "a text spent the urgent reserve: \(left) s left")
        }
    }
}
