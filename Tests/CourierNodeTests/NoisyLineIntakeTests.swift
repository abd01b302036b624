import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// What a next hop does with the copies of one bundle a noisy line brings it: fragments resent after an ack was lost,
/// duplicates of a transfer it completed, the pieces a restart finds in its store. Each copy is acknowledged (the
/// sender stops resending only then), the bundle is delivered once, and nothing of a completed transfer stays in the
/// reassembly table (on a noisy line every lost ack brings a whole transfer again: the table grew by its size each time,
/// for 24 hours; session 16's failed CI run left 16 rows, transfers 28, 36 and 54 with both of their 2 fragments).
@Suite(.timeLimit(.minutes(20))) struct NoisyLineIntakeTests {
    /// A directed bundle from `p` to the harness' node, cut into 2 fragments under transfer `transfer`.
    static func twoFragments(_ h: EngineHarness, from p: EngineHarness.Peer, transfer: UInt32) throws -> (CourierBundle, [FragmentRecord]) {
        let b = try p.bundle(.text, to: .node(h.me.nodeID.short), "Message 28 of 60 from the hill post: water and tents, water and tents.", at: h.now)
        let bytes = b.encode()
        var mtu = 255
        var records = try Fragmenter.records(bundle: bytes, mtu: mtu, transfer: transfer, nextHop: h.me.nodeID.short)
        while records.count < 2 {
            mtu -= 8
            records = try Fragmenter.records(bundle: bytes, mtu: mtu, transfer: transfer, nextHop: h.me.nodeID.short)
        }
        let fragments = records.compactMap { r -> FragmentRecord? in if case .fragment(let f) = r { f } else { nil } }
        try #require(fragments.count == 2)
        return (b, fragments)
    }

    /// The acks the node sent `p` for `transfer` that say the whole transfer arrived.
    static func wholeAcks(_ out: EngineHarness.Out, to p: EngineHarness.Peer, transfer: UInt32, count: Int) -> Int {
        out.acks.filter { $0.target == p.short }.flatMap(\.entries).filter { $0.transfer == transfer && $0.received == count }.count
    }

    @Test func aTransferResentAfterItsAckWasLostIsAcknowledgedAgainAndLeavesNoPiecesInTheStore() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (b, fragments) = try Self.twoFragments(h, from: p, transfer: 28)
        var out = h.receive(from: p, [.fragment(fragments[0])])
        #expect(try h.store.savedFragments().count == 1, "a fragment of a transfer being collected is kept (it survives a restart)")
        out.delivered += h.receive(from: p, [.fragment(fragments[1])]).delivered
        out.packets += h.run(for: 10).packets
        #expect(out.delivered.map(\.id) == [b.id])
        #expect(Self.wholeAcks(out, to: p, transfer: 28, count: 2) >= 1, "the complete transfer is acknowledged")
        #expect(try h.store.savedFragments().isEmpty, "the pieces of a completed transfer are dropped")

        // The ack was lost on the line: the sender sends the whole transfer again, three times.
        for _ in 0..<3 {
            var again = h.receive(from: p, [.fragment(fragments[0])])
            again.packets += h.receive(from: p, [.fragment(fragments[1])]).packets
            again.packets += h.run(for: 10).packets
            #expect(again.delivered.isEmpty, "delivered once")
            #expect(Self.wholeAcks(again, to: p, transfer: 28, count: 2) >= 1, "each resend is acknowledged again: \(again.acks)")
            let left = try h.store.savedFragments().map { ($0.fragment.transfer, $0.fragment.index) }
            #expect(left.isEmpty, "the reassembly table keeps nothing of a completed transfer, resent or not: \(left)")
        }
    }

    /// Pieces of a complete transfer left in the store (kept by the previous version for every duplicate, or not
    /// dropped for a full disk) are not taken as a bundle at the next start and never stand for one that was not
    /// stored: the resend of the last piece completes it, the bundle is delivered and acknowledged, the rows go.
    @Test func aCompleteTransferFoundInTheStoreAtStartWaitsForTheResendOfItsLastPiece() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let (b, fragments) = try Self.twoFragments(h, from: p, transfer: 36)
        // As a crash between keeping the second piece and storing the bundle would leave them.
        for f in fragments { try h.store.saveFragment(f, from: p.identity.nodeID, now: Int64(h.now)) }
        // The relay starts again on the same store.
        let node = try Node(config: NodeConfig(identity: h.me, networkKey: h.key, name: "hill"), store: h.store,
                            links: [LinkInfo(name: h.link, properties: LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none))],
                            now: h.now, seed: 6)
        _ = node.linkUp(h.link, now: h.now)
        #expect(h.read(node.tick(now: h.now + 1)).delivered.isEmpty)
        // The sender never had the ack for the last piece: it sends that one again.
        h.now += 2
        var out = h.read(node.receive(p.seal([.fragment(fragments[1])]), on: h.link, now: h.now))
        for s in 1...10 { out.packets += h.read(node.tick(now: h.now + Double(s))).packets }
        #expect(out.delivered.map(\.id) == [b.id], "the bundle is delivered from the resend")
        #expect(Self.wholeAcks(out, to: p, transfer: 36, count: 2) >= 1, "and acknowledged: \(out.acks)")
        #expect(try h.store.savedFragments().isEmpty)
    }

    /// A line that loses most of what crosses it (the neighbour heard all along, nothing acknowledged): transfers cut
    /// whole for the clean line are cut again, after `recutAfter` time-outs, into fragments whose packets fit the size
    /// the line now takes (`fragmentMTU`, 96 bytes here). A whole bundle whose record fits that size but whose packet
    /// (25 bytes more) does not is cut again too: before, it went whole at every retry (session 16's `.23`, a 72-byte
    /// bundle in a 103-byte packet, sent 16 times).
    @Test func aWholeBundleWhosePacketIsOverTheNoisyLineSizeIsCutAgain() throws {
        let h = try EngineHarness(properties: BundleRunEngineTests.serial)
        let (p, _) = h.addPeer(capabilities: 1 | AnnounceRecord.hello)
        h.run(for: 5)
        let texts = (0..<6).map { "Tent \($0)." }
        var ids: [BundleID] = []
        for t in texts {
            let (id, out) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array(t.utf8), now: h.now)
            ids.append(id)
            _ = h.read(out)
        }
        for id in ids {
            let size = try #require(try h.store.bundle(id)).data.count
            // Its record (header, next hop, transfer number) fits 96 bytes alone; its packet does not.
            try #require(Packet.overhead + 1 + 4 + 1 + size > 96 && 1 + 4 + 1 + size <= 96, "bundle of \(size) bytes")
        }
        // The neighbour keeps talking (an ack for nothing of ours, once a second) and never acknowledges our bundles:
        // what we send times out with the neighbour heard, so it counts against the line.
        var out = EngineHarness.Out()
        for _ in 0..<400 {
            out.packets += h.receive(from: p, [.ack(AckRecord(target: h.me.nodeID.short, entries: [AckEntry(transfer: 9_999, received: 1)]))]).packets
            out.packets += h.run(for: 1).packets
        }
        let toPeer = out.fragments.filter { $0.nextHop == p.short }
        #expect(!toPeer.isEmpty, "no bundle was cut again for the noisy line: \(out.bundles.count) whole bundle records sent")
        // Every fragment's packet fits the noisy-line size.
        for f in toPeer {
            #expect(Packet.overhead + Record.fragment(f).encodedSize(last: true) <= 96, "a fragment of \(f.data.count) bytes")
        }
    }
}
