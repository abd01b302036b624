import enum CourierStore.StoreError
import CourierWire

extension Node {
    /// Reports a store operation that failed (a full disk, an I/O error) as an output: the runtime logs it, shows it
    /// in `relay status` and pauses transmission until storage works again. The caller says what it does meanwhile.
    func storageFailed(_ operation: String, link: String? = nil, _ error: StoreError) {
        self.emit(.event(.storageFailed(operation: operation, link: link, error: error)))
    }

    /// Runs a store call; a failure is reported (`storageFailed`) and gives nil.
    func storing<T>(_ operation: String, link: String? = nil, _ body: () throws -> T) -> T? {
        do { return try body() } catch {
            self.storageFailed(operation, link: link, self.storeError(error))
            return nil
        }
    }

    /// A bundle this node stored itself (or `relay send` / `relay import` stored) that no longer decodes: removed,
    /// with the reason in the change feed, and given up on.
    func damagedInStore(_ id: BundleID, _ error: any Error, now: Double) {
        let why = "damaged in the store: \(error)"
        do {
            try self.store.remove(id, reason: why, now: Int64(now))
            self.unhold(id)
        } catch {
            self.storageFailed("remove a damaged bundle", self.storeError(error))
        }
        self.emit(.event(.gaveUp(id, reason: why)))
    }
}

extension Node {
    /// A receipt that could not be stored is made again this long after (seconds): once a minute is enough to see
    /// storage back, and says the failure once a minute, not on every tick.
    static let receiptRetry: Double = 60
}

extension Node {
    /// An error from the store as the store's own type (what else a store call throws is wrapped, never dropped).
    func storeError(_ error: any Error) -> StoreError {
        (error as? StoreError) ?? .sqlite(path: self.store.path, code: -1, detail: "\(error)")
    }
}

extension Node {
    /// Pauses (or resumes) all transmission, as quiet mode does but only in memory: the runtime pauses while storage
    /// fails (an acknowledgement or a packet counter that is not kept could be wrong after a restart) and resumes
    /// once a write works again. Receiving goes on; what is due is sent at the first tick after resuming.
    public func pauseTransmission(_ paused: Bool) { self.transmissionPaused = paused }

    public var isTransmissionPaused: Bool { self.transmissionPaused }
}

extension Node {
    /// A refusal caused by the store (`why` ends with the error): said as before, and when the store itself failed
    /// (not a full queue or inbox, which are limits, not failures) reported as `storageFailed` too, so the runtime
    /// shows it and pauses transmission until storage works again.
    func rejectStorage(_ why: String, _ error: any Error) {
        self.reject(why)
        guard let e = error as? StoreError else { return }
        switch e {
        case .quotaFull, .inboxFull: return
        default:
            let suffix = ": \(error)"
            self.storageFailed(why.hasSuffix(suffix) ? String(why.dropLast(suffix.count)) : why, e)
        }
    }
}
