import enum CourierStore.StoreError
import CourierWire

/// Makes this node's bundles: origin-signed (SPEC 6.8) unless encrypted end to end (6.12), numbered from the store's
/// sequence (never reused, even after a restore), stored as local with custody. The engine makes its own with it
/// (`Node.submit`, receipts, identities, failure notices); `relay send` and the demo use it without an engine: the
/// running relay adopts what they stored from the change feed and sends it.
public struct BundleMaker {
    public let identity: NodeIdentity
    /// The groups delivered to this node's inbox (a bundle to one of them is for this node too).
    public let groups: Set<GroupID>
    public let store: any NodeStorage
    let compressor: BodyCompressor

    public init(identity: NodeIdentity, groups: Set<GroupID> = [], store: any NodeStorage, compressor: BodyCompressor = BodyCompressor()) {
        self.identity = identity
        self.groups = groups
        self.store = store
        self.compressor = compressor
    }

    /// Makes, signs and stores a bundle. Throws `StoreError.quotaFull` when it cannot be queued.
    public func make(kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions?, now: Double) throws -> CourierBundle {
        try self.makeReporting(kind: kind, destination: destination, content: content, options: options, now: now).bundle
    }

    /// `make`, also returning what the quota pushed out to make room (the engine takes them out of its index).
    func makeReporting(kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions?, now: Double) throws -> (bundle: CourierBundle, evicted: [BundleID]) {
        var opts = options ?? BundleOptions(kind: kind)
        // Alerts go as far as the hop limit allows (SPEC 6.10): on a regional mesh the farthest relays are more than
        // the default 8 hops away (regional-200: 8 hops at the least, more on the paths floods really take).
        // (A plain alert: a live drill, with its mark, keeps 8, so every answer's hop count is exact, SPEC 6.17.)
        if kind == .alert && opts.extensions.isEmpty && opts.hopLimit == BundleOptions(kind: kind).hopLimit {
            opts.hopLimit = CourierBundle.maxHopLimit
        }
        // Origin-signed (SPEC 6.8: 64 bytes each), so receivers can prove who wrote it (packet keys prove only
        // membership, 3.6), unless encrypted end to end: its tag proves that to its recipient (6.12, EndToEndProof).
        opts.sign = Node.signs(kind: kind, options: opts)
        // A federation dictionary both ends hold may give a smaller body (SPEC 7.6); dictionary 1 always works.
        if opts.dictionaries.isEmpty {
            opts.dictionaries = try DictionaryChoice.candidates(kind: kind, destination: destination, me: self.identity.nodeID.short,
                                                                store: self.store, shelf: self.compressor.shelf, now: now)
        }
        // The recipient's last dictionaries record said it reads bare blocks (SPEC 11.11): 4 B less a dictionary body.
        if !opts.bareBlocks { opts.bareBlocks = try BareChoice.allowed(destination: destination, store: self.store) }
        let seq = try self.store.nextSequence()
        let b = try CourierBundle.make(
            kind: kind, destination: destination, content: content, origin: self.identity,
            created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: seq, options: opts, compressor: self.compressor)
        if case .stored(_, let evicted) = try self.store.insert(b, now: Int64(now), local: true, custody: true, from: nil) { return (b, evicted) }
        return (b, [])
    }

    /// Whether a bundle is for this node: to it, to one of its groups, or to everyone.
    public func isForHere(_ b: CourierBundle) -> Bool {
        switch b.destination {
        case .node(let n): return n == self.identity.nodeID.short
        case .group(let g): return self.groups.contains(g)
        case .everyone: return true
        }
    }

    /// What `relay send` does: makes and stores the bundle, and puts it in this node's inbox too when it is for this
    /// node (as the engine does with its own submissions; its origin is this node, so it is proven). Returns its id.
    public func submit(kind: Kind, destination: Destination, content: [UInt8], options: BundleOptions?, now: Double) throws -> BundleID {
        let b = try self.make(kind: kind, destination: destination, content: content, options: options, now: now)
        if self.isForHere(b), b.kind != .identity, !b.extensions.contains(where: { $0.isCritical }) {
            _ = try self.store.deliver(b, content: content, now: Int64(now), proven: true)
        }
        return b.id
    }
}
