/// The engine's tuning constants that are not per-node configuration (`NodeConfig`), each with why it has its value.
enum Tuning {
    /// How often the pruning rules of `Node.pruneTables` run: tables grow by at most ten minutes' traffic between runs.
    static let pruneInterval: Double = 600
    /// A neighbour not heard for a week is forgotten (its round-trip estimate is stale; heard again, it is a new
    /// contact as after any absence longer than the neighbour timeout).
    static let forgetNeighbourAfter: Double = 7 * 86_400
    /// Announces being assembled or remembered for their names: beyond this many, only fresh neighbours' are kept
    /// (an announce fits one packet on every link we know; a flood of fake short ids must not grow memory).
    static let maxPartialAnnounces = 1_024
}

extension Tuning {
    // Housekeeping and memory.
    /// Expiry, route look-ups for stuck custody, key re-requests and pruning run at most once a minute: their
    /// timescales are minutes to days, and the store scans they need cost too much per tick.
    static let housekeepingInterval: Double = 60
    /// Who holds a bundle we do not hold is kept this long after last heard (a copy of it may still reach us).
    static let holdersKeptFor: Double = 600
    /// Caps of the sets kept for de-duplication only; past the cap they start again (a reminder is lost, nothing else).
    static let maxDirectedSeen = 8_192
    static let maxReceiptOrigins = 1_024
    static let maxFloodGaps = 1_024
    static let maxRefusedReported = 4_096
    static let maxHelloAnswered = 1_024
    /// Origin signatures remembered as verified (`Node.verifiesRemembered`): a receipt or alert is judged several
    /// times while taken in, and overheard at each hop near us within minutes; 256 of them (a few hundred bytes
    /// each) cover that, and a thousand simulated relays keep it in tens of megabytes.
    static let maxVerifiedSignatures = 256
    /// Origin signatures remembered as verified by the engines sharing them (`SharedWork.signatures`, a simulator's): a
    /// relay runs one engine, a simulator a thousand, each judging the same floods; a few megabytes.
    static let maxVerifiedShared = 8_192

    // Announces and hellos.
    /// A neighbour's announce is written to the store (its keys, name and when it was last heard: `relay peers`) when
    /// it says something new, or when this long has passed since it was last written: `relay peers` says when a peer
    /// was heard to within this much, and a relay does not write at every announce it hears.
    static let peerHeardKeptEvery: Double = 600
    /// At most one hello request per link a minute when packets come from nodes we cannot read.
    static let helloRequestInterval: Double = 60
    /// A contact gets our announce unless we announced within the last minute (it heard that one).
    static let contactAnnounceAfter: Double = 60
    /// Periodic announces at the interval ±25%, so neighbours started together drift apart instead of colliding.
    static let announceJitter = 0.25
    /// Periodic announces (with the summary they carry) take at most a tenth of a duty-cycled link's allowance: a
    /// full packet's airtime per interval, or the interval is stretched (SPEC 9.3).
    static let announceShareOfBudget = 0.1
    /// Beyond this many fresh neighbours on a link, announces are spaced in proportion (all of them share the channel).
    static let announceNeighboursPerInterval = 10
    /// The allowance alone never spaces announces more than four intervals apart (an hour at the default 15 minutes).
    static let maxAllowanceStretch = 4.0
    /// A retry to a neighbour that never acknowledged carries our announce, unless one went in the last 30 s.
    static let announceWithRetryAfter: Double = 30
    /// Room kept in a periodic announce's packet beyond the announce and a one-page summary (tag and framing slack).
    static let announceSummaryRoom = 24
    /// A periodic announce carrying the summary covers a summary that was due within the next minute.
    static let summaryCoveredWithin: Double = 60

    // Pulls.
    /// A bundle a receipt showed is asked for up to five times (the holder may not hear us); one a summary showed,
    /// once (it may be directed elsewhere and never come).
    static let pullTriesAfterReceipt = 5
    static let pullTriesAfterSummary = 1
    /// Seconds before asking again, doubled at each try.
    static let pullRetry: Double = 20
    /// A pull that gave up is forgotten an hour after it began (asked again only if shown again after that).
    static let pullForgottenAfter: Double = 3_600
    /// A bundle a summary showed that has not come after that asking (the copy and the answer both lost: a holder
    /// tells a neighbour once what it holds, so no later summary shows it again) is asked for again 10 minutes after
    /// the last summary we sent on that link, the wait doubled at each asking up to an hour, while the neighbour
    /// that showed it is heard, for a day from when it was shown (an alert's lifetime): the mutual-aid alert reaches
    /// every relay. Any summary we send asks for all of them, so these cost at most one summary per link per wait.
    static let pullReaskAfterSummary: Double = 600
    static let pullReaskMaxWait: Double = 3_600
    static let pullReaskFor: Double = 86_400

    // Keys.
    /// Key requests and their answers are for now: they live a day, not an identity flood's week.
    static let keyRequestLifetime: UInt32 = 24 * 60

    // Transfers and the composer.
    /// RFC 6298 gains: the round-trip estimate moves by 1/8 of each sample, its variance by 1/4, and the time-out
    /// is the estimate plus 4 variances.
    static let rttAlpha = 0.125
    static let rttBeta = 0.25
    static let rttVarianceFactor = 4.0
    /// A neighbour is given up on only after at least 2 minutes of silence (else 8 full windows' time-outs).
    static let minSilenceBeforeGivingUp: Double = 120
    /// A line is judged noisy from at least 16 recent directed records, fewer than 9 in 10 acknowledged, averaged
    /// with weight 1/20 per record (the last few dozen records).
    static let noisyLineSamples = 16
    static let noisyLineSuccess = 0.9
    static let noisyLineAverageWeight = 0.05
    /// A duty-cycle limit counts airtime in any hour (ETSI EN 300 220), a sliding window: so does the engine.
    static let dutyCycleWindow: Double = 3_600
    /// The engine counts each of its packets 10 s longer than the window: a modem may start a packet later than the
    /// engine handed it over (its listen-before-talk backoff, a transmission heard meanwhile: at SF9 about a second
    /// each), and it must never count less than the modem does, or the modem refuses what the engine believes sent.
    static let dutyCycleStartSlack: Double = 10
    /// A fifth of a duty-cycled link's hour of allowance is kept for urgent bundles (SPEC 8.5): at 1% and SF9,
    /// 7.2 s, five to ten alert packets; the rest of the traffic keeps four fifths.
    static let urgentReserveShare = 0.2
    /// A packet within 8 bytes of the MTU is full: no record worth adding fits.
    static let packetFullWithin = 8
    /// Packets composed per link in one call at most (a burst to a KISS TNC is 16; a fast link gets the rest at the
    /// next tick): one call never monopolises the engine.
    static let maxPacketsPerPump = 64
    /// Packet counters reserved in the store at a time (one durable write per 1,024 packets; a restart skips the rest).
    static let packetCounterBlock: UInt32 = 1_024
}

extension Tuning {
    // Named from the numbers the parts wrote inline (issue 11 point 3).
    /// A hello nobody answered (it may have collided) is said again up to 3 times, after 5-15 s doubled each time:
    /// random so two relays started together do not collide again; three misses mean nobody is there.
    static let helloRetries = 3
    static let helloRetryDelay = (min: 5.0, max: 15.0)
    /// Where heal probes run, a hello is answered (our announce, SPEC 9 rule 7) 0.2-5 s after it, not at once: the neighbours that heard it
    /// may not hear each other (a heal probe's sender between the two sides of a partition), and answering at once
    /// they collided at its sender at every probe (two announces of 0.54 s at SF9: with 0.2-5 s, about one time in five).
    static let helloAnswerDelay = (min: 0.2, max: 5.0)
    /// Our summary after a contact goes 0.1-1.5 s later: soon (the contact may be short), random so the neighbours
    /// that heard the same packet do not all answer at once.
    static let contactSummaryDelay = (min: 0.1, max: 1.5)
    /// Our summary when a flood came whose origin's keys we lack (the neighbour likely holds its identity flood):
    /// within 0.1-2 s.
    static let keysWantedSummaryDelay = (min: 0.1, max: 2.0)
    /// What a neighbour's summary shows we lack is asked for (our summary) within 0.1-2 s: spread among the
    /// neighbours that heard the same summary.
    static let summaryAnswerDelay = (min: 0.1, max: 2.0)
    /// A route learnt from a bundle's arrival is used, and kept, for 4 neighbour timeouts: older, the path has
    /// likely changed (routing then falls back to copies).
    static let routeKeptForTimeouts = 4.0
    /// An older route is kept as a hint for 14 days, a text's lifetime (the longest a directed bundle waits for a
    /// way): the copies of a bundle without a route go to the neighbour it goes through first, and the last copy
    /// moves on along it (`Node.routeHint`; SPEC 5.14 rules 3 and 4). In a mesh that does not move the way a quiet
    /// node's last bundle came is still the way to it. The table stays bounded by the origins heard in that time.
    static let routeHintKeptFor: Double = 14 * 86_400
    /// Split horizon (`Node.onwardHop`): a relay hands a directed bundle back to the neighbour it came from (not its
    /// destination) only along a route through it learnt after the bundle came (that neighbour has heard from the
    /// destination's side since: a courier back from the other island), and at most this many times per bundle. Two
    /// relays each holding a fresh route through the other then pass a bundle between them at most 1 + this many
    /// times each (HandBackTests), not until its hop limit runs out: without split horizon, the data-mule trace's
    /// routes n2/n3 <-> courier sent 601 packets instead of 438, the retaken bundles going back and forth (with split
    /// horizon and this bound, 398).
    static let handBacksPerBundle = 1
    /// Bundles whose hand-backs are counted (`Node.handBacks`); past the cap the counts start again (a bundle may
    /// then be handed back once more, nothing else).
    static let maxHandBacksCounted = 4_096
    /// A directed bundle nobody can route: our summary within 0.1-5 s (the destination, or one who knows it, may
    /// answer; not at once, so several such bundles arriving together share one summary).
    static let unroutableSummaryDelay = (min: 0.1, max: 5.0)
    /// A neighbour heard again after silence (a partition healed, its relay back on): what waited for it goes
    /// 0.2-2 s later, soon (it is there now), random so the relays that waited for it do not answer its first packet
    /// together.
    static let returnedNeighbourDelay = (min: 0.2, max: 2.0)
    /// Directed records in flight to a neighbour back after silence, at first (`Node.Neighbour.restartWindow`): one,
    /// as TCP's loss window (RFC 5681 3.1, 4.1).
    static let restartWindow = 1
    /// The slow start after a return ends, at the latest, 5 minutes after it began (the probe interval of a neighbour
    /// given up on): long enough for an hour's backlog on a LoRa chain to cross (valley-chain-12: 12 bundles, about
    /// 2 minutes), and a neighbour that never takes a whole window's worth is not held to it for hours.
    static let restartLasts: Double = 300
    /// A returned neighbour heard busy with a node we do not hear holds our data for it for this many ack delays
    /// (a partial transfer's ack waits 4) and two full packets' airtime (`Node.hiddenTurn`).
    static let hiddenTurnAckDelays = 4.0
    /// Turns around a returned neighbour (`Node.startTurns`, SPEC 8.5 rule 5, turns). A turn is two full packets' airtime
    /// and this much for the returned neighbour's ack delay and the modems' turnarounds (at SF9 and a 255-byte MTU,
    /// 2 x 1.3 s + 0.8 s, about 3.4 s): an ack waits 0.2-0.6 s (SPEC 8.5 rule 5), and a modem's turnaround adds
    /// some. (1.2 s, with turns starting 2 s after the return and ending once our backlog crossed, was no better
    /// over valley seeds 12-17 and worse on the triangle: docs/journal/session-16-recovery.md.)
    static let turnAnswerAllowance: Double = 0.8
    /// The first turn starts 2 s after the packet that showed the neighbour back: its own backlog and the contact's
    /// announces go first (as `returnedNeighbourDelay`); a packet handed to a modem at once waited for the
    /// neighbour's next and went out with the answer to it (`TurnsAfterReturnTests`: a's first bundle to m).
    static let turnsStartAfter: Double = 2.0
    /// A packet to the returned neighbour starts only in the first half of our turn: even a full packet then ends
    /// before the turn does, and the returned neighbour's answer (which all takers hear) ends it.
    static let turnOpenShare = 0.5
    /// Turns are taken at most this long after the return (as the slow start, `restartLasts`): an hour's backlog on a
    /// LoRa chain crosses in a minute or two, and new traffic is not held to turns for long.
    static let turnsLast: Double = 300
    /// An ack alone, as counted for the hold after the returned neighbour's data to a relay we do not hear: packet
    /// overhead, ack record and framing (about 0.25 s at SF9).
    static let turnAckBytes = 40
    /// Turns only among at most 4 relays (us and 3 we do not hear): with more, each waits too long for its turn and
    /// the returned neighbour is in a crowd where turns computed from what each overheard may not agree.
    static let maxTurnTakers = 4
    /// An ack to the returned neighbour waits for our turn at most this many turns (`Node.TurnHolds`): with two takers
    /// a cycle (about 6.8 s at SF9), within the neighbour's time-out for its data to us (3 full packets' airtime, 4
    /// ack delays and 1 s: about 7.3 s); an ack held longer comes after its retry.
    static let turnAckHoldTurns = 2.0
    /// Takers contend for a returned neighbour while it acks a relay we do not hear (`Node.turnContended`): each taker
    /// is answered once a cycle, in its turn, so heard within two cycles (one answer lost to a collision) the other
    /// taker is still sending to it. (One cycle: v06's return 176 s on valley seeds 12-29, no better than without;
    /// six: 127 s but 534 of 546 copies on triangle seeds 3-8.)
    static let turnContendedCycles = 2.0
    /// ... and once it has answered this many packets since the return (to anyone: all takers count the same): a
    /// backlog is crossing, not a few copies (valley drill: v06's takers send it 14-15 bundles each, v09's 1-2). Two
    /// lost copies on triangle seeds 3-8 (535 of 546); five held too little (v06 162 s) and lost 4.
    static let turnContendedAnswers = 3
    /// Whom a neighbour talks with is kept for its 8 most recent partners, each for a day (a relay off for hours
    /// comes back to the same neighbours).
    static let talkPartnersKept = 8
    static let talkPartnersKeptFor: Double = 86_400
    /// Heal probes (`Node.healProbesDue`, SPEC 9 rule 8; `NodeConfig.healProbes`, off by default) take at most this
    /// share of a link's duty-cycle allowance while a relay holds bundles for a neighbour it lost: an announce with the
    /// hello bit every airtime / (share x duty cycle), at SF9 and 10% every 22 s (0.54 s each), so a healed partition
    /// is found within seconds instead of at the next backed-off retry (up to 192 s apart), the 5-minute probe of a
    /// neighbour given up on or an announce (15 minutes or more). Over the triangle's seeds 3-6 (README "Heal
    /// probes") 0.1 (every 54 s) and 0.5 (11 s) met the 2x partition target on none, 0.25 on 0-2 of 4 depending on
    /// the run's other timing, for 1-32% more transmissions. Off where the allowance stretches announces (1% at SF9):
    /// there it cannot pay for them.
    static let healProbeShare = 0.25
    /// Heal probes are never closer than this on a fast link (where an announce costs next to nothing).
    static let healProbeLeastInterval: Double = 10
    /// Each heal probe's interval is drawn within ±50% of it: the relays on one side of a partition, which may not
    /// hear each other (hidden terminals), do not keep probing at the same moments.
    static let healProbeJitter = 0.5
    /// A rebroadcast window is at least twice the least flood delay (on a fast link a packet's airtime is nothing,
    /// and neighbours still need the time to hear one another's copies).
    static let floodWindowMinimum = 2.0
    /// A flood's copy heard with a signal-to-noise ratio waits in proportion to its place in −20…15 dB (SPEC 8.5
    /// rule 5): Meshtastic's range (firmware `getTxDelayMsecWeighted`). LoRa decodes down to about −20 dB (SF12;
    /// −12.5 at SF9); above 15 dB the receiver is so near the sender that its copy reaches few new nodes.
    static let floodSignalRange = (min: -20.0, max: 15.0)
    /// A tenth of the window is random: receivers at the same distance from the sender do not go together.
    static let floodSignalJitter = 0.1
    /// The delay by signal is taken only by a relay with at least this many fresh neighbours, where many receivers of
    /// one copy compete and the far ones should go first; with fewer, the random delay. On a chain each relay's
    /// strong link is the only way on: by signal every hop waited nearly the whole window, and the spent valley of
    /// `RegionalAlertTests` (11 hops) had 99% of the alert after 242 s instead of within 180 s. (With 5, a relay at
    /// the far corner of regional-200 with seed 201 was missed again: 198 of 199; with 3, every relay there takes it.)
    static let floodSignalMinNeighbours = 3
    /// A summary's answer waits up to three packet airtimes: time to hear another holder's copy and stay quiet.
    static let answerDelayAirtimes = 3.0
    /// Receipt parts already confirmed are remembered, up to 8 per origin of `maxReceiptOrigins` (then forgotten
    /// at once: a part confirmed again is only sent on once more).
    static let receiptsHeldPerOrigin = 8
    /// Parts sent on their own and not carried on are sent again after 2-3 gathering steps, doubled each attempt.
    static let receiptPartRetrySteps = (min: 2.0, max: 3.0)
    /// Parts that rode on other packets wait for a nearer node to carry them: (levels - hops + 2) × 1.25 steps plus
    /// 0.5-1 step, so the nearer node (a level later) has had its own turn first.
    static let carryWaitExtraLevels = 2.0
    static let carryWaitStepsPerLevel = 1.25
    static let carryWaitJitterSteps = (min: 0.5, max: 1.0)
    /// Below 100 kbit/s a half-duplex link is a radio where a packet costs: parts ride announces there.
    static let slowLinkBitsPerSecond = 100_000
    /// Parts do not bring an announce forward within a quarter interval of the last (more announces cost packets).
    static let partsAnnounceSpacing = 0.25
    /// Announces stretch when less than half the hour's allowance is left, and by neighbour count, each at most 2x;
    /// a neighbour on a duty-cycled link counts as near for twice as long (announces there are that far apart).
    static let announceLowBudgetShare = 0.5
    static let announceStretchByFactor = 2.0

    /// The copy budget of a directed bundle at its origin (SPEC 5.14, binary spray-and-wait): at most this many relays
    /// hold copies of a message that has no route, however dense the mesh. In a static mesh the copies must reach a
    /// relay next to a quiet destination (one that sent nothing lately, so no relay has a route to it it may use):
    /// with halving alone, `courier-bench mesh --seeds 1` (the 50-relay day, release) delivered 17 of 24 direct
    /// messages within the day with a budget of 8 and 24 with 32; with the last copy going the way the destination's
    /// last bundle came (`routeHintKeptFor`, spray-and-focus) 24 of 24 with 8. The cost of copies on a dense,
    /// duty-cycled channel (`relay drill simulate scenarios/regional-200.json --until 1000`, release): 884 of 1,023
    /// copies delivered with 8 (text data 315 s of airtime, the first alert at 99% of relays after 56.5 s), 764 with
    /// 16, 713 with 32 (text data 1,087 s, the alert at 99% after 163.6 s), 857 with 4 (the texts' copies too few:
    /// 2 of 19 delivered). Without a budget a text was held by 135 relays (333 copy transfers). Binary halving
    /// reaches the holders in 3 handings (8 → 4 → 2 → 1), and a courier taking a copy can still split it at the next
    /// village.
    static let copyBudget = 8

    /// Bytes a directed transfer handing on a copy budget leaves free in each packet for its copy-budgets record
    /// (SPEC 5.14): header and length (2), transfer number (at most 2: numbers are taken modulo 2^14), budget (1-3).
    static let copyBudgetRoom = 7
}
