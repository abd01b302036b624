import CourierWire

/// Writes grouped per packet: what one received packet brings (its replay window, fragments, bundles, acks recorded,
/// custody released, deliveries, feed entries) is kept in one transaction, and so is what composing one packet
/// writes (a counter block, the transmission state of the data it carries): one fsync each instead of one per write.
extension Node {
    /// Runs `body` as one durable write (`NodeStorage.grouped`). True when it was kept. False when the commit
    /// failed: nothing `body` wrote was kept, so the outputs it produced that vouch for those writes (deliveries,
    /// stored, custody released, …) are withdrawn (its `.storageFailed` reports stay) and the failure is reported;
    /// the caller undoes what it kept in memory on the strength of the writes.
    func durably(_ operation: String, link: String? = nil, _ body: () -> Void) -> Bool {
        let mark = self.outputs.count
        do {
            try self.store.grouped(body)
            return true
        } catch {
            let withdrawn = Array(self.outputs[mark...])
            self.outputs.removeSubrange(mark...)
            for o in withdrawn {
                switch o {
                case .event(.storageFailed): self.emit(o)
                // Each bundle that was not kept after all is said, as a write that failed alone says it.
                case .delivered(let m): self.reject("cannot deliver \(m.id), not acknowledged (kept by its sender): \(error)")
                case .event(.bundleStored(let id, _)): self.reject("cannot store \(id), not acknowledged (kept by its sender): \(error)")
                case .event(.waiting(let id, _)): self.reject("cannot keep \(id), not acknowledged (kept by its sender): \(error)")
                default: break
                }
            }
            self.storageFailed(operation, link: link, error)
            // What the group stored or removed was undone: the index of held bundles is built again from the store.
            self.rebuildHeldIndex()
            return false
        }
    }

    /// What receiving a packet changes in memory that the group's writes vouch for: the fragments collected and the
    /// acks owed. Restored when the group's commit failed, so nothing is acknowledged that was not kept (the sender
    /// sends it again).
    struct ReceivedState {
        let reassembler: Reassembler
        /// Neighbours' keys written by the packet are not kept if its commit fails: written again from the next announce.
        let peersKept: PeersKept
        let acks: [String: (acks: [ShortID: [UInt32: AckEntry]], due: Double?, partial: [ShortID: Set<UInt32>], unacked: [ShortID: [UInt32: Int]])]
    }

    func receivedState() -> ReceivedState {
        ReceivedState(reassembler: self.reassembler, peersKept: self.peersKept,
                      acks: self.links.mapValues { ($0.acks, $0.ackDue, $0.partialAcks, $0.unackedFragments) })
    }

    /// Restores `s` after a received packet's commit failed. The packet's fragments stay in memory all the same (as
    /// when a fragment alone cannot be kept), unacknowledged; but a transfer the packet completed is reopened
    /// without its last piece, so it completes, and is stored and acknowledged, only from a retransmission.
    func restore(_ s: ReceivedState, keepingFragmentsOf packet: Packet, from sender: NodeID?, now: Double) {
        self.reassembler = s.reassembler
        self.peersKept = s.peersKept
        if let sender {
            for case .fragment(let f) in packet.records where f.nextHop == nil || f.nextHop == self.me.short {
                if case .complete = self.reassembler.add(f, from: sender, now: Int64(now)) {
                    self.reassembler.reopen(sender: sender, transfer: f.transfer)
                }
            }
        }
        for (name, a) in s.acks {
            guard var l = self.links[name] else { continue }
            (l.acks, l.ackDue, l.partialAcks, l.unackedFragments) = a
            self.links[name] = l
        }
    }
}

extension Node {
    /// What composing a packet changes in memory: the link's state (acks owed, announce and summary due) and the
    /// transfers (records marked sent: journalled, TransferTable.swift), with the counters. Restored when the
    /// packet's commit failed.
    struct ComposingState {
        let link: LinkState?
        let stats: Stats
    }

    func composingState(_ name: String) -> ComposingState {
        self.transfers.beginJournal()
        return ComposingState(link: self.links[name], stats: self.stats)
    }

    func restore(_ s: ComposingState, link name: String) {
        self.links[name] = s.link
        self.transfers.rollBack()
        self.stats = s.stats
    }
}
