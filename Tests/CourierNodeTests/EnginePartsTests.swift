import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Testing

/// The engine's parts, one behaviour each, as the protocol states it: one engine, neighbours played by hand
/// (`EngineHarness`), no simulator.
///
/// The in-process engine suites take 15 minutes as their limit: each test takes well under a second alone, but in a
/// whole-suite run on a loaded 2-core box they wait behind the relay-process tests for a thread (seen: 375 s for this
/// suite), and a limit that counts the wait fails them for nothing. A real hang still ends the run.
@Suite(.timeLimit(.minutes(20)))
struct EnginePartsTests {
    static func noise(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    // Transfers (ARQ)
    @Test func anAckForTheFirstThreeFragmentsRetransmitsOnlyTheRest() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (_, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Self.noise(1_200, seed: 1), now: h.now)
        let first = h.read(out).fragments.filter { $0.nextHop == p.short }
        let n = first.count
        try #require(n >= 4 && n <= 8, "\(n) fragments: expected one window")
        let transfer = first[0].transfer
        #expect(Set(first.map(\.index)) == Set(0..<n), "the whole window goes at once")
        // The neighbour has fragments 1-3 (indices 0-2).
        let ack = AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: transfer, receivedIndices: [0, 1, 2])])
        #expect(h.receive(from: p, [.ack(ack)]).fragments.isEmpty, "fragments above the highest acknowledged may still be on their way")
        let again = h.run(for: 120).fragments.filter { $0.transfer == transfer }
        #expect(!again.isEmpty, "nothing retransmitted at the timeout")
        #expect(Set(again.map(\.index)) == Set(3..<n), "retransmitted \(Set(again.map(\.index)).sorted()), not only 4-\(n)")
    }

    // Intake
    @Test func aDuplicateBundleIsAcknowledgedAndNotDeliveredAgain() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "The ford is passable again.", at: h.now)
        let record = Record.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 7, bundle: b.encode()))
        var first = h.receive(from: p, [record])
        first.packets += h.run(for: 2).packets
        #expect(first.delivered.map(\.id) == [b.id])
        #expect(first.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 7 } }, "not acknowledged")
        // The ack was lost: the neighbour sends it again.
        var second = h.receive(from: p, [record])
        second.packets += h.run(for: 2).packets
        #expect(second.delivered.isEmpty, "delivered twice")
        #expect(second.acks.contains { $0.target == p.short && $0.entries.contains { $0.transfer == 7 } }, "the copy is not acknowledged")
        #expect(try h.store.inbox(limit: 10).count == 1)
    }

    // Replay guard
    @Test func aPacketHeardTwiceIsRefusedTheSecondTime() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let b = try p.bundle(.text, to: .everyone, "Market moved to Thursday.", at: h.now)
        let bytes = p.seal([.bundle(BundleRecord(bundle: b.encode()))])
        #expect(h.receive(bytes: bytes).delivered.count == 1)
        let copy = h.receive(bytes: bytes)
        #expect(copy.delivered.isEmpty)
        #expect(copy.events.contains { if case .packetRefused(_, .replay, _) = $0 { true } else { false } }, "\(copy.events)")
    }

    // Receipts
    @Test func receiptsForThreeBundlesFromOneOriginGoBackAsOneReceipt() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        var ids: [BundleID] = []
        for (i, text) in ["Seeds arrived.", "Tools arrived.", "Water filters arrived."].enumerated() {
            let b = try p.bundle(.text, to: .node(h.me.nodeID.short), text, at: h.now)
            ids.append(b.id)
            h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: UInt32(10 + i), bundle: b.encode()))])
        }
        h.run(for: 90)
        let receipts = try h.store.held(kind: .receipt, origin: h.me.nodeID.short)
        #expect(receipts.count == 1, "\(receipts.count) receipts for three bundles of one origin")
        let r = try #require(receipts.first)
        #expect(r.destination == .node(p.short))
        let q = try #require(try h.store.bundle(r.id))
        #expect(try ReceiptContent.decode(try CourierBundle(decoding: q.data).content(compressor: BodyCompressor())) == ids)
    }

    // Flooding
    @Test func aRelayThatHearsTwoMoreCopiesOfAFloodStaysSilentAndOneThatHearsNoneRebroadcasts() throws {
        for copies in [2, 0] {
            let h = try EngineHarness()
            let peers = (0..<4).map { _ in h.addPeer() }
            h.run(for: 5)
            let b = try peers[0].bundle(.text, to: .everyone, "The school is a shelter tonight.", at: h.now)
            let record = Record.bundle(BundleRecord(bundle: b.encode()))
            for p in peers.prefix(1 + copies) { h.receive(from: p, [record]) }
            let later = h.run(for: 30)
            let rebroadcast = later.bundles.contains { (try? CourierBundle(decoding: $0.bundle))?.id == b.id }
            if copies == 2 {
                #expect(!rebroadcast, "rebroadcast after hearing \(1 + copies) copies")
                #expect(later.events.contains(.suppressed(b.id)))
            } else {
                #expect(rebroadcast, "not passed on, though three neighbours lack it")
            }
        }
    }

    // Origin judgement
    @Test func anUnsignedAlertIsRefusedAndNotPassedOn() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        _ = h.addPeer()
        let b = try p.bundle(.alert, to: .everyone, "Evacuate the lower town.", at: h.now, signed: false)
        var out = h.receive(from: p, [.bundle(BundleRecord(bundle: b.encode()))])
        let later = h.run(for: 30)
        out.events += later.events
        #expect(out.delivered.isEmpty)
        #expect(out.events.contains { if case .rejected(let why) = $0 { why.contains("unsigned") } else { false } }, "\(out.events)")
        #expect(!later.bundles.contains { (try? CourierBundle(decoding: $0.bundle))?.id == b.id })
        #expect(try h.store.events(after: 0).contains { $0.type == .refused && $0.bundle == b.id.description })
    }

    // Routing (custody)
    @Test func aDirectedBundleWithNoRouteGoesAsACopyToANeighbourAndCustodyStays() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let far = ShortID(0x0BAD_F00D)
        let (id, out) = try h.node.submit(kind: .text, destination: .node(far), content: Array("For the far valley.".utf8), now: h.now)
        let copy = try #require(h.read(out).bundles.first { $0.nextHop == p.short }, "no copy handed to the neighbour")
        let transfer = try #require(copy.transfer)
        let acked = h.receive(from: p, [.ack(AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: transfer, received: 1)]))])
        #expect(!acked.events.contains { if case .custodyReleased = $0 { true } else { false } }, "custody moved with a copy")
        #expect(try h.store.bundle(id)?.custody == true)
    }

    // Key book
    @Test func aFloodFromAnOriginWhoseKeysAreUnknownIsKeptAndItsKeysAskedFor() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let stranger = EngineHarness.Peer(key: h.key)
        let b = try stranger.bundle(.alert, to: .everyone, "Bridge closed.", at: h.now)
        let out = h.receive(from: p, [.bundle(BundleRecord(bundle: b.encode()))])
        #expect(out.delivered.isEmpty, "delivered before its origin could be proven")
        #expect(out.events.contains { if case .waiting(b.id, _) = $0 { true } else { false } }, "\(out.events)")
        let requests = try h.store.held(kind: .identity, origin: h.me.nodeID.short)
        #expect(requests.contains { $0.destination == .node(stranger.short) }, "no key request to the origin")
    }

    // Neighbours
    @Test func aNeighbourIsHeardOnceAndListedWithItsName() throws {
        let h = try EngineHarness()
        let p = EngineHarness.Peer(key: h.key)
        let k = p.identity.publicKeys
        let announce = Record.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement, name: "ridge"))
        let first = h.receive(from: p, [announce], announce: true)
        #expect(first.events.contains(.neighbourHeard(p.identity.nodeID, name: "ridge", link: "radio")))
        let again = h.receive(from: p, [announce], announce: true)
        #expect(!again.events.contains { if case .neighbourHeard = $0 { true } else { false } }, "heard as new again")
        #expect(h.node.neighbourList(now: h.now).map(\.name) == ["ridge"])
    }

    /// The signal a modem reported with a neighbour's packet is kept with that neighbour for `relay status` (the
    /// last one: a later packet's replaces it; a packet on a link without reports leaves it as it was).
    @Test func aNeighboursLastSignalIsListed() throws {
        let h = try EngineHarness()
        let p = EngineHarness.Peer(key: h.key)
        let k = p.identity.publicKeys
        let announce = Record.announce(AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: k.agreement, name: "ridge"))
        h.now += 0.01
        _ = h.node.receive(p.seal([announce], announce: true), on: h.link, now: h.now, snr: -7.25, rssi: -118)
        #expect(h.node.neighbourList(now: h.now).map(\.snr) == [-7.25])
        h.now += 0.01
        _ = h.node.receive(p.seal([announce], announce: true), on: h.link, now: h.now, snr: 3.5, rssi: -101)
        h.receive(from: p, [announce], announce: true)
        let n = try #require(h.node.neighbourList(now: h.now).first)
        #expect(n.snr == 3.5 && n.rssi == -101)
    }

    // Airtime
    @Test func aLinkOutOfItsDutyCycleBudgetSendsNothingUntilItRefills() throws {
        // LoRa SF9: an announce is about a third of a second; a budget of 0.36 s an hour (0.01%) is spent by it.
        let lora = LinkProperties(mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
                                  airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0))
        let h = try EngineHarness(properties: lora, dutyCycle: 0.000_1)
        let spent = try #require(h.node.airtime().first)
        #expect(spent.tokens <= 0, "the hello did not spend the budget: \(spent.tokens) s left")
        let (_, out) = try h.node.submit(kind: .alert, destination: .everyone, content: Array("Storm at dusk.".utf8), now: h.now + 1)
        #expect(h.read(out).packets.isEmpty, "sent beyond the budget")
        #expect(h.run(for: 600).packets.isEmpty)
        #expect(!h.run(for: 3 * 3_600).packets.isEmpty, "never sent after the budget refilled")
    }
}
