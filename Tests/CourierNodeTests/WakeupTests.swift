import CourierMedium
import CourierNode
import CourierWire
import Testing

/// The engine asks for a tick only when a tick can do something (issue 13 point 7: the drill simulator spent most of
/// its time in ticks that did nothing). What can only go out in a packet (a transfer's next fragment, an ack, receipt
/// parts, a due announce) waits for the link: while our own packet is on the air it wakes the engine when the packet
/// ends; on a link that is down, or in quiet mode, it does not wake it at all (`linkUp` and lifting quiet tick).
@Suite struct WakeupTests {
    /// LoRa SF12/125 kHz: a full packet is about 9 s on the air.
    static let slowLoRa = LinkProperties(mtu: 255, bitsPerSecond: 290, duplex: .half, mediumChecksFrames: true,
                                         airtime: .lora(LoRaParameters(spreadingFactor: 12, bandwidthHz: 125_000, codingRate: 5), framing: 1))

    /// Words that do not compress away: an alert of several packets.
    static func longText(bytes: Int) -> [UInt8] {
        let words = ["ford", "ridge", "pump", "clinic", "north", "tents", "flour", "bridge", "harvest", "medicine", "road",
                     "seven", "sacks", "litres", "rota", "broken", "open", "school", "well", "river"]
        var g = SplitMix64(seed: 77)
        var out: [UInt8] = []
        while out.count < bytes {
            if !out.isEmpty { out.append(0x20) }
            out += Array(words[Int(g.next() % UInt64(words.count))].utf8)
            out += Array(String(g.next() % 1000).utf8)
        }
        return Array(out.prefix(bytes))
    }

    /// Ticks at the wake-ups the engine asks for until it sends a packet (or `limit` seconds, or `maxTicks` ticks):
    /// the ticks taken and the packet's bytes.
    static func ticksUntilPacket(_ h: EngineHarness, limit: Double, maxTicks: Int = 20_000) -> (ticks: Int, packet: [UInt8]?) {
        let end = h.now + limit
        var ticks = 0
        while ticks < maxTicks {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            guard next <= end else { break }
            h.now = next
            ticks += 1
            for o in h.node.tick(now: h.now) {
                if case .send(_, let bytes, _) = o { return (ticks, bytes) }
            }
        }
        return (ticks, nil)
    }

    /// Ticks at the wake-ups the engine asks for during `seconds` (at most `maxTicks`): the ticks and packets sent.
    static func tickFor(_ h: EngineHarness, _ seconds: Double, maxTicks: Int = 20_000) -> (ticks: Int, sent: Int) {
        let end = h.now + seconds
        var ticks = 0
        var sent = 0
        while ticks < maxTicks {
            let next = max(h.now + 0.001, h.node.nextWakeup(now: h.now))
            guard next <= end else { break }
            h.now = next
            ticks += 1
            sent += h.node.tick(now: h.now).filter { if case .send = $0 { true } else { false } }.count
        }
        h.now = max(h.now, end)
        return (ticks, sent)
    }

    /// A long alert from the engine: its first packet goes at once; returns that packet.
    static func startLongAlert(_ h: EngineHarness) throws -> [UInt8] {
        _ = h.run(for: 30)
        _ = h.addPeer()
        _ = h.run(for: 30)
        let (_, out) = try h.node.submit(kind: .alert, destination: .everyone, content: Self.longText(bytes: 1_500), now: h.now)
        let packets = out.compactMap { if case .send(_, let bytes, _) = $0 { bytes } else { nil } }
        try #require(packets.count == 1, "the alert's first packet goes at once, alone on a half-duplex link")
        return packets[0]
    }

    @Test func aTransferDueWhileOurOwnPacketIsOnTheAirWakesTheEngineWhenItEnds() throws {
        let h = try EngineHarness(properties: Self.slowLoRa)
        let first = try Self.startLongAlert(h)
        let airtime = Self.slowLoRa.airtime(bytes: first.count)
        #expect(airtime > 5)
        let sentAt = h.now
        // The alert's next fragments are due at once, but the link is ours until the packet ends.
        let (ticks, next) = Self.ticksUntilPacket(h, limit: 60)
        #expect(next != nil, "the alert's next packet goes when the first ends")
        #expect(abs(h.now - (sentAt + airtime)) < 0.01, "the next packet goes when the first ends (after \(h.now - sentAt) s, airtime \(airtime) s)")
        #expect(ticks < 5, "\(ticks) ticks while our own \(airtime) s packet was on the air (one a millisecond would be thousands)")
    }

    @Test func transfersOnALinkThatIsDownDoNotWakeTheEngine() throws {
        let h = try EngineHarness(properties: Self.slowLoRa)
        _ = try Self.startLongAlert(h)
        h.node.linkDown(h.link, now: h.now)
        let (ticks, sent) = Self.tickFor(h, 30)
        #expect(sent == 0)
        #expect(ticks < 5, "\(ticks) ticks in 30 s with the link down (its transfers wait for it)")
        // Back up: the rest of the alert goes.
        let up = h.read(h.node.linkUp(h.link, now: h.now))
        let after = h.run(for: 120)
        #expect(!(up.fragments + after.fragments).isEmpty, "the alert's fragments go once the link is back")
    }

    @Test func inQuietModeWhatWaitsForAPacketDoesNotWakeTheEngine() throws {
        let h = try EngineHarness(properties: Self.slowLoRa)
        _ = try Self.startLongAlert(h)
        _ = try h.node.setQuiet(true, now: h.now)
        let (ticks, sent) = Self.tickFor(h, 30)
        #expect(sent == 0, "quiet: nothing is sent")
        #expect(ticks < 5, "\(ticks) ticks in 30 s of quiet mode")
        let lifted = h.read(try h.node.setQuiet(false, now: h.now))
        let after = h.run(for: 120)
        #expect(!(lifted.fragments + after.fragments).isEmpty, "the alert's fragments go once quiet mode is lifted")
    }

    @Test func aPeriodicAnnounceFallingDueDuringACarrierWaitsForItsEnd() throws {
        let lora = LinkProperties(mtu: 255, bitsPerSecond: 1_760, duplex: .half, mediumChecksFrames: true,
                                  airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 1))
        let h = try EngineHarness(properties: lora)
        _ = h.run(for: 5)
        _ = h.addPeer()
        _ = h.run(for: 5)
        // Another station holds the channel for longer than an announce interval (900 s): the periodic announce
        // falls due meanwhile.
        let end = h.now + 2_000
        _ = h.node.channelBusy(h.link, until: end, now: h.now)
        let (ticks, sent) = Self.tickFor(h, end - h.now - 1)
        #expect(sent == 0, "nothing is sent while the channel is busy")
        #expect(ticks < 100, "\(ticks) ticks during a 2,000 s carrier (about one a minute expected)")
        let after = h.run(for: 10)
        #expect(after.packets.contains { $0.contains { if case .announce = $0 { true } else { false } } },
                "the announce goes once the channel is free")
    }
}
