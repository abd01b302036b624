/// Refusals (packets and bundles a relay will not take) are logged per reason, at most about once a minute each
/// (SPEC 11.5): the first one in full, then, while they keep coming, one line a minute "N more <reason> refusals in
/// the last minute". Junk at line rate would otherwise write a line per frame (5,000 lines, 900 KB a minute: gigabytes
/// a day on a relay's SD card). Every refusal is still counted, per link and reason, in `relay status`.
struct RefusalLog {
    /// Seconds between summary lines for one reason.
    static let interval: Double = 60

    struct Window {
        var since: Double
        var more = 0
    }

    /// Reasons with a window open: refusals in it after the first are counted, not logged.
    var open: [String: Window] = [:]
    /// Every refusal since the start, per reason (all links).
    var counts: [String: Int] = [:]

    /// Notes one refusal; true when it is to be logged in full (the first of its reason for a while).
    mutating func note(_ reason: String, now: Double) -> Bool {
        self.counts[reason, default: 0] += 1
        if self.open[reason] != nil {
            self.open[reason]!.more += 1
            return false
        }
        self.open[reason] = Window(since: now)
        return true
    }

    /// The summary lines due: reasons whose minute is over, with how many refusals were not logged in it. A reason
    /// quiet for a whole minute is logged in full again at its next refusal.
    mutating func due(now: Double) -> [(reason: String, more: Int)] {
        var out: [(String, Int)] = []
        for (reason, w) in self.open.sorted(by: { $0.key < $1.key }) where now - w.since >= Self.interval {
            if w.more > 0 {
                out.append((reason, w.more))
                self.open[reason] = Window(since: now)
            } else {
                self.open[reason] = nil
            }
        }
        return out
    }

    /// Reasons logged in aggregate: refusals of what is not a bundle this relay could name (records, fragments and
    /// announces that do not decode or check; whole packets; copies). A bundle refused or not stored (untrusted
    /// origin, bad signature, a full disk...) is still logged each, with its id and reason, as it is recorded in the
    /// change feed.
    static func isAggregated(_ reason: String) -> Bool {
        ["bad fragment", "undecodable bundle", "bad announce", "short id clash", "refused receipt part"].contains(reason)
            || reason.hasPrefix("packet ") || reason == "duplicate bundle"
    }

    /// Notes a refusal of a reason logged each time (counted only).
    mutating func count(_ reason: String) { self.counts[reason, default: 0] += 1 }

    /// A short name for why the engine refused something, from its message: the key refusals are counted and
    /// aggregated under.
    static func reason(ofRejection why: String) -> String {
        let table: [(String, String)] = [
            ("origin is not a federation member", "untrusted origin"),
            ("unsigned bundle in open mode", "unsigned bundle"),
            ("origin signature does not verify", "bad signature"),
            ("signed by an origin whose keys are unknown", "unknown signer"),
            ("announce whose keys do not match", "bad announce"),
            ("has our short id", "short id clash"),
            ("fragment: ", "bad fragment"),
            ("bundle from ", "undecodable bundle"),
            // A receipt part (a drill's answer among them, SPEC 6.16-6.17) whose tag is not its holder's, or whose
            // holder's keys are not known here.
            ("receipt part for ", "refused receipt part"),
            ("cannot ", "local error"),
        ]
        for (needle, reason) in table where why.contains(needle) { return reason }
        return "other"
    }
}
