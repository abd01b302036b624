import CourierLinks
import CourierWire

/// Who a node accepts bundles from.
public enum TrustPolicy: Sendable {
    /// Any origin; signatures are checked when the origin's keys are known.
    case open
    /// Only these nodes (a federation's membership list): bundles from other origins are dropped.
    case members([NodePublicKeys])
}

/// A link as the engine sees it: a name, what it can carry, and its airtime budget.
public struct LinkInfo: Sendable {
    public var name: String
    public var properties: LinkProperties
    /// Fraction of time the node may transmit on this link (0.01 = 1%, 0.1 = 10% as in EU868 sub-bands; nil: no limit).
    public var dutyCycle: Double?
    public init(name: String, properties: LinkProperties, dutyCycle: Double? = nil) {
        self.name = name
        self.properties = properties
        self.dutyCycle = dutyCycle
    }
}

public struct NodeConfig: Sendable {
    public var identity: NodeIdentity
    public var networkKey: NetworkKey
    public var name: String?
    public var trust: TrustPolicy = .open
    /// Groups whose bundles this node delivers to its inbox.
    public var groups: Set<GroupID> = []
    /// Open mode (amateur bands): packets readable, authenticated; every bundle origin-signed.
    public var openMode = false
    /// Seconds between announces (jittered ±25%).
    public var announceInterval: Double = 900
    /// A neighbour not heard for this long is away.
    public var neighbourTimeout: Double = 1_800
    /// Least seconds between two summaries on one link (a contact always gets one at once).
    public var summaryInterval: Double = 600
    /// Fragments in flight to one neighbour before an acknowledgement.
    public var window = 8
    /// Flooding: rebroadcast after a random delay of up to this many packet airtimes (at least `minFloodDelay`).
    public var floodDelayAirtimes: Double = 6
    public var minFloodDelay: Double = 0.05
    /// Flooding: do not rebroadcast after hearing this many copies during the delay.
    public var suppressionThreshold = 2
    /// Seconds receipts wait to be aggregated into one bundle per origin.
    public var receiptDelay: Double = 60
    /// Seconds a receiver waits before acknowledging, so acks for several fragments share a packet.
    public var ackDelay: Double = 0.2
    public var reassemblyTimeout: Double = 3_600
    public var hopLimit: UInt8 = 8

    public init(identity: NodeIdentity, networkKey: NetworkKey, name: String? = nil) {
        self.identity = identity
        self.networkKey = networkKey
        self.name = name
    }
}
