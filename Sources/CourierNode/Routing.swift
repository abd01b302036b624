import CourierMedium
import CourierWire
import typealias CourierStore.HeldBundle
import struct CourierStore.QueuedBundle
import Foundation

/// Custody routing: the next hop of a directed bundle (`routes` learnt from where bundles came from), copies to a few
/// neighbours when there is no route (`replicas`, within the bundle's copy budget: binary spray-and-wait, SPEC 5.14),
/// and a cancelled or stalled bundle.
extension Node {

    /// The neighbour to hand a directed bundle to: the destination itself, or the neighbour a route goes through.
    func nextHop(for dest: ShortID, now: Double) -> (NodeID, String)? {
        self.nextHop(for: dest, now: now) { self.freshLink($0, now: now) }
    }

    /// `nextHop(for:now:)` with the links' timeouts taken beforehand (`linkFreshness`, unchanged since): the same
    /// answer, for a pass asking it of many destinations.
    func nextHop(for dest: ShortID, now: Double, _ links: LinkFreshness) -> (NodeID, String)? {
        self.nextHop(for: dest, now: now) { self.freshLink($0, now: now, links) }
    }

    /// The one body of both `nextHop`s: `fresh` gives the up link a neighbour was heard on lately (`freshLink`).
    private func nextHop(for dest: ShortID, now: Double, fresh: (NodeID) -> String?) -> (NodeID, String)? {
        for id in self.directory[dest] ?? [] where id != self.me {
            if let l = fresh(id) { return (id, l) }
        }
        if let r = self.usableRoute(dest, now: now), let l = fresh(r.via) {
            return (r.via, l)
        }
        return nil
    }

    /// The next hop of a held directed bundle (`nextHop`), but not the neighbour it came from (split horizon, SPEC 8.5
    /// directed rule 2) unless that is its destination, or the route through it was learnt after the bundle came (it
    /// has heard from the destination's side since), at most `Tuning.handBacksPerBundle` times. That neighbour handed
    /// it to us because its route went through us: two relays each holding a route through the other handed it back
    /// and forth, each retaking it, until its hop limit ran out. Without a hop other than the way it came, it is routed
    /// as a bundle without a route (copies within its budget, or the last copy waits; that neighbour holds it).
    func onwardHop(for id: BundleID, to dest: ShortID, now: Double) -> (NodeID, String)? {
        guard let (hop, link) = self.nextHop(for: dest, now: now) else { return nil }
        guard hop.short != dest, let came = self.cameFrom[id], came.via == hop else { return (hop, link) }
        guard let r = self.routes[dest], r.via == hop, r.at > came.at, self.handBacks[id, default: 0] < Tuning.handBacksPerBundle else { return nil }
        return (hop, link)
    }

    /// A route learnt before this engine started: `dest`'s last bundle (its identity flood, SPEC 9.1) came through
    /// `via`, `hops` hops after its origin, at `at`. Kept as a route learnt then would be: used as one for
    /// `Tuning.routeKeptForTimeouts` neighbour timeouts after `at`, as a hint (`routeHint`) for
    /// `Tuning.routeHintKeptFor`. A route learnt since (or one with fewer hops) is kept instead. For a simulation of a
    /// federation that has run for days (`DrillSimulator`), whose relays each heard every member's identity flood
    /// (flooded at start, renewed every 3.5 days) and kept the way it came.
    public func rememberRoute(to dest: ShortID, via: NodeID, hops: Int, at: Double) {
        guard dest != self.me.short, via != self.me else { return }
        if let r = self.routes[dest], r.at >= at || r.hops < hops { return }
        self.routes[dest] = (via, max(hops, 0), at)
    }

    /// Remembers that a directed bundle reached its destination (see `arrived`).
    func noteArrived(_ id: BundleID) {
        if self.arrived.count >= Tuning.maxDirectedSeen { self.arrived.removeAll() }
        self.arrived.insert(id)
    }

    /// A held directed bundle goes back to the neighbour it came from (`onwardHop`): counted.
    func noteHandBack(_ id: BundleID, to hop: NodeID) {
        guard self.cameFrom[id]?.via == hop else { return }
        if self.handBacks.count >= Tuning.maxHandBacksCounted { self.handBacks.removeAll() }
        self.handBacks[id, default: 0] += 1
    }

    /// A route too old to be one (`nextHop` uses a route for `Tuning.routeKeptForTimeouts` neighbour timeouts) but
    /// not forgotten (`Tuning.routeHintKeptFor`): the neighbour, in range now, through which the destination's last
    /// bundle came. Spray-and-focus (Spyropoulos et al. 2007; SPEC 5.14 rules 3 and 4): the copies of a bundle without
    /// a route go that way first, and the last one moves on along it. In a mesh that does not move, the way a quiet
    /// node's last bundle came is still the way to it: on the 50-relay day a budget of 8 left three texts to quiet
    /// nodes waiting at relays that never met them, their routes (from the identity floods) expired hours before.
    func routeHint(for dest: ShortID, now: Double) -> NodeID? {
        guard let r = self.routes[dest], now - r.at < Tuning.routeHintKeptFor, self.freshLink(r.via, now: now) != nil else { return nil }
        return r.via
    }

    /// A route to `origin` young enough to be used (`nextHop`): learnt within `Tuning.routeKeptForTimeouts` neighbour
    /// timeouts (older ones are kept only as hints, `routeHint`).
    func usableRoute(_ origin: ShortID, now: Double) -> (via: NodeID, hops: Int, at: Double)? {
        guard let r = self.routes[origin], now - r.at < self.config.neighbourTimeout * Tuning.routeKeptForTimeouts else { return nil }
        return r
    }

    /// The operator cancelled a queued bundle (`relay queue cancel`): transfers of it under way stop (their
    /// records are in memory) and a pending rebroadcast is dropped, so nothing more of it leaves this relay.
    public func cancelled(_ id: BundleID) {
        for k in self.transfers.keys(of: id) { self.transfers[k] = nil }
        self.floods[id] = nil
        self.unhold(id)
    }

    /// Where a directed bundle to each node known here would go now (the node itself when it is a fresh neighbour,
    /// else the neighbour a fresh route goes through); `relay queue list` shows it as the next hop.
    public func nextHops(now: Double) -> [(to: ShortID, via: ShortID, link: String)] {
        Set(self.directory.keys).union(self.routes.keys).sorted { $0.rawValue < $1.rawValue }.compactMap { d in
            guard d != self.me.short, let (via, link) = self.nextHop(for: d, now: now) else { return nil }
            return (d, via.short, link)
        }
    }

    /// Whether `routeDirected` could do anything for a held bundle now, decided in memory before the bundle is read:
    /// a directed bundle in custody with a next hop for its destination, or a fresh neighbour (`fresh`) it may still
    /// hand a copy to. With 50,000 held and no neighbour, housekeeping read every one of them for nothing.
    func mayRoute(_ h: HeldBundle, fresh: [(id: NodeID, link: String)], now: Double) -> Bool {
        guard h.custody, case .node(let dest) = h.destination else { return false }
        if self.onwardHop(for: h.id, to: dest, now: now) != nil { return true }
        let given = self.replicas[h.id] ?? []
        if self.copiesLeft(h.id) > 1 { return fresh.contains { $0.id.short != h.id.origin && !given.contains($0.id) } }
        // The last copy moves on where it is the only way on, or along an old route (`routeDirected`).
        let onward = fresh.filter { $0.id.short != h.id.origin && !given.contains($0.id) && !self.isHolder(h.id, $0.id) }
        if onward.count == 1 { return true }
        if let hint = self.routeHint(for: dest, now: now), onward.contains(where: { $0.id == hint }) { return true }
        return self.focusHop(to: dest, among: onward.map(\.id), now: now) != nil
    }

    /// Where the last copy of a directed bundle with no route and no hint goes when several neighbours in range not
    /// known to hold it could take it (SPEC 5.14 rule 4, the focus): the one heard most recently talking with the
    /// destination (`talksWith`, the turns' record: its acks' targets and its data's next hops, each a neighbour of
    /// it) within `Tuning.talkPartnersKeptFor`. That neighbour is one hop from the destination, where the holder has
    /// no route at all. Nil when none was: the copy waits for a route as before, and once a neighbour is heard talking
    /// with a destination a last copy waits for (`RouteWalk.focusWaiting`), held bundles are routed again
    /// (`noteTalksWith`). In the triangle drill (seed 8) a grievance from the east assembly to west-3, which had sent
    /// nothing, was sprayed among the four east relays; the one that hears the other assemblies was left with the last
    /// copy and two ways on, west-1 and north-1, and waited 2,700 s for a route; west-1 acknowledges west-3's data.
    func focusHop(to dest: ShortID, among: [NodeID], now: Double) -> NodeID? {
        guard among.count > 1 else { return nil }
        var best: (id: NodeID, at: Double)? = nil
        for n in among {
            guard let at = self.neighbours[n]?.talksWith[dest], now - at < Tuning.talkPartnersKeptFor else { continue }
            if best.map({ at > $0.at || (at == $0.at && n.description < $0.id.description) }) ?? true { best = (n, at) }
        }
        if best == nil { self.routeWalk.focusWaiting.insert(dest) }
        return best?.id
    }

    /// The copies of a held directed bundle this relay may still hold and hand on, its own included (SPEC 5.14): what
    /// the neighbour it came from said, or the whole `Tuning.copyBudget` when none was said (made here, from an older
    /// relay or an archive).
    func copiesLeft(_ id: BundleID) -> Int { self.copyBudgets[id] ?? Tuning.copyBudget }

    /// Keeps a held bundle's copy budget, in memory and in the store (not kept, a full disk: after a restart it has
    /// the budget it had before, said in the log and the feed).
    func setCopies(_ id: BundleID, _ copies: Int) {
        self.copyBudgets[id] = copies
        _ = self.storing("keep a copy budget") { try self.store.setCopyBudget(id, copies: copies) }
    }

    /// A copy of a held directed bundle arrived from a neighbour that gave it with a budget (SPEC 5.14 rule 7): it did
    /// not know we held it, and counted those copies as given. A holder left with the last copy (a budget of 1, which
    /// only waits) takes one of them, once per bundle, and routes the bundle again (it may now hand a copy on). In the
    /// triangle drill a message from a cut-off assembly of four relays was sprayed among the four (8, 4, 2, 1), each
    /// holder giving the others copies they already had, and the one relay that hears the other assemblies was left
    /// with a budget of 1 and two ways on, so waited to the end of the run. Taking every copy back (the whole budget,
    /// once from each neighbour) put the copies of the 200-relay drill back into circulation among relays that held
    /// them: 3,774 of its 6,174 copies delivered instead of 4,655 (release, `relay drill simulate
    /// scenarios/regional-200.json`; text data 2,242 s of airtime instead of 1,955), and taking one back still 4,318
    /// (seed 201: 4,145 against 4,581), the first alert reaching 197 of 199 relays: on a channel whose duty cycle
    /// stretches announces (`allowanceStretch`, 1% at SF9) the airtime the extra copies take is what the floods
    /// needed. So only where the link's allowance does not stretch them (10% at SF9, or no duty cycle).
    func takeCopies(_ id: BundleID, _ copies: Int, link: String, now: Double) {
        guard copies > 0, self.copiesLeft(id) == 1, let l = self.links[link],
              Self.allowanceStretch(l.info, interval: self.config.announceInterval) <= 1,
              let h = self.heldIndex.byID[id], h.custody, self.copyTakenBack.insert(id).inserted else { return }
        self.setCopies(id, 2)
        self.routeDirected(id, now: now)
    }

    /// The budget a transfer of a held directed bundle to `target` hands on (SPEC 5.14): none to the destination
    /// itself (custody ends there), the whole budget along a route (custody moves, and the copies with it: the
    /// relay keeps none, so the copies in the federation stay within the origin's budget).
    func copiesAlongRoute(_ id: BundleID, to target: NodeID, destination: ShortID) -> Int? {
        target.short == destination ? nil : self.copiesLeft(id)
    }

    /// Binary spray-and-wait (Spyropoulos et al. 2005; SPEC 5.14): a relay holding a budget of n > 1 copies of a
    /// directed bundle without a route gives a neighbour one copy carrying floor(n/2) and keeps ceil(n/2) (and custody
    /// until a receipt says it arrived); with 1 it waits, and hands the bundle on only along a route or to the
    /// destination. Before the budget, every relay that took a copy gave two more: on the 200-relay regional drill a
    /// text was held by 135 relays, and their retransmissions filled the channel the alerts needed.
    /// Returns whether a copy went.
    @discardableResult
    func giveCopy(_ q: QueuedBundle, to n: NodeID, link: String, now: Double, delay: Double = 0) -> Bool {
        let have = self.copiesLeft(q.id)
        guard have > 1 else { return false }
        let give = have / 2
        guard self.startTransfer(q, link: link, target: n, custody: false, now: now, delay: delay, copies: give) else { return false }
        self.replicas[q.id, default: []].insert(n)
        self.setCopies(q.id, have - give)
        return true
    }

    func routeDirected(_ id: BundleID, now: Double) {
        // Unreadable: routed at the next housekeeping.
        guard let found = self.storing("read a bundle to route it", { try self.store.bundle(id) }) else { return }
        guard let q = found else {
            // Gone from the store meanwhile (taken out by another process): gone from the index too.
            self.unhold(id)
            return
        }
        guard q.custody, case .node(let dest) = q.destination else { return }
        guard !self.transfers.hasCustody(id) else { return }
        guard let (hop, link) = self.onwardHop(for: id, to: dest, now: now) else {
            // No route yet: hand copies to neighbours now, within the copy budget (`giveCopy`: a relay further on may
            // know the way, or a courier may carry it); we keep custody until a receipt says it arrived. Not to a
            // neighbour known to hold it (the one it came from): a courier's relay gave one of its two copies back
            // to the relay it had just taken it from, and had none left for the next village.
            // The neighbour an old route to the destination goes through first (`routeHint`: spray-and-focus), then
            // the most recently heard.
            let given = self.replicas[id, default: []]
            let hint = self.routeHint(for: dest, now: now)
            let candidates = self.neighbours.values
                .filter { $0.id != self.me && $0.id.short != id.origin && !given.contains($0.id) && !self.isHolder(id, $0.id) && self.freshLink($0.id, now: now) != nil }
                .sorted { ($0.id == hint ? 1 : 0, $0.lastHeard.values.max() ?? 0, $0.id.description) > ($1.id == hint ? 1 : 0, $1.lastHeard.values.max() ?? 0, $1.id.description) }
            guard self.copiesLeft(id) > 1 else {
                // The last copy (a budget of 1) waits for a route, unless one neighbour is the only way on: every
                // other one in range holds it (it came from there). Then it moves on, custody and budget with it
                // (this relay keeps none, so the copies stay within the budget): along a chain of relays, halving
                // alone left the last copy three hops from the origin (8, 4, 2, 1), where a message to a relay five
                // hops away waited for a route until the other end wrote (CourierMailTests: 994 s instead of 124).
                // It moves on the same way along an old route (`routeHint`, the focus of spray-and-focus): the way
                // the destination's last bundle came. At most the bundle's hop limit of such moves.
                // With several ways on and no hint, the focus (`focusHop`): a neighbour heard talking with the destination.
                let onward = candidates.count == 1 ? candidates.first
                    : candidates.first(where: { $0.id == hint }) ?? self.focusHop(to: dest, among: candidates.map(\.id), now: now).flatMap { self.neighbours[$0] }
                if let n = onward, let l = self.freshLink(n.id, now: now),
                   q.isLocal || (q.data.first.map { $0 >> 4 > 0 } ?? false) {
                    self.startTransfer(q, link: l, target: n.id, custody: true, now: now, copies: 1)
                }
                return
            }
            for n in candidates {
                guard self.copiesLeft(id) > 1 else { break }
                guard let l = self.freshLink(n.id, now: now) else { continue }
                self.giveCopy(q, to: n.id, link: l, now: now)
            }
            return
        }
        if self.startTransfer(q, link: link, target: hop, custody: true, now: now, copies: self.copiesAlongRoute(id, to: hop, destination: dest)) {
            self.noteHandBack(id, to: hop)
        }
    }

    /// A next hop stopped acknowledging a bundle in our custody: said in the log and the feed (the bundle is kept and
    /// routed again at the next housekeeping).
    func reportStalled(_ id: BundleID, to: ShortID, attempts: Int, now: Double) {
        do { try self.store.stalled(id, to: to, detail: "no acknowledgement after \(attempts) attempts; kept, will try again", now: Int64(now)) } catch {
            self.rejectStorage("cannot record \(id) stalled: \(error)", error)
        }
        self.emit(.event(.stalled(id, to: to)))
    }
}
