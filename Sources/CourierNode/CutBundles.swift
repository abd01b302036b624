import CourierWire

/// Cut bundles (SPEC 5.12): a packet is filled with the head of a bundle that does not fit whole; its rest goes first
/// in the next packet on the link. The receiver keeps the head until the rest comes, joins them and takes the bundle
/// as from any run, acknowledging it only then. A lost piece costs a resend of the whole bundle (the sender's
/// retransmission timeout), never the bundle.
extension Node {
    /// The rest of a bundle cut at the end of a packet, to go first in the next one on the link.
    struct PendingRest {
        var key: TransferKey
        var piece: RunPiece
    }

    /// A head received, waiting for its rest.
    struct RunHeadKey: Hashable {
        var from: NodeID
        var transfer: UInt32
    }

    struct RunHead {
        var piece: RunPiece
        var at: Double
    }

    /// A head shorter than this is not worth the cut (the rest and the head's length cost a few bytes).
    static let minCutHead = 16
    /// Heads kept waiting for their rest, at most (the oldest go first), and for how long.
    static let maxRunHeads = 256
    static let runHeadTimeout = 600.0

    /// The head and rest of `r` (a bundle record as it goes on the air) filling what is left of a packet, where
    /// `over(head)` says by how many bytes a head overfills the packet (0 or less: it fits); nil when the neighbour
    /// does not read cut bundles (capability bit 5), the bundle cannot go in a run, or too little room is left.
    func cutToFill(_ r: Record, target: NodeID?, over: (RunPiece) -> Int) -> (head: RunPiece, rest: RunPiece)? {
        guard let target, (self.neighbours[target]?.capabilities ?? 0) & AnnounceRecord.cuts != 0,
              case .bundle(let b) = r, BundleRun.eligible(b), let form = BundleRun.firstForm(b) else { return nil }
        var keep = form.count - 1
        // Down by what overfills; a shorter head may also shorten the length prefixes, so check again.
        for _ in 0..<8 where keep >= Self.minCutHead {
            guard let c = RunPiece.cut(b, keep: keep) else { return nil }
            let o = over(c.head)
            if o <= 0 { return c }
            keep -= o
        }
        return nil
    }

    /// A piece of a cut bundle from a neighbour: a head is kept until its rest comes; a rest completes it.
    func handlePiece(_ p: RunPiece, from: NodeID, link: String, now: Double) {
        // Addressed to another neighbour: nothing to do (its sender resends it whole if it does not arrive).
        guard p.nextHop == self.me.short else { return }
        let key = RunHeadKey(from: from, transfer: p.transfer)
        self.runHeads = self.runHeads.filter { now - $0.value.at <= Self.runHeadTimeout }
        if p.isHead {
            self.runHeads[key] = RunHead(piece: p, at: now)
            if self.runHeads.count > Self.maxRunHeads, let oldest = self.runHeads.min(by: { $0.value.at < $1.value.at })?.key {
                self.runHeads[oldest] = nil
            }
            return
        }
        guard let head = self.runHeads.removeValue(forKey: key) else {
            // Its head was lost: not acknowledged, so the sender sends the whole bundle again.
            self.reject("the rest of a cut bundle from \(from.short) (transfer \(p.transfer)) without its head: not acknowledged, the sender sends it again")
            return
        }
        let bytes: [UInt8]
        do { bytes = try RunPiece.join(head: head.piece, rest: p, origin: from.short) } catch {
            self.reject("cut bundle from \(from.short) (transfer \(p.transfer)): \(error): not acknowledged, the sender sends it again")
            return
        }
        // Acknowledged only once stored (or settled otherwise), as a whole bundle record.
        if self.handleBundleBytes(bytes, from: from, link: link, now: now, handedToUs: true) {
            self.queueAck(AckEntry(transfer: p.transfer, received: 1), to: from.short, link: link, now: now)
        }
    }
}
