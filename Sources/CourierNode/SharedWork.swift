import CourierWire

/// Work the engines of one process can share because each would get the same answer alone: packets opened lately
/// (`OpenedPackets`) and origin signatures verified (`VerifiedSignatures.Shared`). Whoever runs several engines
/// owns one and hands it to each (`Node.init(shared:)`), as it hands them one `BodyCompressor`: a simulator of a
/// thousand relays, where a dozen of them open every packet sent and every relay checks each flood's signature.
/// A relay runs one engine and gives none: it keeps no plaintext of packets it opened, and nothing here changes
/// what an engine decides.
public final class SharedWork: Sendable {
    /// Packets opened lately: for the engines' openers and any other opener of the same packets (`PacketOpener.recent`).
    public let opened = OpenedPackets()
    let signatures = VerifiedSignatures.Shared()

    public init() {}
}
