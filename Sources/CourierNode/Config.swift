import CourierMedium
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
    /// A change of network key under way (SPEC 3.7): the engine switches to the next key at its moment.
    public var keyRotation = KeyRotation()
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
    /// Least seconds between two summaries on one link. Summaries go out on contact (when we may hold news for the
    /// neighbour), to ask for something a neighbour's summary or receipt shows we lack, and with periodic announces
    /// (`summaryInAnnounces`); never merely because the held set changed.
    public var summaryInterval: Double = 10
    /// Periodic announces carry the node's summary when all of it fits in the same packet: a neighbour that lacks
    /// something answers, at no extra packet while all are in step.
    public var summaryInAnnounces = true
    /// Seconds a node that hears a receipt for a bundle it lacks waits before asking for it with its summary (the
    /// flood usually brings it meanwhile); it asks up to five times, 20, 40, 80 and 160 seconds apart.
    public var pullDelay: Double = 30
    /// Fragments in flight to one neighbour before an acknowledgement.
    public var window = 8
    /// A neighbour back after being given up on gets a slow start (`Node.Neighbour.restartWindow`: one transfer in
    /// flight to it at first, one more per ack that shows progress), our data for it waits while it is heard busy
    /// with a node we do not hear (`holdForHiddenSender`), and what is lost to it meanwhile does not count against
    /// the line (collisions of the neighbours that waited for it, not noise). Off by default: over valley-chain-12
    /// seeds 12-17 it took v06's recovery from 274 s to 177 s on average, but regional-200 `--until 1000` delivered
    /// fewer copies (638 against 713, release) and the first alert reached 179 of 199 relays in 10 minutes; the
    /// triangle's east-1 return was slower on average over seeds 3-6 (35.5 s against 20.1 s). README, "Hidden
    /// terminals after a return". `relay drill simulate --slow-restart` turns it on for a drill.
    public var restartSlowly = false
    /// Turns around a returned neighbour (SPEC 8.5 rule 5, turns, `Node.startTurns`): the relays that waited for it and do
    /// not hear each other send it one packet each in turn, in the order of their short ids, a record not acknowledged
    /// going again at the next turn. On by default: over valley-chain-12 seeds 12-17 v06's recovery went from 327 s to
    /// 190 s on average (seed 12 alone 304.5 s to 319.6 s); regional-200 unchanged (docs/journal/session-16-recovery.md).
    public var turnsAfterReturn = true
    /// Heal probes (SPEC 9 rule 8, `Node.healProbesDue`): a relay holding bundles for a neighbour it lost says hello
    /// every `healProbeInterval` (22 s at SF9 and 10%) while it holds them, and hellos are answered 0.2-5 s late where
    /// they run. Off by default: over the triangle's seeds 3-6 the partition's recovery went from 40.4, 64.3, 19.8,
    /// 35.0 s to 23.9, 31.5, 18.7, 54.0 s, the 2x target met on none (main: 1), for 7-32% more transmissions;
    /// valley-chain-12's v06 took 396.3 s against 304.5 s. README, "Heal probes". `relay drill simulate
    /// --heal-probes` turns it on for a drill.
    public var healProbes = false
    /// Flooding: rebroadcast after a random delay of up to this many packet airtimes (at least `minFloodDelay`).
    /// Alerts wait `alertReceiptAirtimes` + 1 airtimes more, for the neighbours' receipts.
    public var floodDelayAirtimes: Double = 20
    public var minFloodDelay: Double = 0.05
    /// Flooding: do not rebroadcast after hearing this many more copies during the delay (or while the rebroadcast
    /// waits for a busy channel). One, as Trickle's and Meshtastic's k: with the delay spread over the whole window,
    /// `relay drill simulate scenarios/regional-200.json --until 1000` (release) spent 106.7 s of alert airtime with
    /// 1 (198 of 199 relays in 10 minutes) against 118.6 s with 2 (199), and `courier-bench mesh --no-day --seeds
    /// 20` 0.87x naive flooding (worst seed 1.20x) against 0.99x (1.35x). (With a relay's answer to a summary counted
    /// as its rebroadcast too, `PendingFlood.sentOn`: 98.2 s, 199 of 199; 0.81x and 1.10x.)
    ///
    /// Session 12: that is for the signal's order (`suppressionThresholdBySignal`, one copy); in the random order
    /// (no signal reported: serial lines, TCP, the bench's simulator; fewer than `Tuning.floodSignalMinNeighbours`
    /// neighbours) it is two again: with one, the 50-relay day of `courier-bench mesh --seeds 1` left 2 of its 196
    /// alert copies undelivered (194 of 196, against 196 with two).
    public var suppressionThreshold = 2
    /// Flooding with the signal known (SPEC 8.5 rule 5): a copy heard with a signal-to-noise ratio waits in proportion
    /// to it (far, weak receivers pass it on first), and a receiver near the sender stays quiet after hearing
    /// `suppressionThresholdBySignal` copies meanwhile. On by default since session 12: with one copy heard enough to
    /// stay quiet (k = 1) and the delay over the whole window, a random order made so little progress per hop that the
    /// alert reached the far corner of `relay drill simulate scenarios/regional-200.json --until 1000` with its seed
    /// changed to 201 with hop limit 0 (SPEC 6.10: 15 at most), and 3 relays never got it (196 of 199); far receivers first,
    /// 199 of 199 on seeds 200, 201 and 202 (README, "Far receivers first"). A link that reports no signal (a serial
    /// line, TCP, the bench's simulator) keeps the random delay, and so does a relay with fewer than
    /// `Tuning.floodSignalMinNeighbours` fresh neighbours.
    public var signalWeightedDelay = true
    public var suppressionThresholdBySignal = 1
    /// Flooding: do not rebroadcast unless at least this many neighbours are not known to have it (a copy, a receipt
    /// or a summary heard from them).
    public var floodMinUncovered = 1
    /// Two-hop knowledge (SPEC 8.5 rule 5): send our neighbour list with our announces, and count a neighbour listed by one
    /// whose copy of a flood we heard as reached (a rebroadcast that would reach nobody else is left out); sent only on
    /// links whose duty-cycle allowance does not stretch announces (`sendsNeighbourLists`: not 1% at SF9). Off by
    /// default still (session 20, docs/journal/session-20-lists.md): `courier-bench mesh --no-day --seeds 20
    /// --neighbour-lists` (release) gives the alert alone 0.77x naive flooding on average but 1.15x on the worst seed
    /// as without them (off: 0.88x and 1.15x), the triangle drill recovers slower with them, and
    /// `SignalWeightedFloodTests` fails with them on: relays switched on together have young neighbour tables, so
    /// lists save no rebroadcast then and only lengthen every packet (28 alert packets where 27 are allowed).
    public var neighbourLists = false
    /// With the neighbour lists: name, with the floods we send, the neighbours that are to pass them on (the fewest
    /// that reach every node two hops away), and pass on a flood only when a copy heard named us (or named none).
    public var floodRelays = true
    /// Seconds receipts wait to be aggregated into one bundle per origin.
    public var receiptDelay: Double = 60
    /// An alert's receipt goes out at once: after a random delay of up to this many packet airtimes (it tells the
    /// neighbours, still waiting to pass the alert on, that we have it), or with our own copy of the alert.
    public var alertReceiptAirtimes: Double = 0.5
    /// Seconds a receiver waits before acknowledging, so acks for several fragments share a packet.
    public var ackDelay: Double = 0.2
    public var reassemblyTimeout: Double = 3_600
    /// Flood this node's identity bundle (its keys and name, SPEC 9.1) to the federation, and again when the copy
    /// it holds has less than half its lifetime left, so every member can encrypt to it and read what it encrypts.
    /// A running relay does; a command that only queues a message does not.
    public var floodIdentity = false
    /// Least seconds between two key requests to one origin (while bundles from it wait to be read), and between
    /// two answers to one requester.
    public var keyRequestInterval: Double = 600
    public var hopLimit: UInt8 = 8

    public init(identity: NodeIdentity, networkKey: NetworkKey, name: String? = nil) {
        self.identity = identity
        self.networkKey = networkKey
        self.name = name
    }
}
