import CourierMedium
import CourierWire
import Foundation

/// Airtime: each link's duty-cycle allowance (a sliding window of an hour, as a modem enforcing the limit counts it:
/// `AirtimeLedger`) and channel-busy reports (listen before talk).
extension Node {
    /// What a duty-cycled link may transmit in any `Tuning.dutyCycleWindow` seconds (without a duty cycle: unlimited).
    static func bucketSize(_ l: LinkInfo) -> Double {
        guard let d = l.dutyCycle else { return .infinity }
        return d * Tuning.dutyCycleWindow  // an hour's allowance
    }

    /// What a duty-cycled link may still transmit at `now` before its window is spent: the allowance less what it
    /// sent within the window (without a duty cycle: unlimited). Negative when a packet longer than what was left
    /// went (a packet is never cut; the modem lets one go into an empty window).
    static func tokens(_ l: LinkState, at now: Double) -> Double {
        guard l.info.dutyCycle != nil else { return .infinity }
        return Self.bucketSize(l.info) - l.sent.used(at: now, window: Self.reckonedWindow)
    }

    /// The window as the engine reckons it: a packet counts from when the engine hands it over until the window
    /// after its end plus `Tuning.dutyCycleStartSlack` (the modem may start it later than that: listen before talk).
    /// So what the engine counts is never less than what the modem counts, and nothing it sends is refused.
    static let reckonedWindow = Tuning.dutyCycleWindow + Tuning.dutyCycleStartSlack

    /// What must be left of a duty-cycled link's window before a packet goes: a full packet's airtime (the packet is
    /// composed after the check; the modem refuses a packet that does not fit what is left), or the whole allowance
    /// when even that is less (a modem lets one packet go into an empty window).
    static func packetAllowance(_ l: LinkInfo) -> Double {
        min(l.properties.airtime(bytes: l.properties.mtu), Self.bucketSize(l))
    }

    /// The part of a duty-cycled link's allowance kept for urgent traffic (SPEC 8.5): packets without urgent
    /// bundle data stop when what is left of the window falls to it, so an alert never waits behind a spent
    /// allowance for what the relay's own announces, summaries, receipts and ordinary traffic used (0 without a
    /// duty cycle).
    static func urgentReserve(_ l: LinkInfo) -> Double {
        guard l.dutyCycle != nil else { return 0 }
        return Self.bucketSize(l) * Tuning.urgentReserveShare
    }

    /// When a duty-cycled link may next send (`now` if it may now): an urgent packet once a full packet's airtime is
    /// left of the window, any other once more than the urgent reserve is left too (SPEC 8.5).
    func airtimeReady(_ l: LinkState, urgent: Bool, now: Double) -> Double {
        guard l.info.dutyCycle != nil else { return now }
        var need = Self.packetAllowance(l.info)
        if !urgent { need = max(need, Self.urgentReserve(l.info) + 1e-6) }
        return l.sent.leftReaches(need, budget: Self.bucketSize(l.info), window: Self.reckonedWindow, now: now)
    }

    /// Whether the first transfer due on a link now is urgent (an alert): it may spend the link's urgent reserve.
    func urgentDue(_ link: String, now: Double) -> Bool {
        self.transfers.due(on: link, now: now, limit: 1).first?.priority == .urgent
    }

    /// Changes a radio link's duty-cycle limit (nil: none); what was already sent within the window still counts.
    public func setDutyCycle(_ dutyCycle: Double?, on link: String) {
        guard var l = self.links[link] else { return }
        l.info.dutyCycle = dutyCycle
        self.links[link] = l
    }

    /// Listen-before-talk hook for half-duplex links: the channel is busy (a modem reported carrier or a busy
    /// channel, or another station is known to be transmitting) until `until`; nothing is sent on the link before
    /// then. KISS TNCs and RNode firmware also sense the channel themselves before keying up; this lets a runtime
    /// whose modem reports carrier (or a future driver) hold the engine back as well.
    public func channelBusy(_ link: String, until: Double, now: Double) -> [NodeOutput] {
        // Changed in place (a copy of the link's state taken out and put back, at each of a drill's millions of busy
        // reports, retained and released all it holds).
        guard self.links[link]?.carrier(until: until) == true else { return [] }
        return self.drain()
    }

    /// Airtime left per link of what its duty cycle allows in the window (`tokens`, as of the last time the engine
    /// sent or looked; infinite without a duty cycle) and that allowance (`budget`), in seconds.
    public func airtime() -> [(link: String, tokens: Double, budget: Double?)] {
        self.linkOrder.compactMap { name in
            guard let l = self.links[name] else { return nil }
            return (name, Self.tokens(l, at: l.sent.seenAt), l.info.dutyCycle.map { _ in Self.bucketSize(l.info) })
        }
    }
}

/// A duty-cycled link's own transmissions within the last window, oldest first (SPEC 8.5): a real duty-cycle limit
/// (ETSI EN 300 220: 1% of any hour) is a sliding window, and so is what a modem that enforces it counts. (A token
/// bucket of an hour's allowance, refilled continuously, let twice the allowance go in the first hour, and after any
/// quiet hour: the modem held what the engine believed sent, in order, and an alert waited behind it.)
/// Each packet counts whole until its end leaves the window; bounded by the allowance over the shortest packet.
struct AirtimeLedger {
    private var packets: [(start: Double, airtime: Double)] = []
    /// The packets before this index have left the window.
    private var first = 0
    /// The airtime of the packets from `first` on.
    private var total = 0.0
    /// The latest moment the ledger was brought up to (what `Node.airtime()` reports at).
    private(set) var seenAt = -Double.infinity

    /// The airtime counted within the window at `now`.
    func used(at now: Double, window: Double) -> Double {
        var used = self.total
        var i = self.first
        while i < self.packets.count, self.packets[i].start + self.packets[i].airtime + window <= now {
            used -= self.packets[i].airtime
            i += 1
        }
        return i == self.packets.count ? 0 : max(0, used)
    }

    /// Forgets the packets that left the window by `now`.
    mutating func advance(to now: Double, window: Double) {
        self.seenAt = max(self.seenAt, now)
        while self.first < self.packets.count, self.packets[self.first].start + self.packets[self.first].airtime + window <= now {
            self.total -= self.packets[self.first].airtime
            self.first += 1
        }
        if self.first == self.packets.count {
            self.packets.removeAll(keepingCapacity: true)
            self.first = 0
            self.total = 0
        } else if self.first >= 64 && 2 * self.first >= self.packets.count {
            self.packets.removeFirst(self.first)
            self.first = 0
        }
    }

    /// A packet handed over at `start`, `airtime` seconds long.
    mutating func record(start: Double, airtime: Double) {
        self.packets.append((start, airtime))
        self.total += airtime
        self.seenAt = max(self.seenAt, start)
    }

    /// The earliest moment at or after `now` when at least `need` of `budget` is left (packets leave the window
    /// oldest first).
    func leftReaches(_ need: Double, budget: Double, window: Double, now: Double) -> Double {
        var used = self.used(at: now, window: window)
        if budget - used >= need { return now }
        var i = self.first
        while i < self.packets.count {
            let p = self.packets[i]
            let leaves = p.start + p.airtime + window
            if leaves > now {
                used -= p.airtime
                if budget - used >= need - 1e-9 { return leaves + 0.001 }
            }
            i += 1
        }
        return .infinity
    }

    /// Packets remembered (`Node.tables`).
    var count: Int { self.packets.count - self.first }
}
