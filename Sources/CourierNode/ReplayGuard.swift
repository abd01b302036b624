import CourierWire

/// The replay guard (SPEC 4.8): each sender's packet-counter window (`replayGuard`), kept in the store before a
/// packet is used, so a copy of it is refused even after a restart.
extension Node {
    /// Whether a packet with this counter from this sender is new; a copy (a digipeater's, an echo) or a replay is
    /// refused and reported.
    func admitCounter(_ counter: UInt32, from: NodeID, link: String) -> Bool {
        var window = self.replayGuard.windows[from] ?? ReplayWindow()
        let verdict = window.check(counter)
        guard verdict.isAccepted else {
            self.stats.rejected += 1
            let why = verdict == .replay ? "already received" : "too far behind its newest"
            self.emit(.event(.packetRefused(link: link, reason: .replay, detail: "counter \(counter) from \(from.short) \(why)")))
            return false
        }
        // Kept before the packet is acted on: after a restart a copy of it is still a replay. When the store cannot
        // take it (a full disk) the packet is still used, with the window in memory (refusing it would refuse the
        // acks that let us free space, and make neighbours take us for gone); the next save that works keeps it all.
        // Said once until saving works again.
        do {
            try self.store.saveReplayWindow(window, for: from)
            self.replayGuard.unsaved = false
        } catch {
            if !self.replayGuard.unsaved {
                self.rejectStorage("cannot keep replay windows in the store (a copy of a packet received now would not be refused after a restart until one is kept): \(error)", error)
            }
            self.replayGuard.unsaved = true
        }
        self.replayGuard.windows[from] = window
        return true
    }
}

/// What the replay guard keeps; no other part uses it.
struct ReplayGuardState {
    /// Each sender's packet-counter windows (SPEC 4.8), kept in the store so they survive a restart.
    var windows: [NodeID: ReplayWindow] = [:]
    /// The last attempt to keep a window in the store failed (said once, until one succeeds).
    var unsaved = false
}
