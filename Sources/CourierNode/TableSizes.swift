import CourierWire

extension Node {
    /// Entries in each of the engine's in-memory tables, by name (for `courier-bench engine` and tests of their
    /// bounds): read only. Per-link tables are summed over the links.
    public var tableSizes: [(name: String, entries: Int)] {
        let links = Array(self.links.values)
        return [
            ("neighbours", self.neighbours.count),
            ("neighbours.lastHeard", self.neighbours.values.reduce(0) { $0 + $1.lastHeard.count }),
            ("keys", self.keys.count),
            ("directory", self.directory.values.reduce(0) { $0 + $1.count }),
            ("partialAnnounces", self.partialAnnounces.count),
            ("links", self.links.count),
            ("links.acks", links.reduce(0) { $0 + $1.acks.values.reduce(0) { $0 + $1.count } }),
            ("links.partialAcks", links.reduce(0) { $0 + $1.partialAcks.values.reduce(0) { $0 + $1.count } }),
            ("links.unackedFragments", links.reduce(0) { $0 + $1.unackedFragments.values.reduce(0) { $0 + $1.count } }),
            ("links.helloAnswered", links.reduce(0) { $0 + $1.helloAnswered.count }),
            ("links.pendingSummary", links.reduce(0) { $0 + $1.pendingSummary.count }),
            ("transfers", self.transfers.count),
            ("replayWindows", self.replayWindows.count),
            ("floods", self.floods.count),
            ("summaries", self.summaries.count),
            ("holders", self.holders.count),
            ("holders.nodes", self.holders.values.reduce(0) { $0 + $1.count }),
            ("heardOf", self.heardOf.count),
            ("told", self.told.count),
            ("told.nodes", self.told.values.reduce(0) { $0 + $1.count }),
            ("pulls", self.pulls.count),
            ("receiptOrigins", self.receiptOrigins.count),
            ("directedSeen", self.directedSeen.count),
            ("receipts", self.receipts.values.reduce(0) { $0 + $1.ids.count }),
            ("routes", self.routes.count),
            ("replicas", self.replicas.count),
            ("reassembler.partials", self.reassembler.partials.count),
            ("reassembler.completed", self.reassembler.completed.count),
            ("knownLocal", self.knownLocal.count),
            ("keyRequests", self.keyRequests.count),
            ("identityAnswers", self.identityAnswers.count),
            ("keysArrived", self.keysArrived.count),
            ("refusedReported", self.refusedReported.count),
        ]
    }
}
