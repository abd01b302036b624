import CourierTooling
import CourierWire
import Testing

@Suite struct FragmentTests {
    @Test(arguments: [64, 100, 255, 508, 1400])
    func largestBundleSurvivesLossReorderAndDuplicates(mtu: Int) throws {
        var g = SplitMix64(seed: UInt64(mtu))
        let bundle = Fixture.randomBytes(65_536 + 200, &g)
        let recs = try Fragmenter.records(bundle: bundle, mtu: mtu, transfer: 42, nextHop: Fixture.b.nodeID.short)
        let frags = recs.compactMap { if case .fragment(let f) = $0 { return f } else { return nil } }
        #expect(frags.count == recs.count && frags.count > 1)
        for f in frags { #expect(Packet.overhead + Record.fragment(f).encodedSize(last: true) <= mtu) }
        var re = Reassembler()
        var pending = frags
        var rounds = 0
        var done: [UInt8]? = nil
        while done == nil {
            rounds += 1
            #expect(rounds < 60)
            // Send what the last ack says is missing, 25% lost, the rest shuffled with duplicates.
            var air = pending.filter { _ in g.next() % 4 != 0 }
            air += air.prefix(3)
            air.shuffle(using: &g)
            var lastAck: AckEntry? = nil
            for f in air {
                switch re.add(f, from: Fixture.a.nodeID, now: Int64(rounds)) {
                case .complete(let bytes, _): done = bytes
                case .incomplete(let ack): lastAck = ack
                case .duplicate(let ack): #expect(ack.received == frags.count)
                case .rejected(let why): Issue.record("rejected: \(why)")
                }
            }
            if let ack = lastAck { pending = frags.filter { !ack.has($0.index) } }
        }
        #expect(done == bundle)
        #expect(re.partials.isEmpty && re.totalBytes == 0)
    }

    /// A receiver that could not store a completed bundle reopens the transfer (issue 10, point 2): the last
    /// fragment is missing again, the sender's retransmission of it alone completes the bundle again, and no late
    /// fragment is answered "complete" meanwhile.
    @Test func aReopenedTransferCompletesAgainWithItsLastFragment() throws {
        var g = SplitMix64(seed: 7)
        let bundle = Fixture.randomBytes(700, &g)
        let frags = try Fragmenter.records(bundle: bundle, mtu: 255, transfer: 9, nextHop: Fixture.b.nodeID.short)
            .compactMap { if case .fragment(let f) = $0 { return f } else { return nil } }
        #expect(frags.count > 2)
        var re = Reassembler()
        for f in frags.dropLast() {
            guard case .incomplete = re.add(f, from: Fixture.a.nodeID, now: 1) else { Issue.record("completed early"); return }
        }
        guard case .complete(let first, _) = re.add(frags.last!, from: Fixture.a.nodeID, now: 1) else { Issue.record("not complete"); return }
        #expect(first == bundle)
        re.reopen(sender: Fixture.a.nodeID, transfer: 9)
        #expect(re.completed.isEmpty && re.partials.count == 1)
        // A retransmitted early fragment: still incomplete, its ack lacks only the last fragment.
        guard case .incomplete(let ack) = re.add(frags[0], from: Fixture.a.nodeID, now: 2) else { Issue.record("not incomplete"); return }
        #expect(ack.received == frags.count - 1 && !ack.has(frags.last!.index))
        guard case .complete(let again, _) = re.add(frags.last!, from: Fixture.a.nodeID, now: 3) else { Issue.record("not complete again"); return }
        #expect(again == bundle && re.partials.isEmpty && re.totalBytes == 0)
    }

    @Test func ackBitmapEncodesExactlyTheReceivedSet() {
        var g = SplitMix64(seed: 1)
        for _ in 0..<200 {
            let n = Int(g.next() % 300) + 2
            let got = Set((0..<n).filter { _ in g.next() % 3 != 0 })
            let ack = AckEntry(transfer: 1, receivedIndices: got)
            for i in 0..<n { #expect(ack.has(i) == got.contains(i)) }
        }
    }

    @Test func staleTransfersAreGivenUp() throws {
        var g = SplitMix64(seed: 2)
        let recs = try Fragmenter.records(bundle: Fixture.randomBytes(1000, &g), mtu: 100, transfer: 1)
        guard case .fragment(let f) = recs[0] else { Issue.record("expected fragments"); return }
        var re = Reassembler(timeout: 600)
        _ = re.add(f, from: Fixture.a.nodeID, now: 0)
        let early = re.expire(now: 500)
        #expect(early.isEmpty)
        let late = re.expire(now: 601)
        #expect(late.count == 1)
        #expect(re.totalBytes == 0)
    }

    @Test func conflictingCountsAndMemoryPressureAreBounded() throws {
        var re = Reassembler(maxBytes: 10_000)
        let f = FragmentRecord(transfer: 1, index: 0, count: 5, data: [1, 2, 3])
        _ = re.add(f, from: Fixture.a.nodeID, now: 0)
        let conflicting = re.add(FragmentRecord(transfer: 1, index: 1, count: 6, data: [4]), from: Fixture.a.nodeID, now: 0)
        #expect(conflicting == .rejected("fragment count changed mid-transfer"))
        // Many senders' partial transfers never exceed the memory bound.
        var g = SplitMix64(seed: 9)
        for t in 0..<200 {
            _ = re.add(FragmentRecord(transfer: UInt32(t), index: 0, count: 10, data: Fixture.randomBytes(400, &g)), from: Fixture.b.nodeID, now: Int64(t))
            #expect(re.totalBytes <= 10_000)
        }
    }

    /// Issue 10 point 1 (SPEC 8.3 rule 7): a sender that restarted and reused a transfer number for another bundle
    /// of the same fragment count is not told "complete": its fragments are collected as a new transfer.
    @Test func aReusedTransferNumberIsNotAcknowledgedAsTheCompletedOne() throws {
        var g = SplitMix64(seed: 4)
        let old = try Fragmenter.records(bundle: Fixture.randomBytes(600, &g), mtu: 255, transfer: 1, nextHop: ShortID(7))
        let new = try Fragmenter.records(bundle: Fixture.randomBytes(600, &g), mtu: 255, transfer: 1, nextHop: ShortID(7))
        var re = Reassembler()
        var done: [UInt8]? = nil
        for case .fragment(let f) in old { if case .complete(let b, _) = re.add(f, from: Fixture.a.nodeID, now: 0) { done = b } }
        #expect(done != nil)
        // The same fragment again (our ack was lost): acknowledged as complete.
        guard case .fragment(let again) = old[1] else { Issue.record("expected fragments"); return }
        #expect(re.add(again, from: Fixture.a.nodeID, now: 1) == .duplicate(AckEntry(transfer: 1, received: old.count)))
        // Another bundle under the same number and count: collected, and delivered whole.
        var out: [UInt8]? = nil
        for case .fragment(let f) in new {
            #expect(re.conflicts(f, from: Fixture.a.nodeID) == (f.index == 0))
            switch re.add(f, from: Fixture.a.nodeID, now: 2) {
            case .duplicate: Issue.record("fragment \(f.index) of the new bundle acknowledged as the old one")
            case .complete(let b, _): out = b
            default: break
            }
        }
        var expected: [UInt8] = []
        for case .fragment(let f) in new { expected += f.data }
        #expect(out == expected)
    }

    @Test func reassemblyStateSurvivesEncoding() throws {
        var re = Reassembler()
        _ = re.add(FragmentRecord(transfer: 3, index: 1, count: 3, data: [9, 9]), from: Fixture.a.nodeID, now: 5)
        let data = try JSONEncoder().encode(re)
        var back = try JSONDecoder().decode(Reassembler.self, from: data)
        _ = back.add(FragmentRecord(transfer: 3, index: 0, count: 3, data: [1]), from: Fixture.a.nodeID, now: 6)
        let out = back.add(FragmentRecord(transfer: 3, index: 2, count: 3, data: [7]), from: Fixture.a.nodeID, now: 7)
        guard case .complete(let bytes, _) = out else { Issue.record("not complete: \(out)"); return }
        #expect(bytes == [1, 9, 9, 7])
    }

    @Test func mtuBelowTheMinimumIsRefused() {
        #expect(throws: WireError.self) { try Fragmenter.records(bundle: [1, 2, 3], mtu: 40, transfer: 1) }
    }
}

import Foundation
