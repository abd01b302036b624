import CourierWire

/// Reassembly: fragments of a transfer received (kept in the store until complete, so a half-received transfer
/// survives a restart), put together by the `Reassembler` (CourierWire) and handed to Intake; acks owed for them
/// (Acks.swift); a flood heard in part (Flooding.swift). The state is `reassembler`, its fragments in the store.
extension Node {
    /// A fragment record for us (or a flood's) from a neighbour.
    func handleFragment(_ f: FragmentRecord, from: NodeID, link: String, now: Double) {
        if let next = f.nextHop, next != self.me.short { return }
        // A fragment that does not match what this transfer number carried (the sender reused the number for
        // another bundle): the pieces kept of the old one go, so they are not mixed with the new one.
        if self.reassembler.conflicts(f, from: from) {
            do { try self.store.dropTransfer(from: from, transfer: f.transfer) } catch {
                self.rejectStorage("cannot drop the old pieces of transfer \(f.transfer) from \(from.short): \(error)", error)
            }
        }
        switch self.reassembler.add(f, from: from, now: Int64(now)) {
        case .complete(let bytes, let ack):
            guard self.handleBundleBytes(bytes, from: from, link: link, now: now, copies: f.nextHop != nil ? self.arrivingCopies[f.transfer] : nil,
                                         handedToUs: f.nextHop == self.me.short) else {
                // Not stored: the last fragment is not acknowledged, so the sender sends it again (and
                // keeps the bundle); its retransmission completes the transfer again.
                self.reassembler.reopen(sender: from, transfer: f.transfer)
                return
            }
            // Left (a full disk): the pieces are dropped when the transfer times out.
            _ = self.storing("drop the pieces of a completed transfer", link: link) { try self.store.dropTransfer(from: from, transfer: f.transfer) }
            if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now) }
        case .incomplete(let ack):
            // Kept only while its transfer is being collected (a fragment that completes one, or repeats one completed,
            // is not: kept before, each duplicate of a completed transfer stayed in the store until the 24-hour
            // timeout, and a restart put the whole transfer together again and acknowledged its last fragment's
            // resend as a duplicate). Not kept (a full disk): used from memory all the same, as the replay window
            // is (the bundle it completes is acknowledged only once stored, so nothing is lost; a restart meanwhile
            // costs a resend).
            _ = self.storing("store a received fragment", link: link) { try self.store.saveFragment(f, from: from, now: Int64(now)) }
            if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now, complete: false) }
            else { self.floodFragmentHeard(f, from: from, link: link, now: now) }
        case .duplicate(let ack):
            if f.nextHop != nil { self.queueAck(ack, to: from.short, link: link, now: now) }
        case .rejected(let why): self.reject("fragment: \(why)")
        }
    }
}
