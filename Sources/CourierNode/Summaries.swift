import CourierMedium
import CourierWire
import typealias CourierStore.HeldBundle
import Foundation

/// Summaries and pulls: what we tell neighbours we hold (`told`, summary pages), their summaries (`summaries`), and
/// bundles we ask for after a summary or a receipt showed them (`pulls`, `receiptOrigins`).
extension Node {
    struct Pull {
        var link: String
        var due: Double
        var tries = 0
        let since: Double
        /// A receipt showed it (else a summary).
        var fromReceipt = true
        /// The neighbour whose summary showed it (asked again while it is heard: `Tuning.pullReaskAfterSummary`).
        var shownBy: NodeID? = nil
    }

    /// A receipt heard from a neighbour says the neighbour has the listed bundles (its own receipt, or one it passes
    /// on towards their origin, the way their copies came), and so has the receipt's origin: they need no copy from
    /// us. If we lack one, and the receipt is the neighbour's own or receipts from two nodes list it (a flood: a
    /// directed bundle is receipted by its destination alone), we ask for it with our summary after `pullDelay` (the
    /// flood usually brings it meanwhile).
    func receiptEvidence(_ b: CourierBundle, from: NodeID, link: String, now: Double) {
        let content: [UInt8]
        do { content = try b.content(compressor: self.compressor) } catch {
            self.reject("receipt \(b.id) from \(b.origin): cannot read its content: \(error)")
            return
        }
        // Malformed (SPEC 6.8): no evidence taken from it; it is reported where it is taken in (`handleReceipt`,
        // `readDirected`), once, not at every copy heard.
        let ids: [BundleID]
        do { ids = try ReceiptContent.decode(content) } catch { return }
        for id in ids {
            self.noteHolder(id, from, now: now)
            // The receipt's own origin has it too, wherever on its way to the bundle's origin we hear it.
            for o in self.directory[b.origin] ?? [] where o != from && self.neighbours[o] != nil { self.noteHolder(id, o, now: now) }
            // Receipts from two or more nodes for one bundle: a flood (a directed bundle has one receipt, from its
            // destination).
            // Unreadable: nothing asked for now (a summary later asks).
            guard let seen = self.storing("look up a bundle a receipt lists", link: link, { try self.store.hasSeen(id) }) else { continue }
            var flooded = false
            if b.origin != from.short, !seen {
                self.receiptOrigins[id, default: []].insert(b.origin)
                flooded = self.receiptOrigins[id]!.count >= 2
            }
            if b.origin == from.short || flooded, self.pulls[id.digest] == nil, !seen {
                self.pulls[id.digest] = Pull(link: link, due: now + self.config.pullDelay * self.rng.uniform(1, 1.5), since: now)
            }
        }
    }

    /// Asks for our summary on a link (every up link when nil), `lo` to `hi` seconds from now.
    func wantSummary(_ link: String?, now: Double, _ lo: Double, _ hi: Double) {
        for name in link.map({ [$0] }) ?? self.linkOrder {
            guard var l = self.links[name], l.up else { continue }
            l.summaryDue = min(l.summaryDue ?? .infinity, now + self.rng.uniform(lo, hi))
            self.links[name] = l
        }
    }

    func handleSummary(_ s: SummaryRecord, from: NodeID, link: String, now: Double) {
        self.summaries[from, default: []].formUnion(s.digests)
        guard s.isFinal else { return }
        let theirs = self.summaries.removeValue(forKey: from) ?? []
        // Those listed picked out first, then sorted (not every bundle with a known holder sorted at each summary).
        for id in self.holders.keys.filter({ theirs.contains($0.digest) }).sorted() {
            self.noteHolder(id, from, now: now)
        }
        // They hold something we lack: answer with our summary, so they send it (once an hour per digest: what they
        // do not send then, they will not send on a second asking).
        // Unreadable: nothing asked for now (their next summary asks).
        if let mine = self.storing("read the bundles seen", link: link, { try self.store.seenDigests(limit: Tuning.seenDigestsLimit) }).map(Set.init) {
            let unknown = theirs.subtracting(mine).filter { self.pulls[$0] == nil }
            if !unknown.isEmpty {
                let due = now + self.rng.uniform(Tuning.summaryAnswerDelay.min, Tuning.summaryAnswerDelay.max)
                for d in unknown { self.pulls[d] = Pull(link: link, due: due, since: now, fromReceipt: false, shownBy: from) }
            }
        }
        // Send what they lack: floods to all, directed bundles we hold custody of (a copy; custody stays with us
        // unless they are the destination).
        // Directed bundles only when the loop below would send them (to their destination, or a copy within the
        // budget when there is no route): the others are not read from the store for nothing (a relay holding custody
        // of many read them all at every summary heard).
        // (The index's arrays walked in the queue's order, each bundle looked up only when they lack its digest, and
        // the links' timeouts taken once for the next hops asked: every held bundle looked up, and each link's state
        // copied for every neighbour a next hop looked at, at each summary heard, grew with what is held.)
        let all = self.heldIndex.all
        var links: LinkFreshness? = nil
        var lacking: [HeldBundle] = []
        for i in all.ids.indices where !theirs.contains(all.digests[i]) {
            let h = self.heldIndex[all.ids[i]]!
            if case .node(let d) = h.destination {
                guard h.custody else { continue }
                if d != from.short {
                    if links == nil { links = self.linkFreshness() }
                    guard self.nextHop(for: d, now: now, links!) == nil && self.copiesLeft(h.id) > 1
                            && !(self.replicas[h.id]?.contains(from) ?? false) else { continue }
                }
            }
            lacking.append(h)
        }
        guard !lacking.isEmpty,
              let bundles = self.storing("read the bundles a neighbour lacks", link: link, { try self.store.bundles(digests: lacking.map(\.digest)) })
        else { return }
        let wanted = Set(lacking.map(\.id))
        // Directed bundles for this neighbour wait one random delay together (it spreads the answers of several
        // holders), so they go in the same packets, filled (SPEC 5.11, 5.12), not one delay each, a packet or two apart.
        var directedDelay: Double? = nil
        func together() -> Double {
            if let d = directedDelay { return d }
            let d = self.answerDelay()
            directedDelay = d
            return d
        }
        for q in bundles where wanted.contains(q.id) {
            switch q.destination {
            case .everyone, .group:
                if !q.isLocal, q.data.first.map({ $0 >> 4 == 0 }) == true { continue }
                // A broadcast after a random delay: every neighbour that lacks it can take it, and a holder that
                // hears another holder send it first stands down.
                self.startTransfer(q, link: link, target: nil, custody: false, now: now, delay: self.answerDelay())
            case .node(let d):
                guard q.custody else { continue }
                if d == from.short {
                    // The destination itself: custody moves to it.
                    self.startTransfer(q, link: link, target: from, custody: true, now: now, delay: together())
                } else if self.nextHop(for: d, now: now) == nil, self.copiesLeft(q.id) > 1, !self.replicas[q.id, default: []].contains(from) {
                    // No route: give a copy to a neighbour we meet, within the copy budget (a courier may carry it,
                    // SPEC 5.14); we keep custody.
                    self.giveCopy(q, to: from, link: link, now: now, delay: together())
                }
            }
        }
    }

    /// Digests in one summary page for this MTU.
    static func summaryPerPage(mtu: Int) -> Int { max(1, (mtu - Packet.overhead - 1) / 4) }

    /// Whether our summary may fit in one page, known without building it: it lists every undirected bundle held,
    /// so with more of them than a page holds it cannot (a periodic announce then carries none: with 100,000 held,
    /// building it to find that out took 0.3 s at every announce).
    func summaryMayFitOnePage(mtu: Int) -> Bool { self.heldIndex.undirected <= Self.summaryPerPage(mtu: mtu) }

    func summaryPages(mtu: Int, now: Double) -> [[UInt32]] {
        // Held bundles first (by priority), then the flooded ones seen and not yet expired (directed ones we no longer
        // hold are left out: see `directedSeen`). Of directed bundles held, only those we would give a neighbour a
        // copy of (in our custody, no route, a copy budget above 1, SPEC 5.14): the others only make neighbours
        // that lack them ask in vain.
        // Unreadable: no summary now (no pages); the next one is due after `summaryInterval`.
        let moving = self.transfers.custodyBundles
        guard let seenNow = self.storing("read the bundles seen", { try self.store.seenDigests(limit: Tuning.seenDigestsLimit) }) else { return [] }
        // Whether each destination has a next hop, asked once per destination.
        var hopless: [ShortID: Bool] = [:]
        let digests = self.summaryDigests(seen: seenNow) { h in
            guard case .node(let dest) = h.destination else { return true }
            guard h.custody, !moving.contains(h.id), self.copiesLeft(h.id) > 1 else { return false }
            if let known = hopless[dest] { return known }
            let none = self.nextHop(for: dest, now: now) == nil
            hopless[dest] = none
            return none
        }
        let perPage = Self.summaryPerPage(mtu: mtu)
        var pages: [[UInt32]] = []
        var i = 0
        repeat {
            pages.append(Array(digests[i..<min(digests.count, i + perPage)]))
            i += perPage
        } while i < digests.count
        return pages
    }
}

/// The pages of each neighbour's summary heard so far, until its last page (SPEC 8.5); no other part uses them
/// (Memory.swift prunes them with the neighbours).
struct HeardSummaries {
    var pages: [NodeID: Set<UInt32>] = [:]
}

extension Node {
    var summaries: [NodeID: Set<UInt32>] {
        get { self.heardSummaries.pages }
        _modify { yield &self.heardSummaries.pages }
    }
}
