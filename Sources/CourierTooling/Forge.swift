import CourierWire
import Foundation

/// What a federation member can put on the air (SPEC 3.6): bundles claiming any origin, signed with any key or not
/// at all, carrying any priority override, sealed in packets under any member's packet key (every member can derive
/// every member's). `courier-dev forge` and the hostile-member tests use it; it is a red-team tool, never linked
/// into the relay.
public enum Forge {
    /// One forged bundle.
    public struct Spec: Sendable {
        public var kind: Kind
        /// The origin the bundle claims.
        public var origin: ShortID
        public var destination: Destination
        public var content: [UInt8]
        /// Courier minutes (1.6); nil: now.
        public var created: UInt32?
        public var sequence: UInt32
        public var lifetime: UInt32?
        /// Written as the P override even when it equals the kind's default (a real origin would omit it).
        public var priority: PriorityClass?
        public var hopLimit: UInt8 = 8
        public var reference: BundleID?
        /// Extensions written in the header (inside what the signature covers), in this order.
        public var extensions: [Extension] = []
        /// Signs with this key (the claimed origin's real key proves it; any other key is a forgery); nil: unsigned.
        public var signer: NodeIdentity?

        public init(kind: Kind, origin: ShortID, destination: Destination, content: [UInt8], sequence: UInt32,
                    signer: NodeIdentity? = nil) {
            self.kind = kind
            self.origin = origin
            self.destination = destination
            self.content = content
            self.sequence = sequence
            self.signer = signer
        }
    }

    /// Encodes a forged bundle: the content compressed as an origin would, the claimed origin and priority written
    /// as given, signed with `signer` over the final header when one is given.
    public static func bundle(_ s: Spec, now: Date = Date(), compressor: BodyCompressor = BodyCompressor()) throws -> CourierBundle {
        let created = s.created ?? CourierTime.minutes(unixSeconds: Int64(now.timeIntervalSince1970))
        var opts = BundleOptions(kind: s.kind, lifetime: s.lifetime, sign: false, hopLimit: s.hopLimit)
        opts.reference = s.reference
        opts.extensions = s.extensions
        // Made under a throwaway identity, then given the claimed origin (and the override, and a signature).
        var b = try CourierBundle.make(kind: s.kind, destination: s.destination, content: s.content, origin: NodeIdentity(),
                                       created: created, sequence: s.sequence, options: opts, compressor: compressor)
        b.id = try BundleID(origin: s.origin, created: created, sequence: s.sequence)
        b.priorityOverride = s.priority
        if let signer = s.signer {
            b.signature = [UInt8](repeating: 0, count: 64)
            b.signature = signer.sign(b.signingInput())
        }
        return b
    }

    /// Packets from `member` (its identity gives the sender short id and packet key): first an announce-form
    /// packet with the member's announce (so a relay that never heard it can read the rest), then one ordinary
    /// packet per record. Records are not cut to any MTU: a receiver takes any packet up to 70,000 bytes (4.6).
    public static func packets(_ records: [Record], member: NodeIdentity, name: String?, networkKey: NetworkKey,
                               open: Bool = false, firstCounter: UInt32, announce: Bool = true) -> [[UInt8]] {
        let sealer = PacketSealer(networkKey: networkKey, sender: member.nodeID, open: open)
        var out: [[UInt8]] = []
        var counter = firstCounter
        if announce {
            let a = AnnounceRecord(capabilities: 1, signingKey: member.publicKeys.signing, agreementKey: member.publicKeys.agreement, name: name)
            out.append(sealer.seal([.announce(a)], counter: counter, announceSalt: UInt32.random(in: 0...UInt32.max)))
            counter &+= 1
        }
        for r in records {
            out.append(sealer.seal([r], counter: counter))
            counter &+= 1
        }
        return out
    }

    /// The record that carries a bundle to one neighbour (`nextHop`, with a transfer number, so it takes custody
    /// and acknowledges) or to everyone in range.
    public static func record(_ b: CourierBundle, nextHop: ShortID?, transfer: UInt32) -> Record {
        .bundle(BundleRecord(nextHop: nextHop, transfer: nextHop == nil ? nil : transfer, bundle: b.encode()))
    }

    /// A packet counter that grows between runs of the tool (a thousand a second, so two runs a moment apart do not
    /// overlap), so a relay's replay window (4.8) takes the packets of a later run.
    public static func counterNow() -> UInt32 {
        UInt32(truncatingIfNeeded: Int64(Date().timeIntervalSince1970 * 1_000))
    }
}
