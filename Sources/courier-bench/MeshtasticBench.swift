import ArgumentParser
import CourierLinks
import CourierTooling
import CourierWire
import Foundation

/// Bytes and airtime on air for the five benchmark messages (corpus/bench/en.jsonl) moved one hop: by Courier over
/// a Meshtastic device (each Courier packet as a PRIVATE_APP broadcast, the device's radio header and protobuf
/// around it), the same texts as Meshtastic channel text messages, and Courier over an RNode. Computed from the
/// packets Courier's wire layer builds and the LoRa time-on-air formula; no radio.
struct MeshtasticBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshtastic",
        abstract: "The five benchmark messages over a Meshtastic device beside Meshtastic text messages and RNode: bytes and airtime on air.")

    @Option(help: "The messages, one JSON object a line (default: corpus/bench/en.jsonl).")
    var messages = Corpus.defaultDirectory("corpus/bench/en.jsonl")
    @Option(help: "Meshtastic modem preset number (0 LONG_FAST, 4 MEDIUM_FAST, 6 SHORT_FAST, ...).") var preset: UInt32 = 0
    @Option(help: "Fragments sent before the receiver acknowledges (one ack packet per window).") var window = 8

    /// Radio header (16) + Data.portnum + the payload's tag and length + Data.bitfield (2) around a payload.
    static func meshtasticOnAir(payload n: Int, portnum: Int) -> Int {
        let portBytes = portnum < 128 ? 2 : 3
        let lengthBytes = n < 128 ? 2 : 3
        return 16 + portBytes + lengthBytes + n + 2
    }

    /// Every packet Courier sends to move the bundle one hop (data packets, then the receiver's acks), sizes in bytes.
    static func packets(_ bundle: CourierBundle, mtu: Int, window: Int, sealer: PacketSealer, receiver: PacketSealer) throws -> [Int] {
        var nextHop: ShortID? = nil
        if case .node(let n) = bundle.destination { nextHop = n }
        let recs = try Fragmenter.records(bundle: bundle.encode(), mtu: mtu, transfer: 300, nextHop: nextHop, wantAck: nextHop != nil)
        var sizes = Packer.pack(recs, mtu: mtu).map { sealer.seal($0, counter: 1).count }
        if nextHop != nil {
            let acks = (recs.count + window - 1) / window
            for i in 0..<acks {
                let got = min(recs.count, (i + 1) * window)
                let ack = Record.ack(AckRecord(target: sealer.sender.short, entries: [AckEntry(transfer: 300, received: got)]))
                sizes.append(receiver.seal([ack], counter: 1).count)
            }
        }
        return sizes
    }

    func run() throws {
        guard let (presetName, lora) = Meshtastic.preset(self.preset) else { throw ValidationError("unknown preset \(self.preset): use 0-9") }
        let msgs = try DirewolfBench.loadMessages(self.messages)
        let origin = NodeIdentity()
        let committee = NodeIdentity()
        let net = NetworkKey.random()
        let sealer = PacketSealer(networkKey: net, sender: origin.nodeID)
        let receiver = PacketSealer(networkKey: net, sender: committee.nodeID)
        let compressor = BodyCompressor()
        let rnode = RNode.Radio().lora
        let mtu = Meshtastic.broadcastPayloadLimit
        print("One hop, every packet counted (Courier: data packets and acks, one ack per \(self.window) fragments of a directed bundle;")
        print("alerts origin-signed, as `relay send` does). Airtime: LoRa time on air (Semtech formula).")
        print("  Courier over Meshtastic: MTU \(mtu); each packet + 16 B radio header + 8 B of Data protobuf (PRIVATE_APP, bitfield);")
        print("    \(presetName) (SF\(lora.spreadingFactor), \(lora.bandwidthHz / 1000) kHz, CR 4/\(lora.codingRate), preamble 16).")
        print("  Meshtastic text: the text as one TEXT_MESSAGE_APP packet, same header and preset; over 231 B it cannot be sent.")
        print("  Courier over RNode: MTU 254, + 1 B RNode header; Courier's RNode default SF\(rnode.spreadingFactor), \(rnode.bandwidthHz / 1000) kHz, CR 4/\(rnode.codingRate), preamble \(rnode.preambleSymbols);")
        print("    and at \(presetName)'s modulation, for the bytes alone.")
        print()
        print("  message       kind          text | Courier/Meshtastic pkts  bytes  airtime | Meshtastic text  bytes  airtime | Courier/RNode pkts  bytes  airtime  (at \(presetName))")
        var tot = (cmB: 0, cmT: 0.0, mtB: 0, mtT: 0.0, mtN: 0, rnB: 0, rnT: 0.0, rnLF: 0.0)
        for (i, m) in msgs.enumerated() {
            let (kind, dest) = WireBench.destination(kind: m.kind, committee: committee.nodeID.short)
            func bundle() throws -> CourierBundle {
                try CourierBundle.make(kind: kind, destination: dest, content: Array(m.text.utf8), origin: origin, created: 1_500_000,
                                       sequence: UInt32(i), options: BundleOptions(kind: kind, sign: kind.signedByDefault), compressor: compressor)
            }
            let b = try bundle()
            let overMesh = try Self.packets(b, mtu: mtu, window: self.window, sealer: sealer, receiver: receiver)
                .map { Self.meshtasticOnAir(payload: $0, portnum: 256) }
            let cmB = overMesh.reduce(0, +)
            let cmT = overMesh.reduce(0.0) { $0 + lora.timeOnAir(payload: $1) }
            let overRNode = try Self.packets(b, mtu: 254, window: self.window, sealer: sealer, receiver: receiver).map { $0 + 1 }
            let rnB = overRNode.reduce(0, +)
            let rnT = overRNode.reduce(0.0) { $0 + rnode.timeOnAir(payload: $1) }
            let rnLF = overRNode.reduce(0.0) { $0 + lora.timeOnAir(payload: $1) }
            let text = m.text.utf8.count
            var textColumn = "cannot (\(text) B > 231)".padded(24)
            if text <= mtu {
                let onAir = Self.meshtasticOnAir(payload: text, portnum: 1)
                let t = lora.timeOnAir(payload: onAir)
                textColumn = String(format: "1 packet %5d %7.2f s", onAir, t)
                tot.mtB += onAir
                tot.mtT += t
                tot.mtN += 1
            }
            tot.cmB += cmB; tot.cmT += cmT; tot.rnB += rnB; tot.rnT += rnT; tot.rnLF += rnLF
            print("  " + m.id.padded(13) + " " + m.kind.padded(12) + String(format: " %5d | %22d %6d %7.2f s | ", text, overMesh.count, cmB, cmT)
                  + textColumn + String(format: " | %18d %6d %7.2f s  (%.2f s)", overRNode.count, rnB, rnT, rnLF))
        }
        print(String(format: "  total %59d %7.2f s | %d of %d sent %4d %7.2f s | %25d %7.2f s  (%.2f s)",
                     tot.cmB, tot.cmT, tot.mtN, msgs.count, tot.mtB, tot.mtT, tot.rnB, tot.rnT, tot.rnLF))
    }
}
