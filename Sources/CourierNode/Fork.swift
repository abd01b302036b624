import enum CourierStore.StoreError
import CourierWire

extension Node {
    /// A copy of `other` as it stands between two inputs, on `store` (a copy of its store, made at the same moment)
    /// and `compressor` (one with a copy of its dictionary shelf): given the same inputs from then on, each gives the
    /// same outputs. A simulator forks a run with it (`DrillSimulator.forkWithoutDisruptions`). Every stored property
    /// is copied (the parts are values); NodeForkTests checks that none is left out, property by property.
    public convenience init(copying other: Node, store: any NodeStorage, compressor: BodyCompressor) throws(StoreError) {
        try self.init(config: other.config, store: store, links: [], now: 0, compressor: compressor, shared: other.shared)
        self.config = other.config
        self.neighbours = other.neighbours
        self.keyBook = other.keyBook
        self.membership = other.membership
        self.partialAnnounces = other.partialAnnounces
        self.links = other.links
        self.linkOrder = other.linkOrder
        self.transfers = other.transfers
        self.transferNumbering = other.transferNumbering
        self.replayGuard = other.replayGuard
        self.peersKept = other.peersKept
        self.floods = other.floods
        self.spentFloods = other.spentFloods
        self.floodRelayAsked = other.floodRelayAsked
        self.packetSNR = other.packetSNR
        self.floodGaps = other.floodGaps
        self.floodGapsDue = other.floodGapsDue
        self.heardSummaries = other.heardSummaries
        self.holders = other.holders
        self.heardOf = other.heardOf
        self.toldUpTo = other.toldUpTo
        self.pulls = other.pulls
        self.receiptOrigins = other.receiptOrigins
        self.directedSeen = other.directedSeen
        self.unroutable = other.unroutable
        self.receipts = other.receipts
        self.receiptParts = other.receiptParts
        self.routes = other.routes
        self.cameFrom = other.cameFrom
        self.handBacks = other.handBacks
        self.feedPosition = other.feedPosition
        self.arrived = other.arrived
        self.replicas = other.replicas
        self.copyBudgets = other.copyBudgets
        self.copyTakenBack = other.copyTakenBack
        self.arrivingCopies = other.arrivingCopies
        self.reassembler = other.reassembler
        self.packetCounters = other.packetCounters
        self.runHeads = other.runHeads
        self.rng = other.rng
        self.probeRNG = other.probeRNG
        self.lastHousekeeping = other.lastHousekeeping
        self.pruning = other.pruning
        self.rerouteDue = other.rerouteDue
        self.quiet = other.quiet
        self.transmissionPaused = other.transmissionPaused
        self.sealer = other.sealer
        self.opener = other.opener
        self.networkKeys = other.networkKeys
        self.outputs = other.outputs
        self.knownLocal = other.knownLocal
        self.keyExchange = other.keyExchange
        self.dictionaryState = other.dictionaryState
        self.refusedReported = other.refusedReported
        self.verifiedSignatures = other.verifiedSignatures
        self.heldIndex = other.heldIndex
        self.heldIndexStale = other.heldIndexStale
        self.routeWalk = other.routeWalk
        self.stats = other.stats
    }
}
