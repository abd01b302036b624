import ArgumentParser
import CourierTooling
import CourierWire
import Foundation

struct WireBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Bytes on air per message beside Meshtastic and LXMF, compression ratios, encode/decode throughput.")

    @Option(help: "Folder of messages to send (*.jsonl in corpus format, or *.txt, one message a file).")
    var messages = Corpus.defaultDirectory("corpus/bench")
    @Option(help: "Corpus folder whose held-out split measures compression.") var corpus = Corpus.defaultDirectory()
    @Option(help: "Link MTU in bytes (255: one LoRa frame).") var mtu = 255
    @Option(help: "Fragments sent before the receiver acknowledges (one ack packet per window).") var window = 8
    @Option(help: "Seconds spent on each throughput measurement.") var seconds = 2.0
    @Flag(help: "Skip the throughput measurements.") var noThroughput = false
    @Option(help: ArgumentHelp(
        "Also measure bytes on a real serial line: these messages (a folder of *.jsonl) sent at once as direct messages from one relay to another over a tapped pty.",
        discussion: "scripts/licensed-messages.py makes the held-out set of the README's figures (120 messages of 40-400 B from licensed text no one here wrote)."))
    var line: String?
    @Flag(help: "Only the serial-line measurement (--line).") var lineOnly = false
    @Flag(help: "Serial line: do not encrypt end to end (as `relay send --no-encrypt`).") var noEncrypt = false
    @Option(help: "Serial line: baud rate.") var baud = 115_200
    @Option(help: "Serial line: seconds to wait for every delivery and receipt.") var lineTimeout = 600.0
    @Flag(help: "Serial line: relay logs to standard error.") var trace = false
    @Flag(help: "Serial line: open every frame with the network key and print where the bytes went, part by part.") var breakdown = false
    @Option(help: ArgumentHelp(
        "Serial line: relay A trains a federation dictionary on these messages (a folder of *.jsonl: one federation's traffic) and publishes it before the measurement.",
        discussion: "Through the real path: the signed dictionary bundle crosses the line, B takes it in and says it holds it, and A's messages choose it from what B said (its bytes on the line are reported apart). With --configured-dictionary both relays are configured with it as dictionary 2 instead, nothing on the line."))
    var lineDictionary: String?
    @Flag(help: "Serial line: configure both relays with the --line-dictionary dictionary (the session-5 switch) instead of publishing it.") var configuredDictionary = false
    @Option(help: "Serial line: size of the dictionary --line-dictionary trains, bytes.") var dictionarySize = 16_384

    func run() async throws {
        guard self.mtu >= Packet.minimumMTU else { throw ValidationError("--mtu must be at least \(Packet.minimumMTU)") }
        if self.lineOnly && self.line == nil { throw ValidationError("--line-only needs --line FOLDER") }
        if let folder = self.line {
            try await self.onTheLine(folder)
            if self.lineOnly { return }
            print()
        }
        print("Courier wire benchmark: MTU \(self.mtu) B, ack every \(self.window) fragments, zstd level \(Zstd.level), libzstd dictionary 1 (\(CompressionDictionary.courierDefault.bytes.count) B)")
        print()
        try self.compression()
        print()
        try self.airBytes()
        if !self.noThroughput {
            print()
            try self.throughput()
        }
    }

    // MARK: Bytes on a serial line

    func onTheLine(_ folder: String) async throws {
        let msgs = try Corpus.load(directory: folder)
        var m = LineMeasurement(messages: msgs, encrypt: !self.noEncrypt, baud: self.baud, timeout: self.lineTimeout, trace: self.trace)
        m.breakdown = self.breakdown
        if let trainFolder = self.lineDictionary {
            let train = try Corpus.load(directory: trainFolder)
            let overlap = Set(train.map(\.text)).intersection(msgs.map(\.text)).count
            guard overlap == 0 else { throw ValidationError("\(overlap) of the measured messages are also in --line-dictionary \(trainFolder): measure on others") }
            let bytes: [UInt8]
            do { bytes = try DictionaryTrainer.train(train.map(\.utf8), capacity: self.dictionarySize) } catch {
                throw ValidationError("cannot train a dictionary on \(trainFolder): \(error)")
            }
            let shelf = DictionaryShelf()
            do { try shelf.put(id: 2, bytes: bytes) } catch { throw ValidationError("the trained dictionary does not load: \(error)") }
            let mean = msgs.map { Double(BodyCompressor(shelf: shelf).compress($0.utf8, also: [2]).1.count) / Double($0.utf8.count) }.reduce(0, +) / Double(msgs.count)
            let mean1 = msgs.map { Double(BodyCompressor().compress($0.utf8).1.count) / Double($0.utf8.count) }.reduce(0, +) / Double(msgs.count)
            if self.configuredDictionary {
                m.dictionary = CompressionDictionary(id: 2, bytes: bytes)
                print("Federation dictionary: \(bytes.count) B trained on \(train.count) messages (\(train.reduce(0) { $0 + $1.utf8.count }) B) of \((trainFolder as NSString).lastPathComponent), configured in both relays as dictionary 2")
            } else {
                m.publish = bytes
                print("Federation dictionary: \(bytes.count) B trained on \(train.count) messages (\(train.reduce(0) { $0 + $1.utf8.count }) B) of \((trainFolder as NSString).lastPathComponent) by relay A, published to B over the line")
            }
            print(String(format: "  content compressed to %.3f of the text with it (mean per message), %.3f with dictionary 1", mean, mean1))
        }
        let sizes = msgs.map(\.utf8.count)
        let langs = Dictionary(grouping: msgs, by: \.lang).map { "\($0.key) \($0.value.count)" }.sorted().joined(separator: ", ")
        print("Bytes on a serial line: \(msgs.count) direct messages of \(sizes.min() ?? 0)-\(sizes.max() ?? 0) B (\(langs)) from \((folder as NSString).lastPathComponent),")
        print("handed to relay A at once for relay B over a tapped pty at \(self.baud) baud; "
              + (self.noEncrypt ? "not end-to-end encrypted (--no-encrypt)" : "end-to-end encrypted to B (the default)")
              + ". Counted: every frame either way")
        print("(framing included) from the first message until A heard every delivery receipt.")
        let r: LineMeasurement.Result
        do { r = try await m.run() } catch let e as DirewolfBench.BenchFailure { throw ValidationError(e.message) }
        if let p = r.published {
            print(String(format: "  published as dictionary %d: %d B on the line until B said it holds it (%.1f s, not counted below); %d of %d messages compressed with it",
                         p, r.publishLineBytes, r.publishSeconds, r.usedPublished, msgs.count))
        }
        print(String(format: "  text %d B; bundles %d B (%d signed, %d end-to-end encrypted); delivered %d/%d, receipts heard %d in %.1f s",
                     r.textBytes, r.bundleBytes, r.signed, r.encrypted, r.delivered, msgs.count, r.receipted, r.seconds))
        print(String(format: "  on the line: %d B = A->B %d B in %d frames + B->A (acks, receipts) %d B in %d frames",
                     r.lineBytes, r.lineAB, r.framesAB, r.lineBA, r.framesBA))
        print(String(format: "  bytes on the line per byte of text: %.3f (bundles alone %.3f; target with end-to-end encryption <= %.2f)",
                     Double(r.lineBytes) / Double(max(r.textBytes, 1)), Double(r.bundleBytes) / Double(max(r.textBytes, 1)),
                     self.lineDictionary == nil ? 0.85 : 0.70))
        r.breakdown?.print(messages: msgs.count, textBytes: r.textBytes)
        if r.delivered < msgs.count || r.receipted < msgs.count {
            throw ValidationError("only \(r.delivered) of \(msgs.count) delivered and \(r.receipted) receipts heard within \(Int(self.lineTimeout)) s")
        }
    }

    // MARK: Compression on the held-out split

    func compression() throws {
        let held = try Corpus.load(directory: self.corpus).filter { $0.isHeldOut && (40...400).contains($0.utf8.count) }
        let dict = BodyCompressor()
        let plain = BodyCompressor(dictionary: nil)
        let zstdOnly = Zstd()
        print("Compression, held-out split, messages of 40-400 B (never trained on): mean of compressed/original")
        print("  lang   n   with dictionary   zstd alone (raw if smaller)   zstd frame alone")
        var rows: [(String, [CorpusMessage])] = Dictionary(grouping: held, by: \.lang).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        rows.append(("all", held))
        for (lang, ms) in rows {
            func mean(_ f: ([UInt8]) -> Int) -> Double {
                ms.map { Double(f($0.utf8)) / Double($0.utf8.count) }.reduce(0, +) / Double(max(ms.count, 1))
            }
            let d = mean { dict.compress($0).1.count }
            let p = mean { plain.compress($0).1.count }
            let z = mean { zstdOnly.compress($0).count }
            print("  " + lang.padded(5) + String(format: " %3d   %15.3f   %27.3f   %16.3f", ms.count, d, p, z))
        }
        print("  target: with dictionary <= 0.60")
    }

    // MARK: Bytes on air

    struct Cost {
        var bytes = 0
        var packets = 0
        var acks = 0
        var fragments = 0
    }

    /// Everything Courier puts on the air to move `bundle` one hop without loss: data packets (records packed,
    /// sealed) and the acknowledgements the receiver sends. A directed bundle (custody transfer) is acknowledged
    /// once per window of fragments. A flooded bundle (group or everyone) is never positively acknowledged: its
    /// neighbours' rebroadcasts and summaries confirm it, and a receiver missing fragments asks for them with an
    /// ack record after a quiet interval (protocol/SPEC.md, "Acknowledgements"), which a lossless hop never needs.
    static func courierCost(_ bundle: CourierBundle, mtu: Int, window: Int, sealer: PacketSealer, receiver: PacketSealer) throws -> Cost {
        var nextHop: ShortID? = nil
        if case .node(let n) = bundle.destination { nextHop = n }
        let recs = try Fragmenter.records(bundle: bundle.encode(), mtu: mtu, transfer: 300, nextHop: nextHop, wantAck: nextHop != nil)
        var cost = Cost()
        cost.fragments = recs.count
        for p in Packer.pack(recs, mtu: mtu) {
            cost.bytes += sealer.seal(p, counter: 1).count
            cost.packets += 1
        }
        if nextHop != nil {
            let acks = (recs.count + window - 1) / window
            for i in 0..<acks {
                let got = min(recs.count, (i + 1) * window)
                let ack = Record.ack(AckRecord(target: sealer.sender.short, entries: [AckEntry(transfer: 300, received: got)]))
                cost.bytes += receiver.seal([ack], counter: 1).count
                cost.acks += 1
            }
        }
        return cost
    }

    static func destination(kind: String, committee: ShortID) -> (Kind, Destination) {
        switch kind {
        case "alert": return (.alert, .everyone)
        case "aid-request": return (.aidRequest, .group(GroupID(name: "aid")))
        case "aid-offer": return (.aidOffer, .group(GroupID(name: "aid")))
        case "grievance": return (.grievance, .node(committee))
        case "minutes", "notice": return (.minutes, .everyone)
        default: return (.text, .node(committee))
        }
    }

    func airBytes() throws {
        let msgs = try Corpus.load(directory: self.messages)
        let origin = NodeIdentity()
        let committee = NodeIdentity()
        let net = NetworkKey.random()
        let sealer = PacketSealer(networkKey: net, sender: origin.nodeID)
        let receiver = PacketSealer(networkKey: net, sender: committee.nodeID)
        let compressor = BodyCompressor()
        print("Bytes on air for one hop, every overhead counted (packet header 9 B + tag 16 B a packet, record and bundle")
        print("headers, fragment headers, signatures, acks: one per \(self.window) fragments of a directed bundle; flooded")
        print("bundles are confirmed by rebroadcast). Meshtastic: text + 22 B a 232-B packet, no MAC, no ack.")
        print("LXMF: shared/notes formulas with bzip2 run on the text, + 2 B HDLC framing a packet.")
        print("'net' = network-authenticated only; 'default' = alerts and receipts origin-signed (+64 B); 'signed' =")
        print("every bundle origin-signed, as the reference makes them since issue 10 (SPEC 6.8).")
        print()
        print("  message          kind          text  body  pkts acks    net  default  signed  meshtastic   lxmf")
        var tNet = 0, tDef = 0, tAll = 0, tMesh = 0, tLxmf = 0
        var worstVsMesh = 0.0
        var allBelowMesh = true
        for (i, m) in msgs.enumerated() {
            let (kind, dest) = Self.destination(kind: m.kind, committee: committee.nodeID.short)
            func make(sign: Bool) throws -> CourierBundle {
                try CourierBundle.make(
                    kind: kind, destination: dest, content: m.utf8, origin: origin, created: 1_500_000,
                    sequence: UInt32(i), options: BundleOptions(kind: kind, sign: sign), compressor: compressor)
            }
            let netCost = try Self.courierCost(try make(sign: false), mtu: self.mtu, window: self.window, sealer: sealer, receiver: receiver)
            let defBundle = try make(sign: kind.signedByDefault)
            let defCost = try Self.courierCost(defBundle, mtu: self.mtu, window: self.window, sealer: sealer, receiver: receiver)
            let allCost = try Self.courierCost(try make(sign: true), mtu: self.mtu, window: self.window, sealer: sealer, receiver: receiver)
            tAll += allCost.bytes
            let mesh = PeerCosts.meshtastic(textBytes: m.utf8.count)
            let lx = PeerCosts.lxmf(content: m.utf8)
            tNet += netCost.bytes; tDef += defCost.bytes; tMesh += mesh; tLxmf += lx
            if netCost.bytes >= mesh { allBelowMesh = false }
            worstVsMesh = max(worstVsMesh, Double(netCost.bytes) / Double(mesh))
            print("  " + m.id.padded(16) + " " + m.kind.padded(12) + String(format: " %5d %5d %5d %4d %6d %8d %7d %11d %6d",
                         m.utf8.count, defBundle.body.count, defCost.packets, defCost.acks,
                         netCost.bytes, defCost.bytes, allCost.bytes, mesh, lx))
        }
        print("  " + "total".padded(53) + String(format: " %6d %8d %7d %11d %6d", tNet, tDef, tAll, tMesh, tLxmf))
        print()
        print(String(format: "  network mode vs Meshtastic: %.3fx of its total (target <= 0.5x); every message smaller: %@ (worst %.2fx)",
                     Double(tNet) / Double(tMesh), allBelowMesh ? "yes" : "NO", worstVsMesh))
        print(String(format: "  default security vs LXMF:  %.3fx of its total (target <= 0.4x)", Double(tDef) / Double(tLxmf)))
        print(String(format: "  every bundle signed: %+d B (%+.1f%%) over 'net', %.3fx of LXMF's total, %.3fx of Meshtastic's",
                     tAll - tNet, 100 * Double(tAll - tNet) / Double(tNet), Double(tAll) / Double(tLxmf), Double(tAll) / Double(tMesh)))
    }

    // MARK: Throughput

    func throughput() throws {
        let origin = NodeIdentity()
        let net = NetworkKey.random()
        let sealer = PacketSealer(networkKey: net, sender: origin.nodeID)
        let opener = PacketOpener(networkKey: net)
        let compressor = BodyCompressor()
        let known: (ShortID) -> [NodeID] = { $0 == origin.nodeID.short ? [origin.nodeID] : [] }
        let text = Array(String(repeating: "Water distribution for the east quarter moves to Thursday at 7:00. Bring your own containers. ", count: 3).utf8.prefix(200))

        func measure(_ label: String, _ body: () throws -> Void) rethrows {
            var n = 0
            let start = Date()
            while Date().timeIntervalSince(start) < self.seconds {
                for _ in 0..<100 { try body() }
                n += 100
            }
            let rate = Double(n) / Date().timeIntervalSince(start)
            print("  " + label.padded(62) + String(format: " %10.0f /s  (%.1f us each)", rate, 1e6 / rate))
        }
        print("Throughput on one core (one thread):")
        var seq: UInt32 = 0
        var counter: UInt32 = 0
        try measure("encode+decode 200-B message: zstd+dict, AEAD, no signature") {
            seq &+= 1; counter &+= 1
            let b = try CourierBundle.make(
                kind: .text, destination: .everyone, content: text, origin: origin, created: 1_500_000, sequence: seq,
                options: BundleOptions(kind: .text, sign: false), compressor: compressor)
            let bytes = sealer.seal([.bundle(BundleRecord(bundle: b.encode()))], counter: counter)
            let p = try opener.open(bytes, candidates: known)
            guard case .bundle(let r) = p.records[0] else { fatalError("bad record") }
            let back = try CourierBundle(decoding: r.bundle)
            let content = try back.content(compressor: compressor)
            precondition(content.count == text.count)
        }
        let signed = try CourierBundle.make(
            kind: .alert, destination: .everyone, content: text, origin: origin, created: 1_500_000, sequence: 1,
            options: BundleOptions(kind: .alert), compressor: compressor)
        try measure("Ed25519 sign (alerts, receipts)") { _ = try CourierBundle.make(
            kind: .alert, destination: .everyone, content: [1], origin: origin, created: 1, sequence: 1,
            options: BundleOptions(kind: .alert), compressor: BodyCompressor(dictionary: nil)) }
        measure("Ed25519 verify") { precondition(signed.verifySignature(originKeys: origin.publicKeys)) }
        print("  target: encode+decode >= 20,000 /s per core")
    }
}

extension String {
    func padded(_ n: Int) -> String { self.count >= n ? self : self + String(repeating: " ", count: n - self.count) }
}
