import CourierMedium
import enum CourierStore.StoreError
import CourierWire
import Foundation

/// Receipts and failure notices: receipts aggregated per origin (`receipts`) and made when due, receipts that release
/// copies, and failure notices to an origin (SPEC 6.10).
extension Node {
    /// Tells an origin that we gave up on one of its bundles (not for receipts, identities or notices themselves).
    func notifyFailure(_ id: BundleID, kind: Kind, _ reason: FailureReason, now: Double) {
        guard id.origin != self.me.short, kind != .receipt, kind != .identity, kind != .failure else { return }
        do {
            _ = try self.make(kind: .failure, destination: .node(id.origin), content: FailureContent.encode([(id, reason)]), options: nil, now: now)
        } catch {
            self.rejectStorage("cannot make a failure notice for \(id): \(error)", error)
        }
    }

    /// A failure notice for this node: a relay gave up on some of our bundles.
    /// A malformed notice never gets here (`BundleJudge.read` gives up on it, reported); nothing of one is recorded.
    func handleFailure(_ b: CourierBundle, content: [UInt8], now: Double) {
        let entries: [(id: BundleID, reason: FailureReason)]
        do { entries = try FailureContent.decode(content) } catch {
            self.reject("failure notice \(b.id) from \(b.origin): malformed, nothing of it recorded: \(error)")
            return
        }
        for (id, reason) in entries where id.origin == self.me.short {
            do { try self.store.failed(id, reason: "\(reason), reported by \(b.origin)", by: b.origin, now: Int64(now)) } catch {
                self.rejectStorage("cannot record the failure notice for \(id): \(error)", error)
            }
            self.emit(.event(.failureNotice(id, reason: reason, by: b.origin)))
        }
    }

    /// Queues a receipt to `id`'s origin, aggregated with others to that origin for `receiptDelay`, or sent within
    /// `within` seconds (an alert's: its neighbours, deciding whether to pass the alert on, learn from it that we have
    /// it).
    func queueReceipt(for id: BundleID, now: Double, within: Double? = nil) {
        guard id.origin != self.me.short else { return }
        var r = self.receipts[id.origin] ?? ([], now + self.config.receiptDelay)
        if !r.ids.contains(id) { r.ids.append(id) }
        if let w = within { r.due = min(r.due, now + w) }
        self.receipts[id.origin] = r
    }

    /// The most bundle ids one receipt lists (about 4.5 KB of content).
    static let receiptMaxIDs = 500

    /// The longest packet's airtime on any link.
    var maxAirtime: Double {
        self.links.values.map { $0.info.properties.airtime(bytes: $0.info.properties.mtu) }.max() ?? 0
    }

    func handleReceipt(_ b: CourierBundle, now: Double) {
        let content: [UInt8]
        do { content = try b.content(compressor: self.compressor) } catch {
            self.reject("receipt \(b.id) from \(b.origin): cannot read its content: \(error)")
            return
        }
        // Malformed (SPEC 6.8): nothing of it acted on. One for this node is given up on and reported as unreadable
        // when it is read (`readDirected`); one passing through is carried on (its destination judges it) and said here.
        let ids: [BundleID]
        do { ids = try ReceiptContent.decode(content) } catch {
            if !self.isForMe(b) { self.reject("receipt \(b.id) from \(b.origin): malformed, nothing released: \(error)") }
            return
        }
        for id in ids {
            self.noteArrived(id)
            if id.origin == self.me.short, case .node(let dest) = b.destination, dest == self.me.short {
                self.emit(.event(.receipt(id, by: b.origin)))
            }
            // A delivered directed bundle need not travel further: drop our copy ("vaccination").
            // Not removed (a full disk): kept, and passed on as before, until a later receipt or its expiry.
            if let found = self.storing("read a bundle a receipt names", { try self.store.bundle(id) }), let q = found,
               case .node(let d) = q.destination, d == b.origin,
               self.storing("remove a delivered bundle", { try self.store.remove(id, reason: "delivered (receipt from \(b.origin))", now: Int64(now)) }) != nil {
                for k in self.transfers.keys(of: id) { self.transfers[k] = nil }
                self.unhold(id)
            }
        }
    }

    /// Advances timers and sends what can be sent now.
    /// Makes the receipts whose aggregation time is up (all of them with `all`), as bundles in the store.
    /// At most `receiptMaxIDs` ids a receipt: an archive can deliver tens of thousands of one origin's bundles at
    /// once, and one receipt for all would exceed the bundle size limit.
    func makeReceipts(now: Double, all: Bool = false) {
        // (Most ticks none is due: the receipts waiting are not sorted then, as they were at every tick.)
        guard all || self.receipts.values.contains(where: { $0.due <= now }) else { return }
        for (origin, r) in self.receipts.sorted(by: { $0.key < $1.key }) where all || r.due <= now {
            self.receipts[origin] = nil
            for start in stride(from: 0, to: r.ids.count, by: Self.receiptMaxIDs) {
                let ids = Array(r.ids[start..<min(start + Self.receiptMaxIDs, r.ids.count)])
                do { _ = try self.make(kind: .receipt, destination: .node(origin), content: ReceiptContent.encode(ids), options: nil, now: now) } catch let e as StoreError {
                    // Not stored (a full disk): kept in memory and made again in a minute.
                    self.storageFailed("store a receipt for \(ids.count) bundles of \(origin)", e)
                    var again = self.receipts[origin] ?? ([], now + Self.receiptRetry)
                    again.ids += ids.filter { !again.ids.contains($0) }
                    self.receipts[origin] = again
                } catch {
                    self.reject("cannot make the receipt for \(ids.count) bundles of \(origin): \(error)")
                }
            }
        }
    }
}
