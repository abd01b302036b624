import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Testing

/// Aggregated receipts (SPEC 6.16), as the protocol states them: one engine, its neighbours played by hand.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ReceiptAggregationTests {
    /// The part `holder` makes for `id` (its tag keyed with the origin's keys).
    static func part(_ id: BundleID, by holder: EngineHarness.Peer, origin: NodePublicKeys) -> (id: BundleID, holder: ShortID, tag: [UInt8]) {
        let key = ReceiptPartsRecord.key(mine: holder.identity, theirs: origin, holder: holder.identity.nodeID, origin: origin.nodeID)!
        return (id, holder.short, ReceiptPartsRecord.tag(id, holder: holder.short, key: key))
    }

    /// A LoRa SF9 link (a packet's airtime sets the engine's waits, as on the air).
    static func harness() throws -> EngineHarness {
        try EngineHarness(properties: LinkProperties(
            mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
            airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0)))
    }

    static func partsRecords(_ out: EngineHarness.Out, origin: ShortID) -> [[ReceiptPartsRecord]] {
        out.packets.map { $0.compactMap { if case .receiptParts(let r) = $0, r.origin == origin { r } else { nil } } }.filter { !$0.isEmpty }
    }

    /// The relay (the engine) is one hop from the origin: it heard a flood straight from it.
    static func relayNextTo(_ h: EngineHarness, origin o: EngineHarness.Peer) throws {
        let b = try o.bundle(.text, to: .everyone, "Road to the clinic open.", at: h.now)
        h.receive(from: o, [.bundle(BundleRecord(bundle: b.encode()))])
        h.run(for: 60)
    }

    @Test func receiptsFor5BundlesFrom3RelaysTravelAsOneRecord() throws {
        let h = try Self.harness()
        let o = h.addPeer()
        let relays = (0..<3).map { _ in h.addPeer() }
        try Self.relayNextTo(h, origin: o)
        let alerts = try (0..<5).map { i in try BundleID(origin: o.short, created: 1_523_041, sequence: UInt32(100 + i)) }
        // Each relay, two hops from the origin, sends its parts for the five alerts.
        for r in relays {
            let parts = alerts.map { Self.part($0, by: r, origin: o.identity.publicKeys) }
            h.receive(from: r, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 2, parts: parts))])
        }
        // Sent once they had time to gather (nobody nearer the origin is heard carrying them: later, again).
        var sent: [[ReceiptPartsRecord]] = []
        while sent.isEmpty && h.now < 1_790_000_000 + 900 { sent = Self.partsRecords(h.run(for: 1), origin: o.short) }
        #expect(sent.count == 1, "\(sent.count) packets carried parts")
        let r = try #require(sent.first?.first)
        #expect(sent.first?.count == 1, "one record")
        #expect(r.hops == 1, "the relay says it is one hop from the origin")
        #expect(Set(r.bundleIDs) == Set(alerts))
        #expect(r.parts.count == 15, "\(r.parts.count) parts: 5 bundles × 3 relays")
        #expect(r.groups.count == 5, "each bundle once, with all its holders")
        // The origin can check every part: carried unchanged.
        for p in r.parts {
            let holder = try #require(relays.first { $0.short == p.holder })
            let key = ReceiptPartsRecord.key(mine: o.identity, theirs: holder.identity.publicKeys, holder: holder.identity.nodeID, origin: o.identity.nodeID)!
            #expect(ReceiptPartsRecord.verify(p.id, holder: p.holder, tag: p.tag, key: key))
        }
    }

    @Test func aRelayMergesTwoReceiptsOfTheSameOriginAndStopsWhenANearerNodeCarriesThem() throws {
        for confirmed in [true, false] {
            let h = try Self.harness()
            let o = h.addPeer()
            let (r1, r2) = (h.addPeer(), h.addPeer())
            try Self.relayNextTo(h, origin: o)
            let a = try BundleID(origin: o.short, created: 1_523_041, sequence: 7)
            let b = try BundleID(origin: o.short, created: 1_523_042, sequence: 8)
            let p1 = Self.part(a, by: r1, origin: o.identity.publicKeys)
            let p2 = Self.part(b, by: r2, origin: o.identity.publicKeys)
            h.receive(from: r1, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 2, parts: [p1]))])
            h.run(for: 0.2)
            h.receive(from: r2, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 3, parts: [p2]))])
            // Gathered, then sent once, both in one record.
            var sent: [ReceiptPartsRecord] = []
            while sent.isEmpty && h.now < 1_790_000_000 + 900 { sent = Self.partsRecords(h.run(for: 1), origin: o.short).flatMap { $0 } }
            #expect(sent.count == 1, "\(sent.count) records: two receipts of one origin went separately")
            #expect(Set(sent.first?.parts.map { "\($0.id) \($0.holder)" } ?? []) == ["\(a) \(r1.short)", "\(b) \(r2.short)"])
            // The origin confirms them (hops 0): the relay stops. Not heard carried on: sent again.
            if confirmed { h.receive(from: o, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 0, parts: [p1, p2]))]) }
            let after = Self.partsRecords(h.run(for: 3_600), origin: o.short).flatMap { $0 }
            if confirmed {
                #expect(after.isEmpty, "sent again after the origin confirmed them: \(after)")
            } else {
                #expect(!after.isEmpty, "parts nobody nearer the origin carried were not sent again")
                #expect(after.allSatisfy { Set($0.parts.map(\.holder)) == [r1.short, r2.short] })
            }
        }
    }

    @Test func aForgedPartIsRefused() throws {
        // The engine is the origin; bravo is a neighbour with a real part, and claims charlie has it too, with a
        // tag it made itself (it cannot make charlie's).
        let h = try Self.harness()
        let bravo = h.addPeer()
        let charlie = h.addPeer()
        let mine = h.me.publicKeys
        let alert = try BundleID(origin: h.me.nodeID.short, created: 1_523_041, sequence: 1)
        let real = Self.part(alert, by: bravo, origin: mine)
        var forged = Self.part(alert, by: bravo, origin: mine)
        forged.holder = charlie.short
        let out = h.receive(from: bravo, [.receiptParts(ReceiptPartsRecord(origin: h.me.nodeID.short, hops: 1, parts: [real, forged]))])
        #expect(out.events.contains(.receipt(alert, by: bravo.short)))
        #expect(!out.events.contains(.receipt(alert, by: charlie.short)), "a forged part was shown as a receipt")
        #expect(out.events.contains { if case .rejected(let why) = $0 { why.contains("\(charlie.short)") && why.contains("forged") } else { false } },
                "\(out.events)")
        // The inbox keeps the receipt (for `relay outbox`): bravo's part only.
        let kept = try h.store.receipts()
        #expect(kept.count == 1)
        let parts = try ReceiptPartsRecord.decode(kept[0].content[...]).parts
        #expect(parts.map(\.holder) == [bravo.short] && parts.map(\.id) == [alert])
        // The origin confirms bravo's part, not the forged one.
        let confirmed = Self.partsRecords(h.run(for: 600), origin: h.me.nodeID.short).flatMap { $0 }
        #expect(confirmed.count == 1 && confirmed.first?.hops == 0)
        #expect(confirmed.first?.parts.map(\.holder) == [bravo.short])
    }

    /// A relay that lost an alert's copy and hears a neighbour's receipt part for it (SPEC 8.5 rule 5: "learns of the
    /// bundle from a receipt part ... and asks for it") sends its summary, so the holder answers with the alert; the
    /// same relay hearing nothing sends none in that time. (Before: parts only noted holders, and on the 50-relay day of
    /// `courier-bench mesh --seeds 1 --neighbour-lists` a relay whose one neighbour's copy was lost never got the alert.)
    @Test func aRelayThatHearsAPartForAnAlertItLacksAsksForItWithItsSummary() throws {
        func summariesAfter(parts: Bool) throws -> (summaries: Int, window: Double) {
            // No summary with the periodic announces (one may fall in the window either way).
            let h = try EngineHarness(properties: LinkProperties(
                mtu: 255, bitsPerSecond: 1_757, duplex: .half, mediumChecksFrames: true,
                airtime: .lora(LoRaParameters(spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5), framing: 0)),
                configure: { $0.summaryInAnnounces = false })
            let o = h.addPeer(), r = h.addPeer()
            // Settled: the contact summaries and announces of the start are over.
            h.run(for: 900)
            let alert = try BundleID(origin: o.short, created: 1_523_041, sequence: 7)
            if parts {
                h.receive(from: r, [.receiptParts(ReceiptPartsRecord(origin: o.short, hops: 2, parts: [Self.part(alert, by: r, origin: o.identity.publicKeys)]))])
            }
            let out = h.run(for: 120)
            let summaries = out.packets.filter { $0.contains { if case .summary = $0 { true } else { false } } }.count
            return (summaries, 120)
        }
        let asked = try summariesAfter(parts: true)
        #expect(asked.summaries >= 1, "no summary within \(asked.window) s of hearing a part for an alert the relay lacks")
        let quiet = try summariesAfter(parts: false)
        #expect(quiet.summaries == 0, "\(quiet.summaries) summaries in the same time without the part")
    }
}
