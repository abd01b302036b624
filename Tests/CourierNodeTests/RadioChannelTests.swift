import CourierMedium
import CourierSim
import CourierWire
import Foundation
import Testing

/// The shared radio channel of the simulator, checked against the physics it claims to model.
@Suite struct RadioChannelTests {
    static let sf9 = LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5)

    func channel(_ points: [(Double, Double)], geometry: RadioChannel.Geometry = .positions,
                 radio: RadioChannel.Radio = .lora(sf9), sense: RadioChannel.CarrierSense = .none,
                 dutyCycle: Double? = nil, seed: UInt64 = 1) throws -> RadioChannel {
        try RadioChannel(positions: points.map { RadioChannel.Position(x: $0.0, y: $0.1) }, geometry: geometry,
                         configuration: .init(radio: radio, carrierSense: sense, dutyCycle: dutyCycle, seed: seed))
    }

    func outcomes(_ rs: [RadioChannel.Reception], to node: Int) -> [Int: RadioChannel.Reception.Outcome] {
        Dictionary(rs.filter { $0.to == node }.map { ($0.from, $0.outcome) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func airtimeOfA50ByteLoRaFrameAtSF9Is328ms() throws {
        // Semtech: Ts = 2^9 / 125 kHz = 4.096 ms; preamble (8 + 4.25) Ts; payload symbols
        // 8 + ceil((8·50 − 4·9 + 28 + 16) / (4·9)) · 5 = 8 + 12·5 = 68; total 80.25 Ts = 328.704 ms.
        #expect(abs(Self.sf9.timeOnAir(payload: 50) - 0.328704) < 1e-9)
        // On the channel a Courier packet of 49 bytes is a 50-byte frame (RNode adds one header byte).
        let ch = try self.channel([(0, 0)])
        #expect(abs(ch.airtime(bytes: 49) - 0.328704) < 1e-9)
        // SF12 uses low data rate optimisation (symbols of 32.768 ms): 8 + ceil(396 / 40)·5 = 58 payload symbols,
        // 70.25 in all = 2.302 s.
        let sf12 = LoRaParameters(spreadingFactor: 12, bandwidthHz: 125_000, codingRate: 5)
        #expect(abs(sf12.timeOnAir(payload: 50) - 2.301952) < 1e-6)
    }

    @Test func airtimeOfA100ByteAFSKPacketIs1113ms() throws {
        // 300 ms TXDELAY + (16 header + 100 + 2 FCS) · 8 bits · (1 + 1/62 stuffing) + 2 flags, at 1200 bit/s.
        let expected = 0.3 + (Double(118 * 8) * (1 + 1.0 / 62) + 16) / 1200
        #expect(abs(RadioChannel.Radio.afsk1200.airtime(bytes: 100) - expected) < 1e-12)
        #expect(abs(expected - 1.11269) < 1e-4)
    }

    @Test func rangeFollowsTheLogDistanceModel() throws {
        let phy = RadioChannel.RadioPhysics.lora(Self.sf9)
        // 14 dBm − 31.2 dB − 30·log10(d) = −129 dBm at d ≈ 5.33 km.
        #expect(abs(phy.range - 5_330) < 10)
        #expect(abs(phy.receivedPower(metres: 1_000) - (14 - 31.2 - 90)) < 1e-9)
        let ch = try self.channel([(0, 0), (5_000, 0), (5_700, 0)])
        #expect(ch.hears(1, 0), "5.0 km is within range")
        #expect(!ch.hears(2, 0), "5.7 km is not")
        #expect(ch.neighbours(of: 0) == [1])
    }

    @Test func aPacketAloneOnTheChannelArrivesAfterItsAirtime() throws {
        var ch = try self.channel([(0, 0), (1_000, 0), (9_000, 0)])
        let t = try ch.startTransmission(from: 0, bytes: 49, at: 10)
        #expect(try ch.receptions(through: 10.2).isEmpty, "nothing arrives before the last bit")
        let rs = try ch.receptions(through: 11)
        #expect(rs.count == 1, "the relay 9 km away is out of range and not reported")
        #expect(rs.first?.to == 1 && rs.first?.outcome == .received)
        #expect(abs((rs.first?.at ?? 0) - t.end) < 1e-12 && abs(t.end - 10.328704) < 1e-9)
    }

    @Test func twoOverlappingTransmissionsOfEqualPowerBothFailAtAReceiverBetweenThem() throws {
        // A — R — B, 2 km each side: R hears both at the same power.
        var ch = try self.channel([(0, 0), (2_000, 0), (4_000, 0)])
        try ch.startTransmission(from: 0, bytes: 40, at: 0)
        try ch.startTransmission(from: 2, bytes: 40, at: 0.1)
        let atR = self.outcomes(try ch.receptions(through: 5), to: 1)
        guard case .collided = atR[0], case .collided = atR[2] else {
            Issue.record("both packets should collide at R: \(atR)")
            return
        }
        #expect(ch.statistics.collisions == 2 && ch.statistics.received == 0)
    }

    @Test func theStrongerSurvivesWithTheCaptureMarginAndNotBelowIt() throws {
        // A 500 m from R, B 4 km from R: A is 30·log10(8) = 27 dB stronger, above the 6 dB margin.
        var ch = try self.channel([(0, 0), (500, 0), (4_500, 0)])
        try ch.startTransmission(from: 0, bytes: 40, at: 0)
        try ch.startTransmission(from: 2, bytes: 40, at: 0.05)
        let atR = self.outcomes(try ch.receptions(through: 5), to: 1)
        #expect(atR[0] == .received, "the stronger is captured")
        guard case .collided = atR[2] else { Issue.record("the weaker is lost: \(String(describing: atR[2]))"); return }
        #expect(ch.statistics.captures == 1)

        // 1.8 km against 2.2 km: 30·log10(2.2/1.8) = 2.6 dB, below the margin: both are lost.
        var close = try self.channel([(0, 0), (1_800, 0), (4_000, 0)])
        try close.startTransmission(from: 0, bytes: 40, at: 0)
        try close.startTransmission(from: 2, bytes: 40, at: 0.05)
        let near = self.outcomes(try close.receptions(through: 5), to: 1)
        guard case .collided = near[0], case .collided = near[2] else { Issue.record("both lost: \(near)"); return }
    }

    @Test func afskHasNoCaptureEvenAStrongSignalIsLostInAnOverlap() throws {
        var ch = try self.channel([(0, 0), (500, 0), (8_000, 0)], radio: .afsk1200)
        try ch.startTransmission(from: 0, bytes: 40, at: 0)
        try ch.startTransmission(from: 2, bytes: 40, at: 0.5)
        let atR = self.outcomes(try ch.receptions(through: 5), to: 1)
        guard case .collided = atR[0] else { Issue.record("AFSK: no capture: \(atR)"); return }
    }

    @Test func aTransmittingNodeHearsNothing() throws {
        var ch = try self.channel([(0, 0), (1_000, 0)])
        let a = try ch.startTransmission(from: 0, bytes: 60, at: 0)
        // B keys up half-way through A's packet (it did not listen): it misses A, and A misses B.
        try ch.startTransmission(from: 1, bytes: 60, at: a.end / 2)
        let rs = try ch.receptions(through: 5)
        #expect(self.outcomes(rs, to: 1)[0] == .receiverTransmitting)
        #expect(self.outcomes(rs, to: 0)[1] == .receiverTransmitting)
        #expect(ch.statistics.lostHalfDuplex == 2 && ch.statistics.received == 0)
        // And a node cannot start a second transmission while its first is on the air.
        let b = try ch.startTransmission(from: 0, bytes: 60, at: 10)
        #expect(throws: RadioChannel.ChannelError.alreadyTransmitting(node: 0, until: b.end)) {
            try ch.startTransmission(from: 0, bytes: 10, at: 10.1)
        }
    }

    @Test func aSenderThatSensesTheChannelBusyWaitsAsRNodeDoes() throws {
        // A and B hear each other; C, 9 km from A, does not (a hidden terminal for A).
        var ch = try self.channel([(0, 0), (1_000, 0), (9_000, 0)], sense: .rnode)
        let a = try ch.startTransmission(from: 0, bytes: 100, at: 0)
        #expect(ch.isBusy(at: 1, time: 0.2) && ch.isBusy(at: 0, time: 0.2))
        #expect(!ch.isBusy(at: 2, time: 0.2), "C cannot sense A")
        #expect(try ch.requestToSend(node: 1, bytes: 50, at: 0.2) == .wait(until: a.end, reason: .busy))
        // When A ends, B waits DIFS (2 slots of 12 symbols = 2 × 49.152 ms) and its contention window.
        guard case .wait(let ready, .backoff) = try ch.requestToSend(node: 1, bytes: 50, at: a.end) else {
            Issue.record("B should back off after the channel frees"); return
        }
        let slot = 12 * Self.sf9.symbolTime
        #expect(abs(ch.rnodeSlot - slot) < 1e-12)
        #expect(ready >= a.end + 2 * slot - 1e-9 && ready <= a.end + 2 * slot + 14 * slot + 1e-9)
        #expect(try ch.requestToSend(node: 1, bytes: 50, at: ready) == .transmit)
        #expect(ch.statistics.deferralsBusy == 1)
        // The hidden terminal senses nothing and only backs off.
        guard case .wait(_, .backoff) = try ch.requestToSend(node: 2, bytes: 50, at: ready) else {
            Issue.record("C should back off, not find the channel busy"); return
        }
    }

    @Test func rnodeStartsItsWaitOverWhenTheMediumGoesBusyDuringIt() throws {
        var ch = try self.channel([(0, 0), (1_000, 0), (2_000, 0)], sense: .rnode, seed: 5)
        guard case .wait(let ready, .backoff) = try ch.requestToSend(node: 1, bytes: 50, at: 0) else {
            Issue.record("first a backoff"); return
        }
        // Another station keys up during the wait; when B checks at `ready` it finds it went busy.
        let c = try ch.startTransmission(from: 2, bytes: 30, at: ready - 0.01)
        #expect(try ch.requestToSend(node: 1, bytes: 50, at: ready) == .wait(until: c.end, reason: .busy))
        guard case .wait(let again, .backoff) = try ch.requestToSend(node: 1, bytes: 50, at: c.end) else {
            Issue.record("a new DIFS wait after the channel frees"); return
        }
        #expect(again >= c.end + 2 * ch.rnodeSlot - 1e-9)
        #expect(try ch.requestToSend(node: 1, bytes: 50, at: again) == .transmit)
    }

    @Test func aMeshtasticSenderWaitsRandomSlotsAndDrawsAgainWhenBusy() throws {
        var ch = try self.channel([(0, 0), (1_000, 0)], sense: .meshtastic, seed: 9)
        // 2.5 symbols of 4.096 ms + 7.6 ms = 17.84 ms, truncated to 17 ms as the firmware's uint32_t does.
        let slot = 0.017
        #expect(abs(ch.meshtasticSlot - slot) < 1e-12)
        let a = try ch.startTransmission(from: 0, bytes: 200, at: 0)
        var t = 0.01
        var checks = 0
        // Whatever the draws, B never transmits while it senses A, and transmits soon after A ends.
        while true {
            let access = try ch.requestToSend(node: 1, bytes: 50, at: t)
            checks += 1
            if access == .transmit { break }
            guard case .wait(let until, _) = access, until > t else { Issue.record("must wait for a later time: \(access)"); return }
            #expect(until - t <= 8 * slot + 1e-9, "a quiet channel: CWsize 3, at most 2^3 - 1 slots")
            t = until
            if checks > 100 { Issue.record("never transmitted"); return }
        }
        #expect(t >= a.end, "B transmitted at \(t), before A ended at \(a.end)")
        #expect(t <= a.end + 8 * slot)
        #expect(ch.statistics.deferralsBusy >= 1)
    }

    @Test func anAFSKTNCWaitsForTheCarrierToDropThenSendsWithPersistenceOneInFour() throws {
        var ch = try self.channel([(0, 0), (1_000, 0), (2_000, 0)], radio: .afsk1200, sense: .kiss, seed: 3)
        let a = try ch.startTransmission(from: 0, bytes: 100, at: 0)
        #expect(try ch.requestToSend(node: 1, bytes: 50, at: 0.5) == .wait(until: a.end, reason: .busy))
        // On a clear channel: send with p = (63 + 1) / 256, otherwise wait one 100 ms slot.
        var t = a.end, immediate = 0
        for _ in 0..<400 {
            let access = try ch.requestToSend(node: 2, bytes: 50, at: t)
            if access == .transmit {
                immediate += 1
            } else {
                #expect(access == .wait(until: t + 0.1, reason: .backoff))
            }
            t += 1
        }
        #expect(immediate > 70 && immediate < 130, "about a quarter of 400: \(immediate)")
    }

    @Test func dutyCycleCapsEachNodesAirtimePerHour() throws {
        // 0.1% of an hour = 3.6 s: three packets of about 1 s, not four.
        var ch = try self.channel([(0, 0), (1_000, 0)], dutyCycle: 0.001)
        let air = ch.airtime(bytes: 200)
        #expect(air > 0.9 && air < 1.2)
        var first: RadioChannel.Transmission? = nil
        for k in 0..<3 {
            let t = try ch.startTransmission(from: 0, bytes: 200, at: Double(k) * 10)
            if first == nil { first = t }
        }
        let until = first!.end + 3_600
        #expect(try ch.requestToSend(node: 0, bytes: 200, at: 40) == .wait(until: until, reason: .dutyCycle))
        #expect(throws: RadioChannel.ChannelError.dutyCycleExceeded(node: 0, until: until)) {
            try ch.startTransmission(from: 0, bytes: 200, at: 40)
        }
        // The other node's budget is its own.
        try ch.startTransmission(from: 1, bytes: 200, at: 40)
        // Once the first packet has left the window, the fourth may go.
        #expect(try ch.requestToSend(node: 0, bytes: 200, at: until) == .transmit)
    }

    @Test func explicitLinksAreTheOnlyPairsThatHearAndTheirLossIsSeeded() throws {
        // 0-1 a clean link, 1-2 a link losing half its packets; 0 and 2 stand 100 m apart but are not linked.
        let links = [RadioChannel.Link(a: 0, b: 1, loss: 0), RadioChannel.Link(a: 1, b: 2, loss: 0.5)]
        func run(seed: UInt64) throws -> [RadioChannel.Reception.Outcome] {
            var ch = try self.channel([(0, 0), (20_000, 0), (100, 0)], geometry: .links(links), seed: seed)
            #expect(ch.hears(1, 0) && ch.hears(2, 1) && !ch.hears(2, 0), "20 km apart but linked; 100 m apart but not")
            var out: [RadioChannel.Reception.Outcome] = []
            for k in 0..<200 {
                try ch.startTransmission(from: 1, bytes: 20, at: Double(k))
                out += try ch.receptions(through: Double(k) + 0.9).filter { $0.to == 2 }.map(\.outcome)
            }
            return out
        }
        let a = try run(seed: 42), b = try run(seed: 42), c = try run(seed: 43)
        #expect(a == b, "the same seed gives the same losses")
        #expect(a != c)
        let received = a.filter { $0 == .received }.count
        #expect(a.count == 200 && received > 70 && received < 130, "about half of 200 arrive: \(received)")
        #expect(Set(a).isSubset(of: [.received, .lost]))
    }

    @Test func aPartitionSilencesPairsAcrossItUntilItHeals() throws {
        var ch = try self.channel([(0, 0), (1_000, 0), (2_000, 0)])
        ch.partition([[0, 1]])
        try ch.startTransmission(from: 1, bytes: 20, at: 0)
        #expect(try ch.receptions(through: 1).map(\.to) == [0], "node 2 is in the other group")
        ch.heal()
        try ch.startTransmission(from: 1, bytes: 20, at: 2)
        #expect(try ch.receptions(through: 3).map(\.to) == [0, 2])
    }

    @Test func aDownNodeNeitherSendsNorReceives() throws {
        var ch = try self.channel([(0, 0), (1_000, 0)])
        ch.setDown(1, true)
        #expect(throws: RadioChannel.ChannelError.nodeDown(1)) { try ch.startTransmission(from: 1, bytes: 20, at: 0) }
        try ch.startTransmission(from: 0, bytes: 20, at: 0)
        #expect(try ch.receptions(through: 1).map(\.outcome) == [.receiverDown])
    }

    @Test func timeOnlyMovesForward() throws {
        var ch = try self.channel([(0, 0), (1_000, 0)])
        try ch.startTransmission(from: 0, bytes: 20, at: 5)
        #expect(throws: RadioChannel.ChannelError.timeWentBackwards(now: 5, asked: 4)) { try ch.receptions(through: 4) }
    }
}
