import CourierWire

/// SPEC 6.12, "Proven by the end-to-end tag": an origin leaves the bundles it encrypts end to end unsigned, since
/// the tag already proves to the recipient who wrote them (only the origin and the recipient hold the key, 3.5),
/// and so saves the 64-byte signature on every direct message. Relays cannot check such a bundle and carry it as
/// any directed bundle (custody); its recipient checks it.
/// The proof itself, checked by the recipient, is `BundleJudge.endToEndProof` (OriginJudgement.swift).
extension Node {
    /// Whether a bundle this node makes is origin-signed: every one, except those encrypted end to end whose kind
    /// does not require a signature (alerts, receipts, identities and failure notices always are, 6.8), unless
    /// `options.sign` asks for it (`relay send --sign`, for older nodes with `trust = peers`, SPEC 11.4).
    static func signs(kind: Kind, options: BundleOptions) -> Bool {
        options.sign || options.encryptTo == nil || Self.signatureRequired(kind)
    }
}
