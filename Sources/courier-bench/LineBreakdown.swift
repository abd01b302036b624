import CourierLinks
import CourierWire

/// Where the bytes on the line went (`courier-bench wire --line DIR --breakdown`): every frame of the measurement
/// opened with the network key and taken apart, field by field, summed over the run.
struct LineBreakdown {
    /// Bytes by part, in the order printed.
    var parts: [(name: String, bytes: Int)] = []
    var packetsAB = 0, packetsBA = 0
    var bundlesAB = 0
    var compactAB = 0
    var runAB = 0
    var packetsWithBundles = 0
    var unreadable = 0
    var cutAB = 0
    /// Heads of cut bundles (SPEC 5.12) waiting for their rest, by transfer.
    var heads: [UInt32: RunPiece] = [:]

    mutating func add(_ name: String, _ n: Int) {
        guard n > 0 else { return }
        if let i = self.parts.firstIndex(where: { $0.name == name }) { self.parts[i].bytes += n } else { self.parts.append((name, n)) }
    }

    /// Takes apart `frames` (packets as on the line before framing), `encoded` their framed sizes.
    init(frames: [FrameTap.Frame], framed: (FrameTap.Frame) -> Int, key: NetworkKey, nodes: [NodeID]) {
        let opener = PacketOpener(networkKey: key)
        for f in frames {
            let dir = f.from == .a ? "A->B" : "B->A"
            if f.from == .a { self.packetsAB += 1 } else { self.packetsBA += 1 }
            self.add("\(dir) serial framing (COBS, CRC-32C, delimiter)", framed(f) - f.packet.count)
            let packet: Packet
            do { packet = try opener.open(f.packet, candidates: { s in nodes.filter { $0.short == s } }) } catch {
                self.unreadable += 1
                self.add("\(dir) packets that did not open", f.packet.count)
                continue
            }
            self.add("\(dir) packet header and tag (\(packet.header.size) + 16 a packet)", packet.header.size + Packet.tagSize)
            var bundles = 0
            // Taken apart as written: own bundles to a neighbour that reads runs go several to a record (type 8).
            let units = Record.units(packet.records)
            for (i, u) in units.enumerated() {
                let size = u.size(last: i == units.count - 1)
                let framing = size - u.body.count
                let r = packet.records[u.records.lowerBound]
                if u.type == BundleRun.type {
                    let run = packet.records[u.records].compactMap { r -> BundleRecord? in
                        if case .bundle(let b) = r { return b }
                        return nil
                    }
                    let forms = BundleRun.forms(run)
                    let pieces = packet.records[u.records].compactMap { r -> RunPiece? in
                        if case .piece(let p) = r { return p }
                        return nil
                    }
                    self.add("\(dir) record header and length (bundle records)", framing)
                    self.add("\(dir) bundle record: next hop, transfer number (a run: once, then a step and a length a bundle)",
                             u.body.count - forms.reduce(0) { $0 + $1.bytes.count } - pieces.reduce(0) { $0 + $1.data.count })
                    for p in pieces {
                        if p.isHead { self.heads[p.transfer] = p; continue }
                        guard let h = self.heads.removeValue(forKey: p.transfer), let from = nodes.first(where: { $0.short == packet.header.sender }),
                              let joined = try? RunPiece.join(head: h, rest: p, origin: from.short) else {
                            self.add("\(dir) pieces of cut bundles that did not join", p.data.count)
                            continue
                        }
                        bundles += 1
                        if f.from == .a { self.runAB += 1; self.cutAB += 1 }
                        self.bundle(joined, onWire: h.data.count + p.data.count, form: " (run form)", dir: dir)
                    }
                    for (b, form) in zip(run, forms) {
                        bundles += 1
                        if f.from == .a { self.runAB += 1 }
                        self.bundle(b.bundle, onWire: form.bytes.count, form: " (run form)", dir: dir)
                    }
                    continue
                }
                switch r {
                case .bundle(let b):
                    bundles += 1
                    let onWire = (b.compactBundle() ?? b.bundle).count
                    self.add("\(dir) record header and length (bundle records)", framing)
                    self.add("\(dir) bundle record: next hop, transfer number (a run: once, then a step and a length a bundle)", u.body.count - onWire)
                    if b.compactBundle() != nil { self.compactAB += f.from == .a ? 1 : 0 }
                    self.bundle(b.bundle, onWire: onWire, form: b.compactBundle() != nil ? " (compact form)" : "", dir: dir)
                case .fragment:
                    self.add("\(dir) fragment records (whole)", size)
                case .ack: self.add("\(dir) acks", size)
                case .announce: self.add("\(dir) announces", size)
                case .summary: self.add("\(dir) summaries", size)
                case .dictionaries: self.add("\(dir) dictionaries records", size)
                case .receiptParts: self.add("\(dir) receipt parts", size)
                case .piece: break  // in a run (above)
                case .neighbours: self.add("\(dir) neighbour lists", size)
                case .copyBudgets: self.add("\(dir) copy budgets", size)
                case .unknown: self.add("\(dir) other records", size)
                }
            }
            if f.from == .a { self.bundlesAB += bundles }
            if bundles > 0, f.from == .a { self.packetsWithBundles += 1 }
        }
    }

    /// One bundle's parts: `onWire` bytes as written (whole, compact or run form).
    mutating func bundle(_ bytes: [UInt8], onWire: Int, form: String, dir: String) {
        guard let bundle = try? CourierBundle(decoding: bytes) else {
            self.add("\(dir) bundles that did not decode", onWire)
            return
        }
        let label = bundle.kind == .text ? "message" : "\(bundle.kind)"
        let tag = bundle.isEncrypted ? 16 : 0
        let sig = bundle.signature?.count ?? 0
        self.add("\(dir) \(label) bundle header" + form, onWire - bundle.body.count - sig)
        self.add("\(dir) \(label) end-to-end tag", tag)
        self.add("\(dir) \(label) signature", sig)
        self.add("\(dir) \(label) content (compressed)", bundle.body.count - tag)
    }

    func print(messages: Int, textBytes: Int) {
        let total = self.parts.reduce(0) { $0 + $1.bytes }
        Swift.print("  where the bytes went (--breakdown), per message of \(messages) and in all:")
        for p in self.parts {
            Swift.print("    " + String(format: "%7.1f B %7d B  ", Double(p.bytes) / Double(max(messages, 1)), p.bytes) + p.name)
        }
        Swift.print(String(format: "    %7.1f B %7d B  total on the line (text: %.1f B a message)", Double(total) / Double(max(messages, 1)), total,
                           Double(textBytes) / Double(max(messages, 1))))
        Swift.print(String(format: "  A->B: %d packets carried %d bundles (%.2f a packet; %d in the compact form, %d in runs); B->A: %d packets%@",
                           self.packetsAB, self.bundlesAB, Double(self.bundlesAB) / Double(max(self.packetsWithBundles, 1)),
                           self.compactAB, self.runAB, self.packetsBA, self.unreadable > 0 ? "; \(self.unreadable) did not open" : ""))
    }
}
