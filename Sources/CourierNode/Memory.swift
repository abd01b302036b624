import CourierWire

/// Bounded memory (issue 11 point 5): every in-memory table of the engine has a bound or a pruning rule, listed
/// here with its size (`tables`); `pruneTables` applies the rules that are not applied where the table is used.
extension Node {
    /// One in-memory table: its size now, and what bounds it.
    public struct TableSize: Sendable, Equatable {
        public let table: String
        public let size: Int
        public let bound: String
    }

    /// Every in-memory table of the engine, with its size and what bounds it (tests; `courier-bench`).
    public var tables: [TableSize] {
        let l = self.links.values
        return [
            TableSize(table: "spentFloods", size: self.spentFloods.count, bound: "held floods"),
            TableSize(table: "neighbours", size: self.neighbours.count, bound: "nodes heard in the last \(Int(Tuning.forgetNeighbourAfter / 86_400)) days"),
            TableSize(table: "keys", size: self.keys.count, bound: "known nodes (the federation; kept in the store too)"),
            TableSize(table: "directory", size: self.directory.count, bound: "known nodes' short ids"),
            TableSize(table: "partialAnnounces", size: self.partialAnnounces.count, bound: "\(Tuning.maxPartialAnnounces); beyond, only neighbours heard within the timeout are kept"),
            TableSize(table: "transfers", size: self.transfers.count, bound: "held bundles × links; ended by ack, give-up, receipt or cancel"),
            TableSize(table: "heldIndex", size: self.heldIndex.count, bound: "held bundles (the store's quota)"),
            TableSize(table: "peersKept", size: self.peersKept.kept.count, bound: "neighbours heard in the last \(Int(Tuning.peerHeardKeptEvery)) s"),
            TableSize(table: "replayWindows", size: self.replayGuard.windows.count, bound: "known senders (kept in the store)"),
            TableSize(table: "floods", size: self.floods.count, bound: "held floods; each ends at its due time, or when its rebroadcast goes or is silenced"),
            TableSize(table: "summaries", size: self.summaries.count, bound: "neighbours heard within the timeout (pages of a summary being received)"),
            TableSize(table: "holders", size: self.holders.count, bound: "held bundles, and others for \(Int(Tuning.holdersKeptFor)) s"),
            TableSize(table: "heardOf", size: self.heardOf.count, bound: "as holders"),
            TableSize(table: "told", size: self.toldUpTo.count, bound: "neighbours ever told (one number each)"),
            TableSize(table: "pulls", size: self.pulls.count, bound: "digests asked for; dropped an hour after the last try"),
            TableSize(table: "receiptOrigins", size: self.receiptOrigins.count, bound: "\(Tuning.maxReceiptOrigins) (then cleared)"),
            TableSize(table: "directedSeen", size: self.directedSeen.count, bound: "\(Tuning.maxDirectedSeen) (then cleared)"),
            TableSize(table: "receipts", size: self.receipts.count, bound: "origins with receipts being aggregated; made at their due time"),
            TableSize(table: "routes", size: self.routes.count, bound: "origins heard within \(Int(Tuning.routeHintKeptFor / 86_400)) days (routes older than 4 neighbour timeouts are only hints for copies)"),
            TableSize(table: "replicas", size: self.replicas.count, bound: "held bundles"),
            TableSize(table: "copyBudgets", size: self.copyBudgets.count, bound: "held bundles"),
            TableSize(table: "knownLocal", size: self.knownLocal.count, bound: "held bundles"),
            TableSize(table: "keyRequests", size: self.keyExchange.requested.count, bound: "origins asked within the key request interval"),
            TableSize(table: "identityAnswers", size: self.keyExchange.answered.count, bound: "requesters answered within the key request interval"),
            TableSize(table: "refusedReported", size: self.refusedReported.count, bound: "\(Tuning.maxRefusedReported) (then cleared)"),
            TableSize(table: "reassembly", size: self.reassembler.partials.count + self.reassembler.completed.count,
                      bound: "transfers heard within the reassembly timeout (completed: at most \(Reassembler.maxCompleted))"),
            TableSize(table: "acks", size: l.reduce(0) { $0 + $1.acks.count + $1.partialAcks.count + $1.unackedFragments.count },
                      bound: "neighbours with an ack pending; cleared when it goes out"),
            TableSize(table: "airtimeSent", size: l.reduce(0) { $0 + $1.sent.count },
                      bound: "packets sent within the duty-cycle window, per duty-cycled link (its allowance over the shortest packet)"),
            TableSize(table: "helloAnswered", size: l.reduce(0) { $0 + $1.helloAnswered.count }, bound: "\(Tuning.maxHelloAnswered) per link"),
            TableSize(table: "dictionaries", size: self.dictionaryState.wanted.count + self.dictionaryState.answered.count
                + self.dictionaryState.requestsDue.count + self.dictionaryState.holdingsDue.count,
                      bound: "federation dictionary ids (2-255) wanted, and per link: ids answered, requests and holdings to send"),
        ]
    }

    /// Applies the pruning rules that are not applied where each table is used; at most every `Tuning.pruneInterval`.
    /// Only what is never read again goes: a route older than `Tuning.routeHintKeptFor` is never used, a key request
    /// older than the interval does not hold the next one back, replicas and local marks of bundles no longer held
    /// are never looked at. So the packets sent are the same with or without it.
    func pruneTables(now: Double) {
        guard now - self.lastPrune >= Tuning.pruneInterval else { return }
        self.lastPrune = now
        let timeout = self.config.neighbourTimeout
        self.routes = self.routes.filter { now - $0.value.at < Tuning.routeHintKeptFor }
        self.keyExchange.prune(now: now, interval: self.config.keyRequestInterval)
        self.peersKept.prune(now: now)
        self.neighbours = self.neighbours.filter { now - ($0.value.lastHeard.values.max() ?? -1e9) < Tuning.forgetNeighbourAfter }
        let fresh = Set(self.neighbours.values.filter { n in n.lastHeard.values.contains { now - $0 < timeout } }.map(\.id))
        self.summaries = self.summaries.filter { fresh.contains($0.key) }
        if self.partialAnnounces.count > Tuning.maxPartialAnnounces {
            let shorts = Set(fresh.map(\.short))
            self.partialAnnounces = self.partialAnnounces.filter { shorts.contains($0.key) }
        }
        // What is held, from the index (HeldIndex.swift): no read of the bundle table.
        guard !self.heldIndexStale else { return }
        self.replicas = self.replicas.filter { self.heldIndex.contains($0.key) }
        self.copyBudgets = self.copyBudgets.filter { self.heldIndex.contains($0.key) }
        self.knownLocal = self.knownLocal.filter { self.heldIndex.contains($0) }
        self.spentFloods = self.spentFloods.filter { self.heldIndex.contains($0) }
    }
}

/// When the tables were last pruned (`pruneTables`, at most every `Tuning.pruneInterval`); no other part uses it.
struct PruneClock {
    var last: Double = -1e9
}

extension Node {
    var lastPrune: Double {
        get { self.pruning.last }
        _modify { yield &self.pruning.last }
    }
}
