import CourierMedium
import CourierWire
import Foundation

/// Airtime: each link's duty-cycle budget (a token bucket of an hour's allowance) and channel-busy reports (listen
/// before talk).
extension Node {
    static func bucketSize(_ l: LinkInfo) -> Double {
        guard let d = l.dutyCycle else { return .infinity }
        return d * 3_600  // an hour's allowance
    }

    /// A link's duty-cycle tokens at `now`: what it had at its last refill plus what the allowance added since, up to
    /// the bucket (without a duty cycle: unchanged).
    static func tokens(_ l: LinkState, at now: Double) -> Double {
        guard let d = l.info.dutyCycle else { return l.tokens }
        return min(Self.bucketSize(l.info), l.tokens + (now - l.lastRefill) * d)
    }

    /// The part of a duty-cycled link's bucket kept for urgent traffic (SPEC 8.5): packets without urgent
    /// bundle data stop when the link's tokens fall to it, so an alert never waits behind a spent allowance for
    /// what the relay's own announces, summaries, receipts and ordinary traffic used (0 without a duty cycle).
    static func urgentReserve(_ l: LinkInfo) -> Double {
        guard l.dutyCycle != nil else { return 0 }
        return Self.bucketSize(l) * Tuning.urgentReserveShare
    }

    /// Whether the first transfer due on a link now is urgent (an alert): it may spend the link's urgent reserve.
    func urgentDue(_ link: String, now: Double) -> Bool {
        self.transfers.due(on: link, now: now, limit: 1).first?.priority == .urgent
    }

    /// Changes a radio link's duty-cycle limit (nil: none); what was already spent this hour still counts.
    public func setDutyCycle(_ dutyCycle: Double?, on link: String) {
        guard var l = self.links[link] else { return }
        let spent = Self.bucketSize(l.info) - l.tokens
        l.info.dutyCycle = dutyCycle
        l.tokens = Self.bucketSize(l.info) - (spent.isFinite ? max(0, spent) : 0)
        self.links[link] = l
    }

    /// Listen-before-talk hook for half-duplex links: the channel is busy (a modem reported carrier or a busy
    /// channel, or another station is known to be transmitting) until `until`; nothing is sent on the link before
    /// then. KISS TNCs and RNode firmware also sense the channel themselves before keying up; this lets a runtime
    /// whose modem reports carrier (or a future driver) hold the engine back as well.
    public func channelBusy(_ link: String, until: Double, now: Double) -> [NodeOutput] {
        guard var l = self.links[link], until > l.busyUntil else { return [] }
        l.busyUntil = until
        l.carrierUntil = until
        self.links[link] = l
        return self.drain()
    }

    /// Airtime spent per link in the last hour against its budget (seconds).
    public func airtime() -> [(link: String, tokens: Double, budget: Double?)] {
        self.linkOrder.compactMap { name in
            guard let l = self.links[name] else { return nil }
            return (name, l.tokens, l.info.dutyCycle.map { $0 * 3_600 })
        }
    }
}
