import struct CourierStore.InboxMessage
import enum CourierStore.StoreError
import CourierWire

/// What the engine asks its runtime to do, or tells it.
public enum NodeOutput: Sendable, Equatable {
    /// Transmit these bytes on this link. `carrying` lists the bundles with data in the packet (for statistics).
    case send(link: String, packet: [UInt8], carrying: [BundleID])
    /// A bundle reached this node's inbox (already stored there).
    case delivered(InboxMessage)
    case event(NodeEvent)
}

public enum NodeEvent: Sendable, Equatable {
    /// A neighbour was heard for the first time, or again after being away.
    case neighbourHeard(NodeID, name: String?, link: String)
    case bundleStored(BundleID, from: ShortID?)
    case duplicate(BundleID)
    /// A neighbour acknowledged a directed bundle: custody moved on.
    case custodyReleased(BundleID, to: ShortID)
    /// A receipt says `by` has `id` (for an alert: has seen it; for a directed bundle: it was delivered).
    case receipt(BundleID, by: ShortID)
    /// An aid offer answering one of our requests.
    case offerForRequest(request: BundleID, offer: BundleID)
    /// A flood rebroadcast was suppressed: enough neighbours were heard rebroadcasting.
    case suppressed(BundleID)
    /// Something was refused: untrusted origin, bad signature, failed authentication, expired.
    case rejected(String)
    /// A bundle for this node that it cannot read yet (its origin's keys are unknown): kept, keys asked for.
    case waiting(BundleID, reason: String)
    /// A bundle given up on (expired in our custody, refused, unreadable), with the reason; in the change feed too.
    case gaveUp(BundleID, reason: String)
    /// A bundle whose lifetime passed after it was passed on or delivered (a flood's end, nothing lost).
    case expired(BundleID)
    /// A failure notice: `by` gave up on `id`, one of this node's bundles.
    case failureNotice(BundleID, reason: FailureReason, by: ShortID)
    /// The network keys changed (a scheduled switch, or the operator changed the rotation): packets are now sealed
    /// under `sending` and accepted under each of `accepting` (fingerprints, SPEC 3.1).
    case networkKeys(sending: String, accepting: [String])
    /// A node's keys, learnt from its identity bundle (not from an announce heard on a link).
    case keysLearnt(NodeID, name: String?)
    /// A federation dictionary matter (SPEC 7.6): one received and kept, asked for, or sent on request.
    case dictionary(String)
    /// A next hop stopped acknowledging a bundle in our custody: kept, tried again another way.
    case stalled(BundleID, to: ShortID)
    /// A packet from a link was refused as a whole, before any record in it was used (for the link's health
    /// counters and the debug log; not a warning each: another federation on the channel sends many).
    case packetRefused(link: String, reason: PacketRefusal, detail: String)
    /// A write or read the engine needed failed (disk full, I/O error). `operation` names what was being done
    /// ("store a received fragment", "reserve packet counters", …); nothing already stored is lost. The runtime
    /// shows it in the log and `relay status` and pauses transmission on the link it names, if any, until storage
    /// works again.
    case storageFailed(operation: String, link: String?, error: StoreError)
    /// The packet the next output sends on `link` carries this node's announce (or a part of one, SPEC 9).
    /// `withSummary`: a periodic announce that carried all of this node's summary (a packet going out anyway, not
    /// one sent for the summary). For the simulator's and benchmarks' accounting; the packet itself says the rest.
    case announced(link: String, withSummary: Bool)
}

/// Why a whole packet was refused.
public enum PacketRefusal: String, Sendable, Equatable {
    /// Its authentication tag did not verify (another federation or network key, or damage the link's own check
    /// missed), or it did not decode.
    case authentication
    /// From a node whose keys this one has not learnt yet: it asks for announces (at most once a minute).
    case unknownSender = "unknown sender"
    /// A packet counter this node already accepted from that sender: a copy (a digipeater, an echo) or a replay.
    case replay
}
