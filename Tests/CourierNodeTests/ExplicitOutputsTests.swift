import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// What the engine did is said in its outputs, not left for the caller to infer (issue 11: no hidden channels).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ExplicitOutputsTests {
    /// Each packet carrying an announce follows an `.announced` output naming its link; a periodic announce that
    /// carried the node's summary says so (the simulator and `courier-bench mesh` count those, no longer inferring them
    /// from a counter of the engine's statistics).
    @Test func eachAnnounceIsSaidBeforeItsPacket() throws {
        let h = try EngineHarness()
        _ = h.addPeer()
        let before = h.node.stats.summariesInPeriodicAnnounces
        var raw = try h.node.submit(kind: .text, destination: .everyone, content: Array("water at the school".utf8), now: h.now).1
        let end = h.now + 4 * 900
        while true {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            guard next <= end else { break }
            h.now = next
            raw += h.node.tick(now: h.now)
        }
        let opener = PacketOpener(networkKey: h.key)
        func records(_ bytes: [UInt8]) -> [Record] {
            (try? opener.open(bytes, candidates: { $0 == h.me.nodeID.short ? [h.me.nodeID] : [] }))?.records ?? []
        }
        var announces = 0
        var withSummary = 0
        for (i, o) in raw.enumerated() {
            if case .event(.announced(let link, let summary)) = o {
                guard i + 1 < raw.count, case .send(let sentOn, let bytes, _) = raw[i + 1] else {
                    Issue.record("`.announced` at \(i) is not followed by a packet")
                    continue
                }
                let r = records(bytes)
                #expect(sentOn == link)
                #expect(r.contains { if case .announce = $0 { true } else { false } }, "the packet after `.announced` has no announce")
                if summary {
                    withSummary += 1
                    #expect(r.contains { if case .summary = $0 { true } else { false } }, "said to carry the summary, it does not")
                }
            }
            if case .send(_, let bytes, _) = o, records(bytes).contains(where: { if case .announce = $0 { true } else { false } }) {
                announces += 1
                let said = i > 0 && { if case .event(.announced) = raw[i - 1] { true } else { false } }()
                #expect(said, "a packet with an announce at \(i) was not said")
            }
        }
        #expect(announces >= 3, "announces sent in an hour: \(announces)")
        #expect(withSummary >= 2, "periodic announces carrying the summary: \(withSummary)")
        #expect(withSummary == h.node.stats.summariesInPeriodicAnnounces - before)
    }
}
