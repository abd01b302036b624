import Foundation
import CourierTooling
import CourierWire
import Testing

@Suite struct PacketTests {
    let sealer = PacketSealer(networkKey: Fixture.network, sender: Fixture.a.nodeID)
    let opener = PacketOpener(networkKey: Fixture.network)

    func sample() throws -> [Record] {
        let b = try Fixture.bundle(kind: .aidRequest, text: "Need insulin for two patients at the Penjwen clinic by tomorrow noon.")
        return [.bundle(BundleRecord(bundle: b.encode())), .ack(AckRecord(target: Fixture.b.nodeID.short, entries: [AckEntry(transfer: 1, received: 1)]))]
    }

    @Test func outsidersCannotReadOrInject() throws {
        let bytes = self.sealer.seal(try self.sample(), counter: 10)
        // The content does not appear in clear.
        #expect(!bytes.hex.contains(Array("insulin".utf8).hex))
        let outsider = PacketOpener(networkKey: try NetworkKey(bytes: Fixture.seeds(0x99)))
        #expect(throws: WireError.authenticationFailed) { try outsider.open(bytes, candidates: Fixture.directory([Fixture.a])) }
        // Every single-bit change is caught.
        for i in 0..<bytes.count {
            var t = bytes
            t[i] ^= 0x04
            #expect(throws: WireError.self) { try self.opener.open(t, candidates: Fixture.directory([Fixture.a])) }
        }
        #expect(try self.opener.open(bytes, candidates: Fixture.directory([Fixture.a])).records == (try self.sample()))
    }

    @Test func unknownSenderIsATypedError() throws {
        let bytes = self.sealer.seal(try self.sample(), counter: 1)
        #expect(throws: WireError.unknownSender(Fixture.a.nodeID.short)) {
            try self.opener.open(bytes, candidates: Fixture.directory([Fixture.b]))
        }
    }

    @Test func nodeIDsCompareAndHashByAllTheirBytes() throws {
        // `==` and `hash` read the id as two words: an equal id in another array is equal and hashes the same; ids
        // that differ in any one byte (of either word) are apart, in a set too.
        let a = Fixture.a.nodeID
        let copy = try #require(NodeID(bytes: a.bytes.map { $0 }))
        #expect(copy == a)
        #expect(copy.hashValue == a.hashValue)
        for i in 0..<16 {
            var bytes = a.bytes
            bytes[i] ^= 0x01
            let other = try #require(NodeID(bytes: bytes))
            #expect(other != a)
            #expect(Set([a, other, copy]).count == 2)
        }
    }

    @Test func shortIDCollisionsAreResolvedByTheTag() throws {
        // A second node whose short id equals A's: the receiver tries both, the tag picks the real sender.
        var impostorBytes = Fixture.a.nodeID.bytes
        impostorBytes[15] ^= 0xFF
        let impostor = NodeID(bytes: impostorBytes)!
        #expect(impostor.short == Fixture.a.nodeID.short)
        let both: (ShortID) -> [NodeID] = { $0 == Fixture.a.nodeID.short ? [impostor, Fixture.a.nodeID] : [] }
        let fromA = self.sealer.seal(try self.sample(), counter: 1)
        #expect(try self.opener.open(fromA, candidates: both).sender == Fixture.a.nodeID)
        let fromImpostor = PacketSealer(networkKey: Fixture.network, sender: impostor).seal(try self.sample(), counter: 1)
        #expect(try self.opener.open(fromImpostor, candidates: both).sender == impostor)
    }

    @Test func announceFormOpensWithoutKnowingTheSender() throws {
        let ann = AnnounceRecord(capabilities: 1, signingKey: Fixture.c.publicKeys.signing, agreementKey: Fixture.c.publicKeys.agreement, name: "Halabja water committee")
        let bytes = PacketSealer(networkKey: Fixture.network, sender: Fixture.c.nodeID).seal([.announce(ann)], counter: 1, announceSalt: 77)
        let p = try self.opener.open(bytes, candidates: { _ in [] })
        #expect(p.sender == nil)
        #expect(p.header.sender == Fixture.c.nodeID.short)
        #expect(p.records == [.announce(ann)])
        let keys = try NodePublicKeys(signing: ann.signingKey!, agreement: ann.agreementKey!)
        #expect(keys.nodeID.short == p.header.sender)
    }

    @Test func announceFitsTheMinimumMTUInTwoPackets() {
        let k = Fixture.a.publicKeys
        for rec in [AnnounceRecord(capabilities: 1, signingKey: k.signing, agreementKey: nil),
                    AnnounceRecord(capabilities: 1, signingKey: nil, agreementKey: k.agreement)] {
            let bytes = self.sealer.seal([.announce(rec)], counter: 1, announceSalt: 1)
            #expect(bytes.count <= Packet.minimumMTU)
        }
    }

    @Test func openModeIsReadableButAuthenticated() throws {
        let open = PacketSealer(networkKey: Fixture.network, sender: Fixture.a.nodeID, open: true)
        let b = try Fixture.bundle(kind: .alert, text: "Road to Amedi closed by landslide at km 12.")
        let bytes = open.seal([.bundle(BundleRecord(bundle: b.encode()))], counter: 3)
        #expect(bytes.hex.contains(b.encode().hex))
        #expect(throws: WireError.self) { try self.opener.open(bytes, candidates: Fixture.directory([Fixture.a])) }
        let amateur = PacketOpener(networkKey: Fixture.network, acceptOpen: true)
        #expect(try amateur.open(bytes, candidates: Fixture.directory([Fixture.a])).records.count == 1)
        var t = bytes
        t[20] ^= 1
        #expect(throws: WireError.authenticationFailed) { try amateur.open(t, candidates: Fixture.directory([Fixture.a])) }
    }

    @Test func aReservedRecordFlagIsSkippedNotFatal() throws {
        // A newer sender sets a flag this version does not know: that record is skipped, the rest is read.
        // (Bundle flag 0x04 is the compact form now, 5.3; fragment 0x04 is still reserved.)
        let payload: [UInt8] = [0x2C, 0x01, 0xAA] + Record.encode([.summary(SummaryRecord(isFinal: true, digests: [7]))])
        let records = try Record.decodeAll(payload[...])
        #expect(records == [.unknown(type: 2, flags: 4, body: [0xAA]), .summary(SummaryRecord(isFinal: true, digests: [7]))])
    }

    @Test func replayWindow() {
        var w = ReplayWindow()
        let steps: [(UInt32, Bool)] = [
            (100, true), (100, false), (99, true), (164, true),
            (100, false),  // now 64 behind: outside the window
            (101, true), (101, false), (1_000_000, true), (164, false),
            // SPEC 4.8: 1,000,000 opened a tentative window; the main one still moves and still refuses.
            (165, true), (1_000_000, false), (1_000_001, true), (1_000_002, true), (1_000_003, true),
            (1_000_004, true),  // the 4th since the main window last accepted one: it becomes the main window
            (166, true), (165, false),  // the old main window is kept as the tentative one
        ]
        for (counter, fresh) in steps {
            let accepted = w.accept(counter)
            #expect(accepted == fresh, "counter \(counter)")
        }
    }

    /// Issue 10 point 4: a member forges one packet as another with counter 2^32-1; the real sender's packets are
    /// still accepted, the forgery is refused when sent again, and so are the real ones sent again.
    @Test func aForgedCounterFarAheadDoesNotPoisonTheWindow() throws {
        var w = ReplayWindow()
        for c in UInt32(10)..<20 {
            let v = w.check(c)
            #expect(v == .accepted)
        }
        let forged = w.check(UInt32.max), again = w.check(UInt32.max)
        #expect(forged == .acceptedAhead && again == .replay)
        for c in UInt32(20)..<100 {
            let v = w.check(c)
            #expect(v == .accepted, "real counter \(c)")
        }
        for c in UInt32(90)..<100 {
            let v = w.check(c)
            #expect(v == .replay)
        }
        #expect(w.highest == 99)
        // A windows state kept in the store reads back the same (its JSON form, kept by earlier stores, too).
        let back = try? JSONDecoder().decode(ReplayWindow.self, from: JSONEncoder().encode(w))
        #expect(back == w)
        #expect(try ReplayWindow(stored: w.stored) == w)
    }

    /// The stored form of the windows (what the store keeps with each packet) reads back every state: none, a main
    /// window, a tentative one with its hits, the two swapped; and anything else is refused, not misread.
    @Test func replayWindowStoredFormReadsBackEveryState() throws {
        var w = ReplayWindow()
        var states = [w]
        for c: UInt32 in [7, 9, 70, 4_000_000_000, 4_000_000_001, 71, 4_000_000_002, 4_000_000_003, 4_000_000_004, 72, 0xFFFF_FFFF] {
            _ = w.check(c)
            states.append(w)
        }
        #expect(Set(states).count == states.count, "each step changes the state")
        for s in states {
            #expect(try ReplayWindow(stored: s.stored) == s)
            // The same answers afterwards: the read-back window refuses and accepts as the original does.
            var a = s, b = try ReplayWindow(stored: s.stored)
            for c: UInt32 in [7, 8, 72, 73, 4_000_000_004, 4_000_000_005] { #expect(a.check(c) == b.check(c)) }
        }
        let good = states[5].stored
        #expect(good.count == 38, "two windows: 2 + 2 x 16 + 4 bytes")
        #expect(throws: WireError.self) { try ReplayWindow(stored: []) }
        #expect(throws: WireError.self) { try ReplayWindow(stored: Array(good.dropLast())) }
        #expect(throws: WireError.self) { try ReplayWindow(stored: good + [0]) }
        #expect(throws: WireError.self) { try ReplayWindow(stored: [2] + good.dropFirst()) }
        #expect(throws: WireError.self) { try ReplayWindow(stored: [1, 4, 0, 0, 0, 0]) }
    }

    @Test func packerFillsPacketsUpToTheMTU() throws {
        var g = SplitMix64(seed: 5)
        for mtu in [64, 100, 255, 508] {
            var records: [Record] = []
            for i in 0..<40 {
                let data = Fixture.randomBytes(Int(g.next() % UInt64(mtu - 40)) + 1, &g)
                records.append(.bundle(BundleRecord(transfer: UInt32(i), bundle: data)))
            }
            let packets = Packer.pack(records, mtu: mtu)
            #expect(Array(packets.joined()) == records)
            for p in packets {
                let bytes = self.sealer.seal(p, counter: 1)
                #expect(bytes.count <= mtu)
                #expect(try self.opener.open(bytes, candidates: Fixture.directory([Fixture.a])).records == p)
            }
            #expect(packets.count < records.count || mtu == 64)
        }
    }
}
