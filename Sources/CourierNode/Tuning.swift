/// The engine's tuning constants that are not per-node configuration (`NodeConfig`), each with why it has its value.
enum Tuning {
    /// How often the pruning rules of `Node.pruneTables` run: tables grow by at most ten minutes' traffic between runs.
    static let pruneInterval: Double = 600
    /// A neighbour not heard for a week is forgotten (its round-trip estimate is stale; heard again, it is a new
    /// contact as after any absence longer than the neighbour timeout).
    static let forgetNeighbourAfter: Double = 7 * 86_400
    /// Announces being assembled or remembered for their names: beyond this many, only fresh neighbours' are kept
    /// (an announce fits one packet on every link we know; a flood of fake short ids must not grow memory).
    static let maxPartialAnnounces = 1_024
}
