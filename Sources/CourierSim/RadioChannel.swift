import CourierMedium
import CourierWire
import Foundation

/// A shared radio channel: who hears whom, at what strength, and which packets survive.
///
/// A pure, deterministic model (seeded SplitMix64; the same calls in the same order give the same answers). It
/// knows nothing of the engine: the simulator tells it "node A starts transmitting N bytes at t" and asks "what did
/// each node receive, and when" and "is the channel busy at B at t". Time only moves forward.
///
/// Physics (every figure is a documented default in `RadioPhysics`, overridable):
/// - Path loss: log-distance, PL(d) = PL(1 m) + 10·n·log10(d / 1 m); received power = transmit power − PL(d).
///   Or explicit links: only the listed pairs hear each other (at the path-loss strength of their positions, but
///   never weaker than sensitivity + 10 dB: a link someone declared is one that works), each with its packet loss.
/// - A packet is decodable at a receiver when its power is at or above the receiver's sensitivity.
/// - Collisions by time overlap at each receiver: a packet survives overlapping transmissions only when its power
///   is at least `captureMarginDB` above their summed power (capture effect); otherwise it is lost ("collided").
///   Equal-power overlaps therefore destroy both packets. AFSK has no capture margin: any overlap loses it.
/// - Half-duplex: a node that transmits at any moment of a packet's airtime does not receive that packet.
/// - Carrier sense: a node senses the channel busy while a transmission it could detect (power ≥ sensitivity) is on
///   the air, or while it transmits itself. `requestToSend` runs listen-before-talk as RNode or Meshtastic firmware
///   or a KISS TNC does it.
/// - Duty cycle: a node may use at most `dutyCycle` of any `dutyCycleWindow` seconds (ETSI EN 300 220: one hour).
public struct RadioChannel: Sendable {
    // MARK: Types

    public enum Radio: Sendable, Hashable {
        /// LoRa with the Semtech time-on-air formula (`LoRaParameters.timeOnAir`, as the links use).
        case lora(LoRaParameters)
        /// 1200 baud AFSK (Bell 202) packet radio, AX.25 UI frames through a KISS TNC.
        case afsk1200

        /// Seconds a frame carrying `bytes` of Courier packet occupies the channel.
        public func airtime(bytes: Int) -> Double {
            switch self {
            case .lora(let p):
                // RNode adds one header byte to each frame (see Airtime.lora(_, framing: 1) in the links).
                return p.timeOnAir(payload: bytes + 1)
            case .afsk1200:
                return AFSK1200.airtime(bytes: bytes)
            }
        }
    }

    /// AFSK 1200 frame timing.
    ///
    /// On the air: TXDELAY of flags while the transmitter keys up (300 ms, a common KISS default: 0x1E × 10 ms),
    /// one opening flag, the AX.25 header (two 7-byte addresses, control, PID = 16 bytes), the payload, the 2-byte
    /// FCS, one closing flag. HDLC inserts a 0 after five consecutive 1s in everything between the flags; on random
    /// bits (Courier packets are sealed, so ciphertext) that is one stuffed bit in 62 on average, and 1 in 5 at
    /// worst (all ones). Flags are never stuffed.
    public enum AFSK1200 {
        public static let baud = 1_200.0
        public static let txDelay = 0.300
        public static let headerBytes = 16
        public static let fcsBytes = 2
        public static let expectedStuffing = 1.0 / 62.0

        public static func airtime(bytes: Int) -> Double {
            let stuffedBits = Double((self.headerBytes + bytes + self.fcsBytes) * 8) * (1 + self.expectedStuffing)
            let flagBits = 2.0 * 8
            return self.txDelay + (stuffedBits + flagBits) / self.baud
        }
    }

    /// How a node listens before it talks.
    public enum CarrierSense: String, Sendable, Hashable, Codable {
        /// Transmit whenever asked (no listen-before-talk).
        case none
        /// RNode firmware (markqvist/RNode_Firmware, RNode_Firmware.ino `tx_queue_handler`, Config.h `CSMA_*`):
        /// sense with the modem's carrier detect (DCD: a LoRa preamble/header being received); the medium must
        /// stay free for DIFS = 2 slots, then for a contention window of `random(cw_min, cw_max)` slots; if the
        /// medium becomes busy meanwhile the wait starts over when it is free. Slot = 12 LoRa symbols, clamped to
        /// 24…100 ms. Window band 1 is 0…13 slots while the node's own airtime is ≤ 7%; bands 2…4 (15 slots each)
        /// as its airtime rises towards 85% (RNode measures its own recent airtime; we take its share of the
        /// duty-cycle window).
        case rnode
        /// Meshtastic firmware (meshtastic/firmware, src/mesh/RadioInterface.{h,cpp} `getTxDelayMsec`,
        /// `computeSlotTimeMsec`; RadioLibInterface `canSendImmediately`/`isChannelActive`): before sending wait
        /// `random(0, 2^CW)` slots, CW mapped linearly from channel utilisation 0…100% to CWmin 3…CWmax 8; then
        /// sense with channel activity detection (preamble) or an ongoing receive; if busy, draw a new delay.
        /// Slot = CAD time (max(2.25, 2 + 0.5) = 2.5 symbols) + 0.2 + 0.4 + 7 ms (propagation over 30 km, Tx/Rx
        /// turnaround, MAC processing), truncated to whole milliseconds. (Releases before CAD used 8.5 symbols and
        /// CW 2…7.)
        case meshtastic
        /// A KISS TNC on AFSK (the KISS protocol, Chepponis & Karn 1987, as Direwolf implements it): wait while
        /// carrier detect is on; when the channel is clear, transmit with probability (PERSIST + 1) / 256, else
        /// wait SLOTTIME and try again. Defaults PERSIST 63 (p = 0.25) and SLOTTIME 10 ms units = 100 ms.
        case kiss
    }

    /// KISS defaults: PERSIST 63, SLOTTIME 100 ms.
    public static let kissPersist: UInt64 = 63
    public static let kissSlotTime = 0.100

    /// Propagation and receiver figures.
    public struct RadioPhysics: Sendable, Hashable {
        /// Transmit power (dBm). LoRa: 14 dBm, the EU 863-870 MHz ERP limit (25 mW). AFSK: 5 W = 37 dBm.
        public var txPowerDBm: Double
        /// Path-loss exponent n. 3.0: the middle of 2.7-3.5 Rappaport gives for urban/obstructed terrain
        /// (Wireless Communications, table 4.2); free space is 2.
        public var pathLossExponent: Double
        /// Loss at the 1 m reference distance (dB): free space 20·log10(4π·f/c) — 31.2 dB at 868 MHz,
        /// 15.7 dB at 145 MHz.
        public var referenceLossDB: Double
        /// Thermal noise floor: −174 dBm/Hz + 10·log10(BW) + 6 dB receiver noise figure.
        public var noiseFloorDBm: Double
        /// Weakest decodable packet (dBm).
        public var sensitivityDBm: Double
        /// The stronger of overlapping packets survives when it is at least this much above the rest (dB);
        /// nil: no capture (any overlap loses the packet).
        public var captureMarginDB: Double?

        public init(txPowerDBm: Double, pathLossExponent: Double, referenceLossDB: Double, noiseFloorDBm: Double,
                    sensitivityDBm: Double, captureMarginDB: Double?) {
            self.txPowerDBm = txPowerDBm
            self.pathLossExponent = pathLossExponent
            self.referenceLossDB = referenceLossDB
            self.noiseFloorDBm = noiseFloorDBm
            self.sensitivityDBm = sensitivityDBm
            self.captureMarginDB = captureMarginDB
        }

        /// Receiver sensitivity at 125 kHz by spreading factor, SX1276 datasheet (rev. 7, table 10, band 1,
        /// 862-1020 MHz): SF6 −118, SF7 −123, SF8 −126, SF9 −129, SF10 −132, SF11 −133, SF12 −136 dBm. Other
        /// bandwidths scale by 10·log10(BW / 125 kHz). SF5 (SX126x only) is taken 3 dB above SF6.
        public static func loraSensitivity(spreadingFactor sf: Int, bandwidthHz: Int) -> Double {
            let at125: Double
            switch sf {
            case ...5: at125 = -115
            case 6: at125 = -118
            case 7: at125 = -123
            case 8: at125 = -126
            case 9: at125 = -129
            case 10: at125 = -132
            case 11: at125 = -133
            default: at125 = -136
            }
            return at125 + 10 * log10(Double(bandwidthHz) / 125_000)
        }

        /// LoRa at 868 MHz. Capture margin 6 dB for two packets of the same spreading factor: the threshold of
        /// Bor, Roedig, Voigt, Alonso, "Do LoRa Low-Power Wide-Area Networks Scale?" (MSWiM 2016, LoRaSim), from
        /// their SX1276 measurements.
        public static func lora(_ p: LoRaParameters) -> RadioPhysics {
            RadioPhysics(
                txPowerDBm: 14, pathLossExponent: 3.0, referenceLossDB: 31.2,
                noiseFloorDBm: -174 + 10 * log10(Double(p.bandwidthHz)) + 6,
                sensitivityDBm: self.loraSensitivity(spreadingFactor: p.spreadingFactor, bandwidthHz: p.bandwidthHz),
                captureMarginDB: 6)
        }

        /// AFSK 1200 on 2 m FM (145 MHz, 12.5 kHz channel). Sensitivity −113 dBm: a typical FM receiver's
        /// 12 dB SINAD point (0.25 µV, −119 dBm) plus 6 dB for clean AFSK decoding. No capture margin: FM receivers
        /// capture a much stronger carrier, but we do not credit a TNC with decoding through a collision.
        public static var afsk1200: RadioPhysics {
            RadioPhysics(txPowerDBm: 37, pathLossExponent: 3.0, referenceLossDB: 15.7,
                         noiseFloorDBm: -174 + 10 * log10(12_500) + 6, sensitivityDBm: -113, captureMarginDB: nil)
        }

        /// Received power at `metres` from a transmitter.
        public func receivedPower(metres: Double) -> Double {
            self.txPowerDBm - self.referenceLossDB - 10 * self.pathLossExponent * log10(max(metres, 1))
        }

        /// The distance at which received power falls to sensitivity.
        public var range: Double {
            pow(10, (self.txPowerDBm - self.referenceLossDB - self.sensitivityDBm) / (10 * self.pathLossExponent))
        }

        /// Signals this weak are ignored as interference: at least 10 dB under what could still spoil the weakest
        /// decodable packet, so even ten of them summed stay below the capture margin.
        var interferenceFloorDBm: Double { self.sensitivityDBm - (self.captureMarginDB ?? 0) - 10 }
    }

    public struct Position: Sendable, Hashable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
        public func distance(to o: Position) -> Double { ((self.x - o.x) * (self.x - o.x) + (self.y - o.y) * (self.y - o.y)).squareRoot() }
    }

    /// A pair that hears each other (both ways) and the probability a packet between them is lost anyway.
    public struct Link: Sendable, Hashable {
        public var a: Int
        public var b: Int
        public var loss: Double
        public init(a: Int, b: Int, loss: Double) { self.a = a; self.b = b; self.loss = loss }
    }

    /// Who hears whom.
    public enum Geometry: Sendable {
        /// Everyone hears everyone the path-loss model lets them hear.
        case positions
        /// Only these pairs hear each other.
        case links([Link])
        /// The path-loss model, and these pairs as well (long links: a ridge, a directional antenna).
        case positionsAndLinks([Link])
    }

    public struct Configuration: Sendable {
        public var radio: Radio
        public var physics: RadioPhysics
        public var carrierSense: CarrierSense
        /// Fraction of any `dutyCycleWindow` a node may transmit; nil: no limit.
        public var dutyCycle: Double?
        public var dutyCycleWindow: Double = 3_600
        public var seed: UInt64

        /// `carrierSense` nil: as the usual modem for the radio does it (LoRa: RNode; AFSK: a KISS TNC).
        public init(radio: Radio, carrierSense: CarrierSense? = nil, dutyCycle: Double? = nil, seed: UInt64) {
            self.radio = radio
            switch radio {
            case .lora(let p): self.physics = .lora(p)
            case .afsk1200: self.physics = .afsk1200
            }
            switch radio {
            case .lora: self.carrierSense = carrierSense ?? .rnode
            case .afsk1200: self.carrierSense = carrierSense ?? .kiss
            }
            self.dutyCycle = dutyCycle
            self.seed = seed
        }
    }

    public typealias TransmissionID = Int

    /// A transmission on the air.
    public struct Transmission: Sendable, Hashable {
        public var id: TransmissionID
        public var from: Int
        public var bytes: Int
        public var start: Double
        public var end: Double
    }

    /// What one receiver made of one transmission.
    public struct Reception: Sendable, Hashable {
        public enum Outcome: Sendable, Hashable {
            case received
            /// Lost to overlapping transmissions (the ids of those that were on the air at this receiver).
            case collided(with: [TransmissionID])
            /// The receiver was transmitting (half-duplex).
            case receiverTransmitting
            /// The receiver was down.
            case receiverDown
            /// The link's own packet loss.
            case lost
        }
        public var transmission: TransmissionID
        public var from: Int
        public var to: Int
        /// When the last bit arrived (the transmission's end).
        public var at: Double
        public var bytes: Int
        public var powerDBm: Double
        public var outcome: Outcome
    }

    /// Why a transmission could not start.
    public enum ChannelError: Error, Sendable, Hashable, CustomStringConvertible {
        case unknownNode(Int)
        case timeWentBackwards(now: Double, asked: Double)
        case alreadyTransmitting(node: Int, until: Double)
        case nodeDown(Int)
        case dutyCycleExceeded(node: Int, until: Double)
        case badLink(Link)

        public var description: String {
            switch self {
            case .unknownNode(let n): return "node \(n) is not on this channel: use an index below the node count"
            case .timeWentBackwards(let now, let asked):
                return "the channel is at t=\(now) s and was asked about t=\(asked) s: feed it events in time order"
            case .alreadyTransmitting(let n, let until): return "node \(n) is already transmitting until t=\(until) s: wait for the end"
            case .nodeDown(let n): return "node \(n) is down: bring it up before it transmits"
            case .dutyCycleExceeded(let n, let until):
                return "node \(n) would exceed its duty cycle: it may transmit again at t=\(until) s"
            case .badLink(let l): return "link \(l.a)-\(l.b) with loss \(l.loss) is invalid: name two different nodes and a loss in 0...1"
            }
        }
    }

    /// Running totals.
    public struct Statistics: Sendable, Hashable {
        public var transmissions = 0
        public var airtime = 0.0
        public var received = 0
        /// Receptions lost to overlapping transmissions.
        public var collisions = 0
        /// Receptions a stronger packet survived (capture effect).
        public var captures = 0
        public var lostHalfDuplex = 0
        public var lostLinkLoss = 0
        public var lostReceiverDown = 0
        /// Times a node asked to send and was told to wait because it sensed the channel busy.
        public var deferralsBusy = 0
    }

    /// What `requestToSend` tells a node.
    public enum Access: Sendable, Hashable {
        case transmit
        case wait(until: Double, reason: WaitReason)
    }
    public enum WaitReason: String, Sendable, Hashable {
        /// It senses a transmission on the air (or is transmitting).
        case busy
        /// It is counting down its listen-before-talk backoff.
        case backoff
        /// Its duty-cycle budget is spent.
        case dutyCycle
    }

    // MARK: State

    public let configuration: Configuration
    public let count: Int
    public private(set) var positions: [Position]
    /// Received power (dBm) from sender to receiver, row-major; -infinity: does not hear at all.
    private var power: [Float]
    /// Per-link packet loss, row-major; 0 where there is no explicit link.
    private var loss: [Float]
    /// Per sender: receivers whose power is above the interference floor.
    private var audible: [[Int]]
    /// Whether the path-loss model decides who hears whom (false: explicit links only).
    private let usesPositions: Bool
    private var rng: SplitMix64
    public private(set) var now: Double = 0
    private var nextID = 0
    /// Transmissions not yet decided, and decided ones that may still overlap an undecided one.
    private var onAir: [Transmission] = []
    private var decided: Set<TransmissionID> = []
    private var down: [Bool]
    /// Partition group per node (nil: everyone hears everyone).
    private var group: [Int]?
    private var history: [[(start: Double, duration: Double)]]
    private var rnodeWait: [RNodeWait?]
    private var meshtasticDue: [Double?]
    /// Per node: transmissions it sensed (or sent) in the last two minutes, for listen-before-talk.
    private var sensed: [[(start: Double, end: Double)]]
    public private(set) var statistics = Statistics()
    /// Airtime each node has used in total.
    public private(set) var airtimeByNode: [Double]

    public init(positions: [Position], geometry: Geometry = .positions, configuration: Configuration) throws(ChannelError) {
        let n = positions.count
        self.count = n
        self.positions = positions
        self.configuration = configuration
        self.rng = SplitMix64(seed: configuration.seed)
        let phy = configuration.physics
        var power = [Float](repeating: -.infinity, count: n * n)
        var loss = [Float](repeating: 0, count: n * n)
        let links: [Link]
        let usePositions: Bool
        switch geometry {
        case .positions: links = []; usePositions = true
        case .links(let l): links = l; usePositions = false
        case .positionsAndLinks(let l): links = l; usePositions = true
        }
        if usePositions {
            for s in 0..<n {
                for r in 0..<n where r != s {
                    let p = phy.receivedPower(metres: positions[s].distance(to: positions[r]))
                    if p >= phy.interferenceFloorDBm { power[s * n + r] = Float(p) }
                }
            }
        }
        for l in links {
            guard l.a >= 0, l.a < n, l.b >= 0, l.b < n, l.a != l.b, l.loss >= 0, l.loss <= 1 else { throw .badLink(l) }
            let p = max(phy.receivedPower(metres: positions[l.a].distance(to: positions[l.b])), phy.sensitivityDBm + 10)
            for (s, r) in [(l.a, l.b), (l.b, l.a)] {
                power[s * n + r] = Float(p)
                loss[s * n + r] = Float(l.loss)
            }
        }
        self.power = power
        self.loss = loss
        self.usesPositions = usePositions
        self.audible = (0..<n).map { s in (0..<n).filter { power[s * n + $0] > -.infinity } }
        self.down = Array(repeating: false, count: n)
        self.history = Array(repeating: [], count: n)
        self.rnodeWait = Array(repeating: nil, count: n)
        self.meshtasticDue = Array(repeating: nil, count: n)
        self.sensed = Array(repeating: [], count: n)
        self.airtimeByNode = Array(repeating: 0, count: n)
    }

    // MARK: Queries

    public func airtime(bytes: Int) -> Double { self.configuration.radio.airtime(bytes: bytes) }

    /// Received power at `to` of a transmission by `from` (nil: `to` does not hear `from` at all).
    public func receivedPower(from: Int, to: Int) -> Double? {
        guard from != to, self.connected(from, to) else { return nil }
        let p = self.power[from * self.count + to]
        return p == -.infinity ? nil : Double(p)
    }

    /// Whether `to` can decode `from` when nothing else is on the air.
    public func hears(_ to: Int, _ from: Int) -> Bool {
        guard let p = self.receivedPower(from: from, to: to) else { return false }
        return p >= self.configuration.physics.sensitivityDBm
    }

    /// Nodes that can decode `node` on a quiet channel.
    public func neighbours(of node: Int) -> [Int] { self.audible[node].filter { self.hears($0, node) } }

    private func connected(_ a: Int, _ b: Int) -> Bool {
        guard let g = self.group else { return true }
        return g[a] == g[b]
    }

    /// The end of the latest transmission `node` senses at `time`, or nil when it senses the channel free.
    /// A node senses what it could detect (power ≥ sensitivity: LoRa CAD and RNode's DCD detect preambles down to
    /// about the sensitivity), and its own transmissions.
    public func busyUntil(at node: Int, time: Double) -> Double? {
        var until: Double? = nil
        for t in self.onAir where t.start <= time && time < t.end {
            if t.from == node || self.hears(node, t.from) { until = max(until ?? t.end, t.end) }
        }
        return until
    }

    /// Whether `node` senses the channel busy at `time`.
    public func isBusy(at node: Int, time: Double) -> Bool { self.busyUntil(at: node, time: time) != nil }

    /// When `node` may next start a transmission of `airtime` seconds without exceeding its duty cycle.
    public func dutyCycleAllows(node: Int, airtime: Double, at time: Double) -> Double {
        guard let dc = self.configuration.dutyCycle else { return time }
        let window = self.configuration.dutyCycleWindow
        let budget = dc * window
        var used = self.history[node].filter { $0.start + $0.duration > time - window }
        var t = time
        while true {
            let inWindow = used.reduce(0.0) { acc, h in
                acc + max(0, min(h.start + h.duration, t) - max(h.start, t - window))
            }
            if inWindow + airtime <= budget + 1e-9 || used.isEmpty { return t }
            // Slide until the oldest transmission has left the window.
            let oldest = used.removeFirst()
            t = max(t, oldest.start + oldest.duration + window)
        }
    }

    /// Fraction of the last `dutyCycleWindow` seconds `node` spent transmitting.
    public func ownAirtimeFraction(node: Int, at time: Double) -> Double {
        let window = self.configuration.dutyCycleWindow
        let used = self.history[node].reduce(0.0) { acc, h in
            acc + max(0, min(h.start + h.duration, time) - max(h.start, time - window))
        }
        return used / window
    }

    // MARK: Events

    public mutating func setDown(_ node: Int, _ isDown: Bool) { self.down[node] = isDown }
    public func isDown(_ node: Int) -> Bool { self.down[node] }

    /// Only nodes in the same group hear each other (nodes in no group form one more group). `heal()` undoes it.
    public mutating func partition(_ groups: [[Int]]) {
        var g = Array(repeating: groups.count, count: self.count)
        for (i, members) in groups.enumerated() { for m in members { g[m] = i } }
        self.group = g
    }
    public mutating func heal() { self.group = nil }

    /// Carries `node` (a relay someone moves, e.g. a courier) next to `stop`: from there it hears and is heard by
    /// the path-loss model (when the geometry uses positions) and always by `stop` itself, loss-free, at least 10 dB
    /// above sensitivity (it is in range of the relay it visits); during a partition it joins `stop`'s group.
    /// `stop` nil: out of everyone's range (on the road). Transmissions already on the air keep the powers they had
    /// when they are decided: call this between transmissions of `node`.
    public mutating func carry(_ node: Int, to stop: Int?) {
        let n = self.count
        let phy = self.configuration.physics
        for other in 0..<n where other != node {
            var p = -Float.infinity
            if let s = stop {
                if other == s {
                    p = Float(max(phy.receivedPower(metres: 10), phy.sensitivityDBm + 10))
                } else if self.usesPositions {
                    let d = self.positions[s].distance(to: self.positions[other])
                    let q = phy.receivedPower(metres: max(d, 10))
                    if q >= phy.interferenceFloorDBm { p = Float(q) }
                }
            }
            self.power[node * n + other] = p
            self.power[other * n + node] = p
            self.loss[node * n + other] = 0
            self.loss[other * n + node] = 0
            let hears = p > -.infinity
            if let k = self.audible[other].firstIndex(of: node) {
                if !hears { self.audible[other].remove(at: k) }
            } else if hears {
                let at = self.audible[other].firstIndex { $0 > node } ?? self.audible[other].count
                self.audible[other].insert(node, at: at)
            }
        }
        self.audible[node] = (0..<n).filter { self.power[node * n + $0] > -.infinity }
        if let s = stop {
            self.positions[node] = self.positions[s]
            if var g = self.group {
                g[node] = g[s]
                self.group = g
            }
        }
    }

    private mutating func advance(to time: Double) throws(ChannelError) {
        guard time >= self.now else { throw .timeWentBackwards(now: self.now, asked: time) }
        self.now = time
    }

    /// Listen-before-talk: may `node` start a transmission of `bytes` now? Call again at `until` when told to wait.
    public mutating func requestToSend(node: Int, bytes: Int, at time: Double) throws(ChannelError) -> Access {
        guard node >= 0, node < self.count else { throw .unknownNode(node) }
        try self.advance(to: time)
        let airtime = self.airtime(bytes: bytes)
        let allowed = self.dutyCycleAllows(node: node, airtime: airtime, at: time)
        if allowed > time { return .wait(until: allowed, reason: .dutyCycle) }
        switch self.configuration.carrierSense {
        case .none:
            if let own = self.onAir.first(where: { $0.from == node && $0.end > time }) {
                return .wait(until: own.end, reason: .busy)
            }
            return .transmit
        case .rnode:
            let slot = self.rnodeSlot
            let difs = 2 * slot
            var w: RNodeWait
            if let existing = self.rnodeWait[node] {
                w = existing
            } else {
                // csma_cw = random(cw_min, cw_max) (max exclusive), drawn once per packet.
                let band = self.rnodeBand(ownAirtime: self.ownAirtimeFraction(node: node, at: time))
                let cwMin = (band - 1) * 15, cwMax = band * 15 - 1
                let cw = cwMin + Int(self.rng.next() % UInt64(cwMax - cwMin))
                w = RNodeWait(target: Double(cw) * slot, passed: 0, freeSince: nil)
            }
            // The medium went busy since the free wait began: the DIFS wait starts over, the contention-window
            // time already waited is kept (cw_wait_passed).
            if let fs = w.freeSince, let firstBusy = self.firstSensedBusy(node: node, after: fs, upTo: time) {
                w.passed += max(0, firstBusy - (fs + difs))
                w.freeSince = nil
            }
            if let until = self.busyUntil(at: node, time: time) {
                self.rnodeWait[node] = w
                self.statistics.deferralsBusy += 1
                return .wait(until: until, reason: .busy)
            }
            let since = w.freeSince ?? time
            w.freeSince = since
            let ready = since + difs + max(0, w.target - w.passed)
            if time >= ready - 1e-12 {
                self.rnodeWait[node] = nil
                return .transmit
            }
            self.rnodeWait[node] = w
            return .wait(until: ready, reason: .backoff)
        case .kiss:
            if let until = self.busyUntil(at: node, time: time) {
                self.statistics.deferralsBusy += 1
                return .wait(until: until, reason: .busy)
            }
            if self.rng.next() % 256 <= Self.kissPersist { return .transmit }
            return .wait(until: time + Self.kissSlotTime, reason: .backoff)
        case .meshtastic:
            if let due = self.meshtasticDue[node] {
                if time < due { return .wait(until: due, reason: .backoff) }
                if self.busyUntil(at: node, time: time) == nil {
                    self.meshtasticDue[node] = nil
                    return .transmit
                }
                self.statistics.deferralsBusy += 1
            }
            let busyNow = self.busyUntil(at: node, time: time) != nil
            // CWsize = map(channel utilisation %, 0, 100, CWmin 3, CWmax 8); delay = random(0, 2^CWsize) slots.
            let util = self.sensedUtilisation(node: node, at: time, window: 60)
            let cw = 3 + Int((util * 5).rounded(.down))
            var slots = Int(self.rng.next() % UInt64(1 << cw))
            // Re-sensing a busy channel takes at least the slot (CAD time is part of it): never re-check at once.
            if busyNow { slots = max(slots, 1) }
            let due = time + Double(slots) * self.meshtasticSlot
            if due <= time {
                return .transmit
            }
            self.meshtasticDue[node] = due
            return .wait(until: due, reason: busyNow ? .busy : .backoff)
        }
    }

    struct RNodeWait: Sendable {
        var target: Double
        var passed: Double
        var freeSince: Double?
    }

    /// The first moment after `after` (and at or before `upTo`) that `node` sensed a transmission.
    private func firstSensedBusy(node: Int, after: Double, upTo: Double) -> Double? {
        var first: Double? = nil
        for s in self.sensed[node] where s.end > after && s.start <= upTo {
            let t = max(s.start, after)
            first = min(first ?? t, t)
        }
        return first
    }

    /// RNode's slot: 12 symbols, clamped to 24…100 ms. (AFSK: one 24 ms slot.)
    public var rnodeSlot: Double {
        guard case .lora(let p) = self.configuration.radio else { return 0.024 }
        return min(max(p.symbolTime * 12, 0.024), 0.100)
    }

    /// Meshtastic's slot: 2.5 symbols of CAD + 0.2 + 0.4 + 7 ms, in whole milliseconds. (AFSK: 10 ms + 7.6 ms.)
    public var meshtasticSlot: Double {
        guard case .lora(let p) = self.configuration.radio else { return 0.017 }
        return (2.5 * p.symbolTime * 1000 + 7.6).rounded(.down) / 1000
    }

    private func rnodeBand(ownAirtime: Double) -> Int {
        let pct = Int(ownAirtime * 100)
        if pct <= 7 { return 1 }
        // map(pct + 7, 7, 85, 2, 4), capped at 4 (Arduino map: integer arithmetic).
        let band = (pct + 7 - 7) * (4 - 2) / (85 - 7) + 2
        return min(band, 4)
    }

    /// Share of the last `window` seconds `node` sensed the channel busy or transmitted (overlaps counted once).
    private func sensedUtilisation(node: Int, at time: Double, window: Double) -> Double {
        var busy = 0.0
        var coveredUntil = time - window
        for s in self.sensed[node].sorted(by: { $0.start < $1.start }) {
            let a = max(s.start, coveredUntil), b = min(s.end, time)
            if b > a { busy += b - a; coveredUntil = b }
        }
        return min(busy / window, 1)
    }

    /// `node` starts transmitting `bytes` at `time`. The packet is on the air until `time + airtime`.
    @discardableResult
    public mutating func startTransmission(from node: Int, bytes: Int, at time: Double) throws(ChannelError) -> Transmission {
        guard node >= 0, node < self.count else { throw .unknownNode(node) }
        try self.advance(to: time)
        guard !self.down[node] else { throw .nodeDown(node) }
        if let own = self.onAir.first(where: { $0.from == node && $0.end > time }) {
            throw .alreadyTransmitting(node: node, until: own.end)
        }
        let airtime = self.airtime(bytes: bytes)
        let allowed = self.dutyCycleAllows(node: node, airtime: airtime, at: time)
        if allowed > time { throw .dutyCycleExceeded(node: node, until: allowed) }
        let t = Transmission(id: self.nextID, from: node, bytes: bytes, start: time, end: time + airtime)
        self.nextID += 1
        self.onAir.append(t)
        self.history[node].append((start: time, duration: airtime))
        let window = self.configuration.dutyCycleWindow
        self.history[node].removeAll { $0.start + $0.duration <= time - window }
        for r in [node] + self.audible[node] where r == node || self.hears(r, node) {
            self.sensed[r].removeAll { $0.end < time - 120 }
            self.sensed[r].append((start: time, end: time + airtime))
        }
        self.statistics.transmissions += 1
        self.statistics.airtime += airtime
        self.airtimeByNode[node] += airtime
        return t
    }

    /// The receptions of every transmission that ended by `time`, in the order they ended (ties: by id), each
    /// receiver in index order. Only receivers that could decode the sender on a quiet channel are reported.
    public mutating func receptions(through time: Double) throws(ChannelError) -> [Reception] {
        try self.advance(to: time)
        let ending = self.onAir.filter { !self.decided.contains($0.id) && $0.end <= time }
            .sorted { ($0.end, $0.id) < ($1.end, $1.id) }
        var out: [Reception] = []
        let phy = self.configuration.physics
        for t in ending {
            self.decided.insert(t.id)
            let overlapping = self.onAir.filter { $0.id != t.id && $0.start < t.end && $0.end > t.start }
            for r in self.audible[t.from] where r != t.from {
                guard let p = self.receivedPower(from: t.from, to: r), p >= phy.sensitivityDBm else { continue }
                let outcome: Reception.Outcome
                if self.down[r] {
                    outcome = .receiverDown
                    self.statistics.lostReceiverDown += 1
                } else if overlapping.contains(where: { $0.from == r }) {
                    outcome = .receiverTransmitting
                    self.statistics.lostHalfDuplex += 1
                } else {
                    var interferenceMW = 0.0
                    var interferers: [TransmissionID] = []
                    for o in overlapping {
                        if let q = self.receivedPower(from: o.from, to: r) {
                            interferenceMW += pow(10, q / 10)
                            interferers.append(o.id)
                        }
                    }
                    let captured = !interferers.isEmpty && phy.captureMarginDB.map { p - 10 * log10(interferenceMW) >= $0 } == true
                    if !interferers.isEmpty && !captured {
                        outcome = .collided(with: interferers)
                        self.statistics.collisions += 1
                    } else {
                        let l = Double(self.loss[t.from * self.count + r])
                        if l > 0 && self.rng.unit() < l {
                            outcome = .lost
                            self.statistics.lostLinkLoss += 1
                        } else {
                            outcome = .received
                            self.statistics.received += 1
                            if captured { self.statistics.captures += 1 }
                        }
                    }
                }
                out.append(Reception(transmission: t.id, from: t.from, to: r, at: t.end, bytes: t.bytes, powerDBm: p, outcome: outcome))
            }
        }
        // Forget what can no longer overlap anything undecided (new transmissions start at `now` or later).
        let earliestUndecided = self.onAir.filter { !self.decided.contains($0.id) }.map(\.start).min() ?? time
        let keepAfter = min(earliestUndecided, time)
        let dropped = self.onAir.filter { self.decided.contains($0.id) && $0.end <= keepAfter }
        if !dropped.isEmpty {
            let ids = Set(dropped.map(\.id))
            self.onAir.removeAll { ids.contains($0.id) }
            self.decided.subtract(ids)
        }
        return out
    }

    /// Transmissions on the air, or ended but still able to overlap one that has not been decided.
    public var transmissionsOnAir: [Transmission] { self.onAir }
}
