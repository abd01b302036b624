import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Testing

/// Two engines wired back to back on one link of a given MTU (no airtime, 5 ms latency), driven by their own
/// wake-up times. Bundles go from `a` to `b`; what `b` delivers is kept.
final class BackToBack {
    let a: Node
    let b: Node
    let ida = NodeIdentity()
    let idb = NodeIdentity()
    var now = 1_790_000_000.0
    var inflight: [(at: Double, to: Int, bytes: [UInt8])] = []
    var delivered: [BundleID: [UInt8]] = [:]
    var heard = 0

    init(mtu: Int) throws {
        let key = NetworkKey.random()
        let props = LinkProperties(mtu: mtu, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none)
        func store() throws -> Store {
            var sc = Store.Configuration()
            sc.inMemory = true
            return try Store(path: ":memory:", configuration: sc)
        }
        self.a = try Node(config: NodeConfig(identity: self.ida, networkKey: key, name: "alpha"), store: store(),
                          links: [LinkInfo(name: "l", properties: props)], now: self.now, seed: 1)
        self.b = try Node(config: NodeConfig(identity: self.idb, networkKey: key, name: "bravo"), store: store(),
                          links: [LinkInfo(name: "l", properties: props)], now: self.now, seed: 2)
        self.handle(0, self.a.linkUp("l", now: self.now))
        self.handle(1, self.b.linkUp("l", now: self.now))
        #expect(self.run(for: 60) { self.heard >= 2 }, "the two nodes did not hear each other")
    }

    func handle(_ i: Int, _ outputs: [NodeOutput]) {
        for o in outputs {
            switch o {
            case .send(_, let packet, _): self.inflight.append((self.now + 0.005, 1 - i, packet))
            case .delivered(let m) where i == 1: self.delivered[m.id] = m.content
            case .event(.neighbourHeard): self.heard += 1
            default: break
            }
        }
    }

    /// Runs until `done` or `seconds` of simulated time (or a bounded number of steps: an engine that keeps asking
    /// to wake at once without sending anything is stuck).
    func run(for seconds: Double, until done: () -> Bool) -> Bool {
        let end = self.now + seconds
        var steps = 0
        while !done() {
            steps += 1
            let next = min(self.inflight.map(\.at).min() ?? .infinity, self.a.nextWakeup(now: self.now), self.b.nextWakeup(now: self.now))
            guard next <= end, steps < 200_000 else { return false }
            // As the runtime does: at least 5 ms between wake-ups.
            self.now = max(self.now + 0.005, next)
            let due = self.inflight.filter { $0.at <= self.now }
            self.inflight.removeAll { $0.at <= self.now }
            for p in due { self.handle(p.to, (p.to == 0 ? self.a : self.b).receive(p.bytes, on: "l", now: self.now)) }
            self.handle(0, self.a.tick(now: self.now))
            self.handle(1, self.b.tick(now: self.now))
        }
        return true
    }

    /// Sends one message per content length (random bytes, so nothing compresses and the bundle grows by one
    /// byte per byte of content) and returns the encoded bundle sizes that did not arrive intact.
    func send(lengths: [Int], directed: Bool, seconds: Double = 600) throws -> [Int] {
        var rng = SplitMix64(seed: UInt64(lengths.first ?? 0))
        var sent: [(BundleID, [UInt8], Int)] = []
        for n in lengths {
            let content = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let (id, out) = try self.a.submit(kind: .text, destination: directed ? .node(self.idb.nodeID.short) : .everyone,
                                              content: content, now: self.now)
            self.handle(0, out)
            let size = try #require(try self.a.store.bundle(id)).data.count
            sent.append((id, content, size))
        }
        _ = self.run(for: seconds) { sent.allSatisfy { self.delivered[$0.0] != nil } }
        return sent.filter { self.delivered[$0.0] != $0.1 }.map(\.2)
    }
}

/// SPEC 5.1, 5.9, 8.1: every record the fragmenter makes fits a packet of its own, and the engine sends it. Before,
/// the engine counted a length prefix on a packet's last record: records within 1-2 bytes of the MTU (bundles of
/// 223-224 B directed, 228-229 B flooded at MTU 255; fragments of 443 and 663-665 B; nearly every bundle over
/// ~18 KB) were queued and never sent.
@Suite struct PackingTests {
    static let mtus = [64, 233, 255, 16_384]

    /// Every bundle size from 1 B to the limit, on each MTU, directed and flooded: the plan's records each fit a
    /// packet of their own by the rule the engine packs by (the next test seals them).
    @Test func everyBundleSizeFitsEveryMTU() throws {
        let buffer = [UInt8](repeating: 0xA5, count: 70_000)
        var bad: [String] = []
        for mtu in Self.mtus {
            for directed in [true, false] {
                let hop: ShortID? = directed ? ShortID(0x0102_0304) : nil
                // Transfer numbers above 127 take two varint bytes (the engine uses up to 0x3FFF).
                for transfer: UInt32 in [1, 0x3FFF] {
                    for n in 1...CourierBundle.maxEncodedSize {
                        let (count, size) = try Fragmenter.plan(bundleSize: n, mtu: mtu, transfer: transfer, nextHop: hop)
                        var records: [Record] = []
                        if count == 1 {
                            records = [.bundle(BundleRecord(nextHop: hop, transfer: directed ? transfer : nil, bundle: Array(buffer[0..<n])))]
                        } else {
                            #expect(size * count >= n && size * (count - 1) < n)
                            // The largest records: the first (full size), those around the index varint growing a
                            // byte, and the last two.
                            for i in Set([0, 127, 128, count - 2, count - 1]) where i >= 0 && i < count {
                                let len = min(size, n - i * size)
                                if len <= 0 { bad.append("mtu \(mtu) size \(n): fragment \(i) of \(count) is empty"); continue }
                                records.append(.fragment(FragmentRecord(nextHop: hop, transfer: transfer, index: i, count: count,
                                                                        data: Array(buffer[0..<len]))))
                            }
                        }
                        for r in records where !Packet.fits(r, used: Packet.overhead, mtu: mtu) {
                            bad.append("mtu \(mtu) \(directed ? "directed" : "flooded") size \(n) transfer \(transfer)")
                        }
                    }
                }
            }
        }
        #expect(bad.isEmpty, "\(bad.count) records do not fit: \(bad.prefix(5))")
    }

    /// Sampled sizes through the real fragmenter, packer, sealer and opener (every size up to 1,200 B, then every
    /// 2,039th to the limit), on each MTU: each packet at most the MTU, the fragments in order rebuild the bundle.
    @Test func fragmentsSealOpenAndRebuildIntact() throws {
        let key = NetworkKey.random()
        let me = NodeIdentity()
        let sealer = PacketSealer(networkKey: key, sender: me.nodeID)
        let opener = PacketOpener(networkKey: key)
        var rng = SplitMix64(seed: 5)
        let source = (0..<CourierBundle.maxEncodedSize).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var counter: UInt32 = 0
        var bad: [String] = []
        let sizes = Array(1...1_200) + Array(stride(from: 1_201, to: CourierBundle.maxEncodedSize, by: 2_039)) + [CourierBundle.maxEncodedSize]
        for mtu in Self.mtus {
            for (t, n) in sizes.enumerated() {
                let bundle = Array(source[0..<n])
                let records = try Fragmenter.records(bundle: bundle, mtu: mtu, transfer: UInt32(t % 0x3FFF + 1), nextHop: me.nodeID.short)
                let packets = Packer.pack(records, mtu: mtu)
                if packets.count != records.count { bad.append("mtu \(mtu) size \(n): records shared a packet") }
                var got: [UInt8] = []
                for p in packets {
                    counter += 1
                    let bytes = sealer.seal(p, counter: counter)
                    if bytes.count > mtu { bad.append("mtu \(mtu) size \(n): packet of \(bytes.count) B") }
                    for r in try opener.open(bytes, candidates: { _ in [me.nodeID] }).records {
                        switch r {
                        case .bundle(let b): got += b.bundle
                        case .fragment(let f):
                            if f.count != records.count || f.index * (n / f.count) > got.count { bad.append("mtu \(mtu) size \(n): fragment \(f.index)/\(f.count)") }
                            got += f.data
                        default: break
                        }
                    }
                }
                if got != bundle { bad.append("mtu \(mtu) size \(n): not rebuilt") }
            }
        }
        #expect(bad.isEmpty, "\(bad.count) failures: \(bad.prefix(5))")
    }

    /// Two engines back to back at MTU 255, directed and flooded: every message size from 1 B to 1,200 B (one to
    /// six packets' worth) arrives intact. Before: bundles of 223-224 B directed, 228-229 B flooded and two or three
    /// fragments filling their packets never left.
    @Test(arguments: [true, false])
    func everyMessageSizeTo1200BCrossesTwoEngines(directed: Bool) throws {
        let pair = try BackToBack(mtu: 255)
        var failed: [Int] = []
        for range in stride(from: 1, through: 1_200, by: 100).map({ $0...($0 + 99) }) {
            failed += try pair.send(lengths: Array(range), directed: directed)
        }
        #expect(failed.isEmpty, "\(directed ? "directed" : "flooded"): bundles of \(failed) B never arrived")
    }

    /// Large messages, to the limit: before, nearly every bundle over ~18 KB never left.
    @Test func largeMessagesCrossTwoEngines() throws {
        let lengths = [17_000, 18_432, 20_000, 30_001, 45_000, 60_000, CourierBundle.maxContentSize - 200]
        for directed in [true, false] {
            let pair = try BackToBack(mtu: 255)
            let failed = try pair.send(lengths: lengths, directed: directed, seconds: 3_600)
            #expect(failed.isEmpty, "\(directed ? "directed" : "flooded"): bundles of \(failed) B never arrived")
        }
    }
}
