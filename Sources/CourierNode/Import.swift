import CourierWire

/// Bundles carried by hand: an archive written by `relay export` on one relay and read on another.
extension Node {
    public enum ImportOutcome: Sendable, Equatable {
        /// Held for others (custody for a directed bundle, or a flood to pass on).
        case stored
        /// Delivered to this node's inbox (and held to pass on, for a group or everyone).
        case delivered
        /// Already seen here: nothing changed.
        case duplicate
        case expired
        /// For this relay, but its origin's keys are not known here yet: kept, read when they arrive.
        case waiting(String)
        /// Refused, with the reason (untrusted origin, bad signature, damaged bundle, unreadable).
        case rejected(String)
        /// Not stored: the database refused the write (a full disk, a damaged file). Nothing of it was kept; the
        /// same archive can be imported again once the store is writable (what is already here is skipped).
        case notStored(String)
    }

    /// Takes in one bundle from an archive with the checks a bundle from a link gets: decoding, lifetime, trust
    /// and origin signature, dedupe. Stored bundles are marked as imported in the change feed, so a running relay
    /// adopts them (`adopt(_:now:)`) and sends them on. Receipts are queued; `flushReceipts` makes them now.
    public func importBundle(_ bytes: [UInt8], now: Double) -> ImportOutcome {
        defer { _ = self.drain() }
        let b: CourierBundle
        do { b = try CourierBundle(decoding: bytes) } catch { return .rejected("damaged bundle: \(error)") }
        if b.expires <= UInt64(CourierTime.minutes(unixSeconds: Int64(now))) { return .expired }
        do { if try self.store.hasSeen(b.id) { return .duplicate } } catch { return .notStored("cannot read the database: \(error)") }
        if let why = self.distrust(b) {
            self.refuse(b, why: why, from: Self.importedFrom, now: now)
            return .rejected(why)
        }
        switch self.accept(b, from: nil, source: Self.importedFrom, now: now) {
        case .delivered, .stored(delivered: true): return .delivered
        case .stored(delivered: false): return .stored
        case .duplicate: return .duplicate
        case .waiting(let why): return .waiting(why)
        case .failed(let why): return .rejected(why)
        case .notStored(let why): return .notStored(why)
        }
    }

    /// The change feed's `neighbour` for bundles taken from an archive.
    public static let importedFrom = "import"

    /// Makes the receipts waiting for aggregation now (an import run ends; the relay sends them when it runs).
    public func flushReceipts(now: Double) {
        for (origin, r) in self.receipts {
            self.receipts[origin] = (r.ids, now)
        }
        _ = self.tick(now: now)
    }
}
