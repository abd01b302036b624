import CourierMedium
import CourierWire
import Foundation
import Synchronization

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

    /// Kinds whose origin signature is required (SPEC 6.8): unsigned ones are refused wherever they arrive.
    static func signatureRequired(_ k: Kind) -> Bool { BundleJudge.signatureRequired(k) }

    /// The judge of this node's bundles now: its identity, groups, trust list and key book.
    var bundleJudge: BundleJudge {
        BundleJudge(identity: self.config.identity, groups: self.config.groups, trust: self.config.trust,
                    membership: self.membership, openMode: self.config.openMode, book: self.keyBook)
    }

    func judge(_ b: CourierBundle) -> OriginProof { self.bundleJudge.judge(b, verifies: self.verifiesRemembered) }

    func distrust(_ b: CourierBundle) -> String? { self.bundleJudge.distrust(b, verifies: self.verifiesRemembered) }

    /// `b.verifySignature(originKeys: keys)`, each signature verified once: a bundle is judged several times as it
    /// is taken in (its trust, its class, its receipt evidence), and a receipt passed on hop by hop is overheard by
    /// every relay near its path at each hop. Verifying Ed25519 signatures again was a tenth of a 1,000-relay drill's
    /// CPU. Only signatures that verify are remembered, with the exact bytes they sign (so a bundle that differs in
    /// any signed byte is verified afresh).
    func verifiesRemembered(_ b: CourierBundle, _ keys: NodePublicKeys) -> Bool {
        guard let signature = b.signature, keys.nodeID.short == b.origin else { return false }
        let v = VerifiedSignatures.Entry(keys: keys, signature: signature, input: b.signingInput())
        if self.verifiedSignatures.known.contains(v) { return true }
        guard self.shared?.signatures.verifies(v) ?? keys.verify(signature: v.signature, message: v.input) else { return false }
        if self.verifiedSignatures.known.count >= Tuning.maxVerifiedSignatures { self.verifiedSignatures.known.removeAll() }
        self.verifiedSignatures.known.insert(v)
        return true
    }

    func admittedClass(_ b: CourierBundle, proof: OriginProof) -> PriorityClass { BundleJudge.admittedClass(b, proof: proof) }

    func trusted(_ b: CourierBundle) -> Bool {
        guard let why = self.distrust(b) else { return true }
        self.reject(why)
        return false
    }
}

/// Origin signatures verified by this node (`Node.verifiesRemembered`): a memory of work done, nothing else (past
/// `Tuning.maxVerifiedSignatures` it starts again; a signature forgotten is verified again).
struct VerifiedSignatures {
    /// A signature that verified: the signer's keys, the signature and the bytes it signs.
    struct Entry: Hashable, Sendable {
        let keys: NodePublicKeys
        let signature: [UInt8]
        let input: [UInt8]

        /// By signer and signature (two messages signed alike would need a broken Ed25519): equality compares the
        /// signed bytes too.
        func hash(into h: inout Hasher) {
            h.combine(self.keys)
            h.combine(self.signature)
        }
    }
    var known: Set<Entry> = []

    /// Signatures that verified for any of the engines sharing it (`SharedWork.signatures`: a simulator's), by the
    /// same exact bytes (`verifies`), behind each engine's own memory. Ed25519 gives the same answer for the same keys,
    /// signature and signed bytes whoever asks, so an engine answers as if it had verified the signature itself; in a
    /// simulator of a thousand relays each flooded bundle was verified by every relay it reached (3% of the
    /// 1,000-relay drill's CPU). A relay's engine shares with no other and verifies for itself.
    final class Shared: Sendable {
        let known = Mutex<Set<Entry>>([])

        /// `entry.keys.verify(signature: entry.signature, message: entry.input)`, remembered when true (past
        /// `Tuning.maxVerifiedShared` entries it starts again).
        func verifies(_ entry: Entry) -> Bool {
            if self.known.withLock({ $0.contains(entry) }) { return true }
            guard entry.keys.verify(signature: entry.signature, message: entry.input) else { return false }
            self.known.withLock {
                if $0.count >= Tuning.maxVerifiedShared { $0.removeAll() }
                $0.insert(entry)
            }
            return true
        }
    }
}

/// A trust list indexed for the judge's two questions, built once per list rather than at each bundle judged (a
/// federation's list has a thousand members): is a short id a member's, and are these keys listed.
struct Membership: Sendable {
    /// The members' short ids.
    let shorts: Set<ShortID>
    /// The members' keys.
    let keys: Set<NodePublicKeys>

    /// Nil for a policy that accepts any origin.
    init?(_ trust: TrustPolicy) {
        guard case .members(let members) = trust else { return nil }
        self.shorts = Set(members.map(\.nodeID.short))
        self.keys = Set(members)
    }
}

/// What a bundle's origin signature shows here (SPEC 6.12).
public enum OriginProof: Sendable, Equatable {
    /// Signed, and the signature verifies with the keys known for its origin.
    case proven
    /// Unsigned, of a kind that may be (from an older relay, 11.4): accepted with `trust = network`, shown as not
    /// proven.
    case unproven
    /// Signed by an origin whose keys are not known here yet: cannot be checked.
    case keysUnknown
    case refused(String)
}

/// Judges a bundle from elsewhere with what one node knows (its identity and groups, its trust list, its key book),
/// without an engine: the engine's intake (`Node.bundleJudge`) and `relay import` (`ArchiveImport`) both use it.
public struct BundleJudge: Sendable {
    public let identity: NodeIdentity
    public let groups: Set<GroupID>
    public let trust: TrustPolicy
    /// The trust list indexed (nil when any origin is accepted).
    let membership: Membership?
    public let openMode: Bool
    public var book: KeyBook

    public init(identity: NodeIdentity, groups: Set<GroupID>, trust: TrustPolicy, openMode: Bool, book: KeyBook) {
        self.init(identity: identity, groups: groups, trust: trust, membership: Membership(trust), openMode: openMode, book: book)
    }

    /// A judge with the trust list already indexed (`membership` is `Membership(trust)`): the engine builds a judge
    /// at each bundle, and indexes its list once.
    init(identity: NodeIdentity, groups: Set<GroupID>, trust: TrustPolicy, membership: Membership?, openMode: Bool, book: KeyBook) {
        self.identity = identity
        self.groups = groups
        self.trust = trust
        self.membership = membership
        self.openMode = openMode
        self.book = book
    }

    var me: NodeID { self.identity.nodeID }

    /// Kinds whose origin signature is required (SPEC 6.8): unsigned ones are refused wherever they arrive.
    static func signatureRequired(_ k: Kind) -> Bool {
        switch k {
        case .alert, .receipt, .identity, .failure, .dictionary: return true
        default: return false
        }
    }

    /// Whether a bundle is for this node: to it, to one of its groups, or to everyone.
    public func isForHere(_ b: CourierBundle) -> Bool {
        switch b.destination {
        case .node(let n): return n == self.me.short
        case .group(let g): return self.groups.contains(g)
        case .everyone: return true
        }
    }

    /// Checks a bundle's origin: trust list, required signature, signature against the origin's known keys (every
    /// candidate of its short id, 2.3). Identity bundles are checked against the keys they carry (`takeIdentity`).
    public func judge(_ b: CourierBundle) -> OriginProof {
        self.judge(b, verifies: { $0.verifySignature(originKeys: $1) })
    }

    /// `judge(b)` with the signature check `verifies` (the engine's remembers signatures it verified:
    /// `Node.verifiesRemembered`); it must answer as `CourierBundle.verifySignature(originKeys:)` does.
    func judge(_ b: CourierBundle, verifies: (CourierBundle, NodePublicKeys) -> Bool) -> OriginProof {
        let members = self.membership
        if let m = members, !m.shorts.contains(b.origin) {
            return .refused("\(b.id): origin is not a federation member")
        }
        guard b.isSigned else {
            if Self.signatureRequired(b.kind) { return .refused("\(b.id): unsigned \(b.kind): its kind must be origin-signed (SPEC 6.8)") }
            if self.openMode { return .refused("\(b.id): unsigned bundle in open mode") }
            if let proof = self.endToEndProof(b, members: members) { return proof }
            if members != nil { return .refused("\(b.id): unsigned \(b.kind): trust = peers accepts only bundles whose origin signature proves them") }
            return .unproven
        }
        if b.kind == .identity { return .proven }
        var candidates = self.book.candidates(b.origin)
        if let m = members { candidates = candidates.filter { m.keys.contains($0) } }
        guard !candidates.isEmpty else { return .keysUnknown }
        return candidates.contains(where: { verifies(b, $0) }) ? .proven : .refused("\(b.id): origin signature does not verify")
    }

    /// Why a bundle is refused from its origin (nil: it is not, though it may wait for its origin's keys).
    public func distrust(_ b: CourierBundle) -> String? {
        self.distrust(b, verifies: { $0.verifySignature(originKeys: $1) })
    }

    /// `distrust(b)` with the signature check `verifies` (as `judge(_:verifies:)`).
    func distrust(_ b: CourierBundle, verifies: (CourierBundle, NodePublicKeys) -> Bool) -> String? {
        if case .refused(let why) = self.judge(b, verifies: verifies) { return why }
        return nil
    }

    /// The proof of an unsigned end-to-end bundle's origin (nil for any other bundle: its signature decides).
    /// For this node: proven when the tag verifies with the keys known here for the origin (with `trust = peers`,
    /// its listed keys); with none known yet it is read once they come (kept unread, keys asked for, 9.1); a tag
    /// that fails is given up on as unreadable (or refused with `trust = peers`). For another node: not proven,
    /// carried on (custody), as a signed bundle from an origin whose keys are unknown is (SPEC 6.12, EndToEndProof.swift).
    func endToEndProof(_ b: CourierBundle, members: Membership?) -> OriginProof? {
        guard b.isEncrypted, !b.isSigned, case .node = b.destination else { return nil }
        guard self.isForHere(b) else { return .unproven }
        var candidates = self.book.candidates(b.origin).filter { $0.nodeID != self.me || b.origin == self.me.short }
        if let m = members { candidates = candidates.filter { m.keys.contains($0) } }
        if candidates.contains(where: { b.endToEndVerifies(recipient: self.identity, originKeys: $0) }) {
            return .proven
        }
        if members != nil {
            return .refused("\(b.id): unsigned and its end-to-end tag does not verify with the listed keys of \(b.origin): trust = peers accepts only proven origins")
        }
        return .unproven
    }

    /// The class a bundle from the network is queued and sent in (SPEC 6.9): its P override may lower its kind's
    /// class freely, but raise it only when its origin is proven, and never above its kind's bound: only alerts are
    /// urgent; aid requests, offers, grievances and texts at most aid; everything else at most normal. So a member
    /// cannot make bulk outrank alerts, or push custody out of the queue, by writing a priority in a header.
    public static func admittedClass(_ b: CourierBundle, proof: OriginProof) -> PriorityClass {
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

    /// What reading a bundle for this node gives.
    public enum Reading: Sendable {
        case content([UInt8])
        /// End-to-end encrypted by an origin whose keys are not known here.
        case needKeys
        /// Compressed with a federation dictionary this node does not hold (yet).
        case needDictionary(UInt8)
        case unreadable(String)
    }

    /// The content of a bundle for this node: decrypted with each candidate origin key (2.3) and decompressed. A
    /// receipt or failure notice whose content does not parse as whole entries is malformed (SPEC 6.8) and
    /// unreadable: not delivered, given up on and reported like any bundle this node cannot read, and nothing of it
    /// acted on.
    public func read(_ b: CourierBundle, compressor: BodyCompressor) -> Reading {
        let reading = self.content(b, compressor: compressor)
        guard case .content(let c) = reading, let why = Self.malformed(b.kind, content: c) else { return reading }
        return .unreadable(why)
    }

    /// Why a receipt's or failure notice's content is malformed (SPEC 6.8: it does not parse as whole entries), nil
    /// when it parses or the kind has no entries to parse. An unknown failure reason is not malformed.
    public static func malformed(_ kind: Kind, content: [UInt8]) -> String? {
        do {
            switch kind {
            case .receipt: _ = try ReceiptContent.decode(content)
            case .failure: _ = try FailureContent.decode(content)
            default: break
            }
            return nil
        } catch {
            return "malformed: \(error)"
        }
    }

    private func content(_ b: CourierBundle, compressor: BodyCompressor) -> Reading {
        guard b.isEncrypted else {
            do { return .content(try b.content(compressor: compressor)) } catch {
                if case .unknownDictionary(let id) = error { return .needDictionary(id) }
                return .unreadable("cannot read its content: \(error)")
            }
        }
        let candidates = self.book.candidates(b.origin).filter { $0.nodeID != self.me || b.origin == self.me.short }
        guard !candidates.isEmpty else { return .needKeys }
        var problem: WireError = .decryptionFailed
        for k in candidates {
            do { return .content(try b.content(compressor: compressor, recipient: self.identity, originKeys: k)) } catch {
                if case .unknownDictionary(let id) = error { return .needDictionary(id) }
                problem = error
            }
        }
        return .unreadable("cannot decrypt it with the keys of \(b.origin) known here (\(problem))")
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
