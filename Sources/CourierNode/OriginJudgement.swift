import CourierMedium
import CourierWire
import Foundation

/// Origin judgement and trust: what a bundle's origin signature proves here, the trust list, the class a bundle is
/// admitted in, and refusals reported once (`refusedReported`, `ReportedOnce`) (SPEC 6.8, 6.9, 6.12).
extension Node {
    /// Reports a bundle refused (untrusted origin, bad signature) once: in the change feed, and to its origin when
    /// it was addressed to one node (the hop was acknowledged; without a word it would be lost in silence).
    func refuse(_ b: CourierBundle, why: String, from: String?, now: Double) {
        guard self.refusedReported.first(b.id) else { return }
        do { try self.store.refused(b, reason: why, from: from, now: Int64(now), unsigned: !b.isSigned) } catch { self.rejectStorage("cannot record \(b.id) refused: \(error)", error) }
        if case .node = b.destination { self.notifyFailure(b.id, kind: b.kind, .refused, now: now) }
    }

    /// What a bundle's origin signature shows here (SPEC 6.12).
    enum OriginProof: Equatable {
        /// Signed, and the signature verifies with the keys known for its origin.
        case proven
        /// Unsigned, of a kind that may be (from an older relay, 11.4): accepted with `trust = network`, shown as not
        /// proven.
        case unproven
        /// Signed by an origin whose keys are not known here yet: cannot be checked.
        case keysUnknown
        case refused(String)
    }

    /// Kinds whose origin signature is required (SPEC 6.8): unsigned ones are refused wherever they arrive.
    static func signatureRequired(_ k: Kind) -> Bool {
        switch k {
        case .alert, .receipt, .identity, .failure, .dictionary: return true
        default: return false
        }
    }

    /// Checks a bundle's origin: trust list, required signature, signature against the origin's known keys (every
    /// candidate of its short id, 2.3). Identity bundles are checked against the keys they carry (`takeIdentity`).
    func judge(_ b: CourierBundle) -> OriginProof {
        var members: [NodePublicKeys]? = nil
        if case .members(let m) = self.config.trust { members = m }
        if let m = members, !m.contains(where: { $0.nodeID.short == b.origin }) {
            return .refused("\(b.id): origin is not a federation member")
        }
        guard b.isSigned else {
            if Self.signatureRequired(b.kind) { return .refused("\(b.id): unsigned \(b.kind): its kind must be origin-signed (SPEC 6.8)") }
            if self.config.openMode { return .refused("\(b.id): unsigned bundle in open mode") }
            if let proof = self.endToEndProof(b, members: members) { return proof }
            if members != nil { return .refused("\(b.id): unsigned \(b.kind): trust = peers accepts only bundles whose origin signature proves them") }
            return .unproven
        }
        if b.kind == .identity { return .proven }
        var candidates = (self.directory[b.origin] ?? []).compactMap { self.keys[$0] }
        if let m = members { candidates = candidates.filter { m.contains($0) } }
        guard !candidates.isEmpty else { return .keysUnknown }
        return candidates.contains(where: { b.verifySignature(originKeys: $0) }) ? .proven : .refused("\(b.id): origin signature does not verify")
    }

    /// Why a bundle is refused from its origin (nil: it is not, though it may wait for its origin's keys).
    func distrust(_ b: CourierBundle) -> String? {
        if case .refused(let why) = self.judge(b) { return why }
        return nil
    }

    /// The class a bundle from the network is queued and sent in (SPEC 6.9): its P override may lower its kind's
    /// class freely, but raise it only when its origin is proven, and never above its kind's bound: only alerts are
    /// urgent; aid requests, offers, grievances and texts at most aid; everything else at most normal. So a member
    /// cannot make bulk outrank alerts, or push custody out of the queue, by writing a priority in a header.
    func admittedClass(_ b: CourierBundle, proof: OriginProof) -> PriorityClass {
        let normal = b.kind.defaultPriority
        let claimed = b.priority
        if claimed >= normal { return claimed }
        guard proof == .proven else { return normal }
        let bound: PriorityClass
        switch b.kind {
        case .alert: bound = .urgent
        case .aidRequest, .aidOffer, .grievance, .text: bound = .aid
        default: bound = .normal
        }
        return max(claimed, min(bound, normal))
    }

    func trusted(_ b: CourierBundle) -> Bool {
        guard let why = self.distrust(b) else { return true }
        self.reject(why)
        return false
    }
}

/// Bundles already reported refused: copies of a flood from an untrusted origin keep coming, and each is said once.
/// Bounded: past `Tuning.maxRefusedReported` it starts again (a copy after that is reported again, nothing worse).
struct ReportedOnce {
    private(set) var ids: Set<BundleID> = []

    /// Whether `id` is reported now for the first time (and remembered).
    mutating func first(_ id: BundleID) -> Bool {
        guard self.ids.insert(id).inserted else { return false }
        if self.ids.count > Tuning.maxRefusedReported { self.ids = [id] }
        return true
    }

    var count: Int { self.ids.count }
}
