import CourierMedium
import CourierNode
import CourierStore
import CourierWire
import Foundation

/// One engine on one link (in-memory store), and neighbours played by hand: each seals packets as a real member
/// would; what the engine sends is opened as the neighbours would read it. No simulator, no clock but `now`.
final class EngineHarness {
    let key = NetworkKey.random()
    let me = NodeIdentity()
    let node: Node
    let store: Store
    let link: String
    var now = 1_790_000_000.0
    var peers: [Peer] = []

    final class Peer {
        let identity = NodeIdentity()
        let sealer: PacketSealer
        var counter: UInt32 = 0
        var sequence: UInt32 = 0
        init(key: NetworkKey) { self.sealer = PacketSealer(networkKey: key, sender: self.identity.nodeID) }
        var short: ShortID { self.identity.nodeID.short }

        func seal(_ records: [Record], announce: Bool = false) -> [UInt8] {
            self.counter += 1
            return self.sealer.seal(records, counter: self.counter, announceSalt: announce ? self.counter : nil)
        }

        /// A bundle made by this peer (origin-signed).
        func bundle(_ kind: Kind, to: Destination, _ text: String, at now: Double, signed: Bool = true) throws -> CourierBundle {
            self.sequence += 1
            var o = BundleOptions(kind: kind)
            o.sign = signed
            return try CourierBundle.make(
                kind: kind, destination: to, content: Array(text.utf8), origin: self.identity,
                created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: self.sequence, options: o,
                compressor: BodyCompressor())
        }
    }

    /// The engine's packets as the neighbours read them, with the other outputs.
    struct Out {
        var packets: [[Record]] = []
        /// Why each packet sent that did not open failed (none should: every receiver would refuse it).
        var unreadable: [String] = []
        var delivered: [InboxMessage] = []
        var events: [NodeEvent] = []
        var records: [Record] { self.packets.flatMap { $0 } }
        var fragments: [FragmentRecord] { self.records.compactMap { if case .fragment(let f) = $0 { f } else { nil } } }
        var acks: [AckRecord] { self.records.compactMap { if case .ack(let a) = $0 { a } else { nil } } }
        var bundles: [BundleRecord] { self.records.compactMap { if case .bundle(let b) = $0 { b } else { nil } } }
        /// The bundle records of the packets in the ordinary form (only there can a record be compact or in a run): a
        /// packet that carries a part of our announce goes in announce form (SPEC 4.1).
        var bundlesInOrdinaryPackets: [BundleRecord] {
            self.packets.filter { !$0.contains { if case .announce = $0 { true } else { false } } }.flatMap { $0 }
                .compactMap { if case .bundle(let b) = $0 { b } else { nil } }
        }
    }

    /// A LoRa-like half-duplex link by default; `properties` for another.
    init(properties: LinkProperties = LinkProperties(mtu: 255, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none),
         dutyCycle: Double? = nil, configure: (inout NodeConfig) -> Void = { _ in }) throws {
        var sc = Store.Configuration()
        sc.inMemory = true
        self.store = try Store(path: ":memory:", configuration: sc)
        var c = NodeConfig(identity: self.me, networkKey: self.key, name: "hill")
        configure(&c)
        self.link = "radio"
        self.node = try Node(config: c, store: self.store, links: [LinkInfo(name: "radio", properties: properties, dutyCycle: dutyCycle)],
                             now: self.now, seed: 5)
        _ = self.node.linkUp("radio", now: self.now)
    }

    func read(_ outputs: [NodeOutput]) -> Out {
        let opener = PacketOpener(networkKey: self.key)
        var o = Out()
        for x in outputs {
            switch x {
            case .send(_, let bytes, _):
                do {
                    let p = try opener.open(bytes, candidates: { $0 == self.me.nodeID.short ? [self.me.nodeID] : [] })
                    o.packets.append(p.records)
                } catch {
                    o.unreadable.append("\(error)")
                }
            case .delivered(let m): o.delivered.append(m)
            case .event(let e): o.events.append(e)
            }
        }
        return o
    }

    /// A neighbour that has announced itself (its keys known, fresh on the link).
    func addPeer() -> Peer { self.addPeer(capabilities: 1).peer }

    /// A neighbour that has announced itself with `capabilities`, and what the engine sent back at once.
    func addPeer(capabilities: UInt8) -> (peer: Peer, out: Out) {
        let p = Peer(key: self.key)
        self.peers.append(p)
        let k = p.identity.publicKeys
        let out = self.receive(from: p, [.announce(AnnounceRecord(capabilities: capabilities, signingKey: k.signing, agreementKey: k.agreement))], announce: true)
        return (p, out)
    }

    @discardableResult
    func receive(from p: Peer, _ records: [Record], announce: Bool = false) -> Out {
        self.receive(bytes: p.seal(records, announce: announce))
    }

    @discardableResult
    func receive(bytes: [UInt8]) -> Out {
        self.now += 0.01
        return self.read(self.node.receive(bytes, on: self.link, now: self.now))
    }

    /// Ticks at every wake-up the engine asks for until `seconds` have passed.
    @discardableResult
    func run(for seconds: Double) -> Out {
        let end = self.now + seconds
        var all = Out()
        while true {
            let next = max(self.now + 0.001, self.node.nextWakeup(now: self.now))
            guard next <= end else { break }
            self.now = next
            let o = self.read(self.node.tick(now: self.now))
            all.packets += o.packets
            all.delivered += o.delivered
            all.events += o.events
        }
        self.now = end
        return all
    }
}
