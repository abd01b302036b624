import CourierWire

/// SPEC 6.12, "Proven by the end-to-end tag": an origin leaves the bundles it encrypts end to end unsigned, since
/// the tag already proves to the recipient who wrote them (only the origin and the recipient hold the key, 3.5),
/// and so saves the 64-byte signature on every direct message. Relays cannot check such a bundle and carry it as
/// any directed bundle (custody); its recipient checks it.
extension Node {
    /// Whether a bundle this node makes is origin-signed: every one, except those encrypted end to end whose kind
    /// does not require a signature (alerts, receipts, identities and failure notices always are, 6.8), unless
    /// `options.sign` asks for it (`relay send --sign`, for older nodes with `trust = peers`, SPEC 11.4).
    static func signs(kind: Kind, options: BundleOptions) -> Bool {
        options.sign || options.encryptTo == nil || Self.signatureRequired(kind)
    }

    /// The proof of an unsigned end-to-end bundle's origin (nil for any other bundle: its signature decides).
    /// For this node: proven when the tag verifies with the keys known here for the origin (with `trust = peers`,
    /// its listed keys); with none known yet it is read once they come (kept unread, keys asked for, 9.1); a tag
    /// that fails is given up on as unreadable (or refused with `trust = peers`). For another node: not proven,
    /// carried on (custody), as a signed bundle from an origin whose keys are unknown is.
    func endToEndProof(_ b: CourierBundle, members: [NodePublicKeys]?) -> OriginProof? {
        guard b.isEncrypted, !b.isSigned, case .node = b.destination else { return nil }
        guard self.isForMe(b) else { return .unproven }
        var candidates = (self.directory[b.origin] ?? []).compactMap { self.keys[$0] }
            .filter { $0.nodeID != self.me || b.origin == self.me.short }
        if let m = members { candidates = candidates.filter { m.contains($0) } }
        if candidates.contains(where: { b.endToEndVerifies(recipient: self.config.identity, originKeys: $0) }) {
            return .proven
        }
        if members != nil {
            return .refused("\(b.id): unsigned and its end-to-end tag does not verify with the listed keys of \(b.origin): trust = peers accepts only proven origins")
        }
        return .unproven
    }
}
