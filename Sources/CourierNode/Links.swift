import CourierMedium
import CourierWire
import Foundation

/// Links: each link's state (up, announce and summary timers, pending acks, hello bucket, the noisy-line record sizes),
/// and links coming up and going down.
extension Node {
    struct LinkState {
        var info: LinkInfo
        var up = false
        var busyUntil: Double = 0
        /// The end of the latest carrier reported by `channelBusy` (someone else transmitting).
        var carrierUntil: Double = 0

        /// A carrier heard until `until` (`channelBusy`): the channel is busy until then, if that is later than the
        /// end already known. Whether it was.
        mutating func carrier(until: Double) -> Bool {
            guard until > self.busyUntil else { return false }
            self.busyUntil = until
            self.carrierUntil = until
            return true
        }
        /// Our own packets within the duty-cycle window (Airtime.swift; empty without a duty cycle).
        var sent = AirtimeLedger()
        var nextAnnounce: Double = 0
        /// How much announces (and summaries) are spaced out on this link, as of its last announce (ChannelBudget.swift).
        var stretch: Double = 1
        var announceDue = false
        /// The rest of an announce split over several packets because the whole one does not fit the MTU (9.2).
        var announceParts: [AnnounceRecord] = []
        /// Rests of bundles cut at the end of a packet (SPEC 5.12), to go first in the next one.
        var rests: [PendingRest] = []
        var lastAnnounced: Double = -1e9
        /// The first announce after start carries the hello bit: neighbours that may have forgotten us announce
        /// back at once, so both sides can read each other again after a restart.
        var helloSent = false
        /// When we last asked for announces because a packet came from a node we cannot read.
        var lastHelloRequest: Double = -1e9
        /// When we last announced back to each sender of a hello.
        var helloAnswered: [ShortID: Double] = [:]
        /// Announces this link may still send in answer to hellos (a bucket of `helloAnswerBurst`, one more every
        /// `helloAnswerRefill` seconds), when it was last refilled, and a hello waiting for the bucket (SPEC 9, rule 7).
        var helloTokens = Node.helloAnswerBurst
        var helloRefilled: Double = 0
        var helloAnswerWaiting = false
        /// When the announce answering a hello goes (`Tuning.helloAnswerDelay` after the hello; infinity: none pending).
        var helloAnswerAt: Double = .infinity
        /// The pending summary rides with the periodic announce.
        var summaryWithAnnounce = false
        /// When the link came up, and how many times the hello was repeated because nobody answered it (on a
        /// half-duplex channel the first answer can collide with our next packet).
        var upSince: Double = 0
        var helloRetries = 0
        var nextHelloRetry: Double = .infinity
        var lastSummary: Double = -1e9
        var summaryDue: Double? = nil
        var pendingSummary: [[UInt32]] = []
        /// Returned neighbours we take turns for on this link (`Node.startTurns`).
        var turnsFor: Set<NodeID> = []
        /// Acks to send: neighbour short id -> transfer -> entry, and when.
        var acks: [ShortID: [UInt32: AckEntry]] = [:]
        var ackDue: Double? = nil
        /// Transfers whose pending ack shows them incomplete (those wait for `ackDelay`; complete ones may ride early
        /// in a packet that goes out anyway).
        var partialAcks: [ShortID: Set<UInt32>] = [:]
        /// Fragments of each incomplete transfer heard since its last ack went out: a window of them is acknowledged
        /// at once, even while more keep coming (SPEC 8.5 rule 1).
        var unackedFragments: [ShortID: [UInt32: Int]] = [:]
        /// Directed records sent on this link and acknowledged (1) or timed out (0), and their packets' sizes, as
        /// moving averages: a noisy line's loss per byte, from which the size of new fragments is chosen.
        var recordSuccess: Double = 1
        var recordBytes: Double = 0
        var recordOutcomes = 0
        /// Heal probes (SPEC 9 rule 8, `healProbesDue`): when the next may go, whether the last look found a lost
        /// neighbour (the engine then wakes for the next), and the lost neighbours probes asked for since each was last
        /// heard: heard again, what waited for one goes at once (`heard`).
        var nextHealProbe: Double = 0
        var healProbing = false
        var probedFor: Set<NodeID> = []
    }

    public func linkUp(_ name: String, now: Double) -> [NodeOutput] {
        self.links[name]?.up = true
        self.links[name]?.announceDue = true
        // The summary goes in the hello's packet: a second packet a moment later would meet the neighbour's
        // answer on a half-duplex channel.
        self.links[name]?.summaryDue = now
        self.links[name]?.upSince = now
        self.links[name]?.helloRetries = 0
        self.links[name]?.nextHelloRetry = now + self.rng.uniform(Tuning.helloRetryDelay.min, Tuning.helloRetryDelay.max)
        self.rerouteDue = true
        return self.tick(now: now)
    }

    public func linkDown(_ name: String, now: Double) {
        self.links[name]?.up = false
        // Outstanding fragments on that link go out again when it is back.
        for (k, var t) in self.transfers where k.link == name {
            t.sent.subtract(t.sent.subtracting(t.acked))
            t.due = now
            self.transfers[k] = t
        }
    }
}
