import CourierMedium
import CourierWire
import Foundation

/// The announce rate a link's channel can afford (SPEC 9.3): periodic announces (with the summary they carry) and the
/// announces a contact triggers are spaced out when the link's duty-cycle allowance is small, when it is running low,
/// and when many neighbours share the channel. Nothing here changes bytes on the air, only when announces go.
extension Node {
    /// How much longer than `announceInterval` a link's announces are spaced now (1: not stretched).
    ///
    /// Three factors, multiplied:
    /// - the allowance (`allowanceStretch`): a full packet's airtime every interval is at most
    ///   `Tuning.announceShareOfBudget` of what the duty cycle allows in that interval;
    /// - what is left of it: below half the hour's allowance, by half the allowance over what is left, at most 2x
    ///   (the bucket refills while announces wait, and traffic gets the rest);
    /// - the neighbours heard on the link, as Meshtastic scales its node-info interval: beyond
    ///   `Tuning.announceNeighboursPerInterval` fresh ones, in proportion, at most 2x (each of them announces too,
    ///   on the same channel).
    /// Capped so that the longest interval (jitter included) stays within nine tenths of the link's neighbour
    /// timeout (`neighbourTimeout(on:)`): neighbours that hear nothing else from us still count us as near.
    func announceStretch(_ l: LinkState, now: Double) -> Double {
        var stretch = Self.allowanceStretch(l.info, interval: self.config.announceInterval)
        if let d = l.info.dutyCycle, d > 0 {
            let bucket = Self.bucketSize(l.info)
            let left = Self.tokens(l, at: now)
            let low = bucket * Tuning.announceLowBudgetShare
            if left < low { stretch *= min(Tuning.announceStretchByFactor, low / max(left, 1e-9)) }
        }
        let heard = self.freshNeighbours(now: now).filter { $0.link == l.info.name }.count
        stretch *= min(Tuning.announceStretchByFactor, max(1, Double(heard) / Double(Tuning.announceNeighboursPerInterval)))
        let cap = 0.9 * self.neighbourTimeout(l.info) / (self.config.announceInterval * (1 + Tuning.announceJitter))
        return max(1, min(stretch, cap))
    }

    /// The allowance factor alone (the same for every node on a channel with the same duty cycle, so each can tell
    /// how far apart its neighbours' announces are): at least 1, at most `Tuning.maxAllowanceStretch`.
    static func allowanceStretch(_ info: LinkInfo, interval: Double) -> Double {
        guard let d = info.dutyCycle, d > 0, interval > 0 else { return 1 }
        let packet = info.properties.airtime(bytes: info.properties.mtu)
        return min(Tuning.maxAllowanceStretch, max(1, packet / (d * Tuning.announceShareOfBudget * interval)))
    }

    /// How long a neighbour not heard on a link still counts as near: `NodeConfig.neighbourTimeout`; on a
    /// duty-cycled link, that times the allowance factor times 2 (announces there are spaced by up to that much).
    func neighbourTimeout(_ info: LinkInfo) -> Double {
        guard info.dutyCycle != nil else { return self.config.neighbourTimeout }
        return self.config.neighbourTimeout * Self.allowanceStretch(info, interval: self.config.announceInterval) * Tuning.announceStretchByFactor
    }

    /// When the next periodic announce goes on a link announcing now: the interval, stretched as the channel needs,
    /// ±`Tuning.announceJitter`.
    /// The stretch is kept with the link, for `summaryGap`.
    func nextAnnounceTime(_ l: inout LinkState, now: Double) -> Double {
        l.stretch = self.announceStretch(l, now: now)
        return now + self.config.announceInterval * l.stretch * self.rng.uniform(1 - Tuning.announceJitter, 1 + Tuning.announceJitter)
    }

    /// Least seconds between two summaries on a link: `NodeConfig.summaryInterval`, stretched as the link's announces
    /// are (a summary is a packet too; on a 1% channel with many neighbours, contacts and pulls otherwise ask for
    /// one every 10 s).
    func summaryGap(_ l: LinkState) -> Double { self.config.summaryInterval * l.stretch }

    /// Whether a neighbour met (again) gets our announce now: unless we announced within `contactAnnounceAfter`,
    /// stretched like the interval (on a crowded or nearly spent channel, contacts come in bursts and each would
    /// cost a packet; they heard, or will hear, the next one).
    /// (Measured, as always, from when the last periodic announce would have been, one stretched interval before the
    /// next: with no stretch, exactly the rule before the stretch.)
    func contactAnnounceWanted(_ l: LinkState, now: Double) -> Bool {
        now - (l.nextAnnounce - self.config.announceInterval * l.stretch) > Tuning.contactAnnounceAfter * l.stretch
    }
}
