import CourierMedium
@testable import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// Issue 13 point 5 targets: floods repaired sooner and announces that cost less airtime (SPEC 8.5, 9 rule 6).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct AirtimeTests {
    static let lora = LinkProperties(
        mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
        airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0))
    static let loraSF12 = LinkProperties(
        mtu: 255, bitsPerSecond: 293, duplex: .half, mediumChecksFrames: true,
        airtime: .lora(LoRaParameters(spreadingFactor: 12, bandwidthHz: 125_000, codingRate: 5), framing: 0))

    /// A large flood (minutes, ~1.5 KB: several fragments, never acknowledged) heard with one fragment lost: once a
    /// rebroadcast window passed with no copy completing it, our summary goes out, so the neighbour that holds it
    /// sends it again. Heard whole, no summary is sent.
    @Test func aFloodHeardInPartAsksForTheRestWithASummary() throws {
        for missing in [true, false] {
            let h = try EngineHarness(properties: Self.lora)
            let p = h.addPeer()
            _ = h.addPeer()
            h.run(for: 60)
            var rng = SplitMix64(seed: 11)
            let text = String((0..<1_500).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 26))) })
            let b = try p.bundle(.minutes, to: .everyone, text, at: h.now)
            let records = try Fragmenter.records(bundle: b.encode(), mtu: 255, transfer: 77)
            #expect(records.count >= 3)
            for (i, r) in records.enumerated() where !(missing && i == 1) { h.receive(from: p, [r]) }
            let later = h.run(for: 60)
            let summaries = later.records.filter { if case .summary = $0 { true } else { false } }
            if missing {
                #expect(!summaries.isEmpty, "no summary after a flood heard in part: \(later.records.count) records")
            } else {
                #expect(try h.store.hasSeen(b.id))
                #expect(summaries.isEmpty, "a summary though the flood arrived whole")
            }
        }
    }

    /// Periodic announces over `hours` on a link alone (no neighbours): the gaps between them.
    static func announceGaps(_ properties: LinkProperties, dutyCycle: Double?, hours: Double) throws -> [Double] {
        let h = try EngineHarness(properties: properties, dutyCycle: dutyCycle)
        var times: [Double] = []
        let end = h.now + hours * 3_600
        while h.now < end {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            h.now = next
            let o = h.read(h.node.tick(now: h.now))
            if o.records.contains(where: { if case .announce = $0 { true } else { false } }) { times.append(h.now) }
        }
        // The hello is repeated a few times within the first two minutes when nobody answers (SPEC 9 rule 6).
        return zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 120 }
    }

    /// On a link whose duty cycle allows little (1% at SF12: a 255-byte packet takes about 10 s, a tenth of the
    /// allowance in 15 minutes is 0.9 s), announces are spaced four intervals apart; with no limit, one interval.
    @Test func theAnnounceIntervalStretchesWhenTheDutyCycleAllowsLittle() throws {
        let free = try Self.announceGaps(Self.loraSF12, dutyCycle: nil, hours: 6)
        #expect(free.count >= 15, "\(free)")
        #expect(free.allSatisfy { $0 <= 900 * 1.25 + 1 }, "\(free)")
        let tight = try Self.announceGaps(Self.loraSF12, dutyCycle: 0.01, hours: 6)
        #expect(tight.count >= 3, "\(tight)")
        #expect(tight.allSatisfy { $0 >= 4 * 900 * 0.75 - 1 }, "announces on a 1% SF12 channel: gaps \(tight)")
    }

    /// A neighbour on a duty-cycled link whose announces are spaced out still counts as near between them: the
    /// neighbour timeout there stretches with the allowance.
    @Test func aNeighbourOnATightChannelIsNearBetweenItsStretchedAnnounces() throws {
        let h = try EngineHarness(properties: Self.loraSF12, dutyCycle: 0.01)
        let p = h.addPeer()
        h.run(for: 2_500)
        #expect(h.node.neighbourList(now: h.now).contains { $0.id == p.identity.nodeID })
        #expect(h.node.freshNeighbours(now: h.now).contains { $0.id == p.identity.nodeID },
                "a neighbour heard 2,500 s ago on a channel whose announces are 3,600 s apart counts as gone")
    }

    /// Many neighbours on the channel: each announces, so our own announces are spaced in proportion (at most 2x).
    @Test func announcesAreSpacedOutWhenManyNeighboursShareTheChannel() throws {
        let h = try EngineHarness(properties: Self.lora, dutyCycle: 0.1)
        let peers = (0..<20).map { _ in h.addPeer() }
        var times: [Double] = []
        for _ in 0..<48 {
            let stepEnd = h.now + 300
            while true {
                let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
                guard next <= stepEnd else { break }
                h.now = next
                let o = h.read(h.node.tick(now: h.now))
                if o.records.contains(where: { if case .announce = $0 { true } else { false } }) { times.append(h.now) }
            }
            h.now = stepEnd
            // The neighbours keep talking, so they stay fresh.
            for p in peers { h.receive(from: p, [.announce(AnnounceRecord(capabilities: 1, signingKey: nil, agreementKey: nil))], announce: true) }
        }
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 120 }
        #expect(gaps.count >= 2, "\(times)")
        #expect(gaps.allSatisfy { $0 >= 2 * 900 * 0.75 - 1 }, "with 20 neighbours: gaps \(gaps)")
    }
}
