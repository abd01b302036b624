import Foundation
import Logging
import SwiftProtobuf
import Synchronization

/// Meshtastic devices as modems, through their client API ("stream API": USB serial, or TCP port 4403 as meshtasticd
/// and Wi-Fi boards serve it). The device keeps its own radio settings (region, modem preset, channel); Courier
/// learns them in the config handshake and sends each packet as one MeshPacket on the PRIVATE_APP port, broadcast on
/// the primary channel with hop limit 0 (Courier routes; the device must not re-flood) and without want_ack (the
/// firmware would then raise hop limit 0 to 3). See firmware-notes/meshtastic.md.
public enum Meshtastic {
    public static let start1: UInt8 = 0x94
    public static let start2: UInt8 = 0xC3
    /// Largest protobuf in one frame, either way.
    public static let maxFrame = 512
    public static let defaultTCPPort = 4403
    public static let defaultBaud = 115_200
    /// PortNum.PRIVATE_APP.
    public static let privateApp: UInt32 = 256
    static let routingApp: UInt32 = 5
    public static let broadcast: UInt32 = 0xFFFF_FFFF
    /// Largest Data.payload the device sends to broadcast (firmware 2.5+: 233 less the 2-byte bitfield it adds).
    /// Courier broadcasts every packet, so this is the link MTU. A packet directed to a node whose public key the
    /// device knows would be PKI-encrypted and carry only 219.
    public static let broadcastPayloadLimit = 231
    /// Bytes the device adds on air around a PRIVATE_APP payload of 128 bytes or more: the 16-byte LoRa packet
    /// header, Data.portnum (3), the payload's tag and length (3) and Data.bitfield (2).
    public static let airOverhead = 24
    /// Wake-up and resynchronisation bytes sent before the first frame (as the Python client does).
    public static let wake = [UInt8](repeating: 0xC3, count: 32)

    /// One frame: 0x94 0xC3, 16-bit big-endian length, the protobuf.
    public static func frame(_ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= self.maxFrame)
        return [self.start1, self.start2, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// The modem presets (LoRaConfig.ModemPreset) with their modulation as the firmware sets it (16-symbol
    /// preamble). Presets added after firmware 2.7's set are not here: their airtime is taken from LongFast.
    public static func preset(_ number: UInt32) -> (name: String, lora: LoRaParameters)? {
        func p(_ sf: Int, _ bw: Int, _ cr: Int) -> LoRaParameters {
            LoRaParameters(spreadingFactor: sf, bandwidthHz: bw, codingRate: cr, preambleSymbols: 16)
        }
        switch number {
        case 0: return ("LONG_FAST", p(11, 250_000, 5))
        case 1: return ("LONG_SLOW", p(12, 125_000, 8))
        case 2: return ("VERY_LONG_SLOW", p(12, 62_500, 8))
        case 3: return ("MEDIUM_SLOW", p(10, 250_000, 5))
        case 4: return ("MEDIUM_FAST", p(9, 250_000, 5))
        case 5: return ("SHORT_SLOW", p(8, 250_000, 5))
        case 6: return ("SHORT_FAST", p(7, 250_000, 5))
        case 7: return ("LONG_MODERATE", p(11, 125_000, 8))
        case 8: return ("SHORT_TURBO", p(7, 500_000, 5))
        case 9: return ("LONG_TURBO", p(11, 500_000, 8))
        default: return nil
        }
    }

    static let regions = [
        "UNSET", "US", "EU_433", "EU_868", "CN", "JP", "ANZ", "KR", "TW", "RU", "IN", "NZ_865", "TH", "LORA_24",
        "UA_433", "UA_868", "MY_433", "MY_919", "SG_923", "PH_433", "PH_868", "PH_915", "ANZ_433", "KZ_433", "KZ_863",
        "NP_865", "BR_902",
    ]
    public static func regionName(_ n: UInt32) -> String { n < self.regions.count ? self.regions[Int(n)] : "region \(n)" }

    /// Airtime on LongFast, the firmware's default preset.
    public static var longFast: LoRaParameters { self.preset(0)!.lora }

    /// What the device said in the config handshake.
    public struct Device: Sendable, Hashable {
        public var nodeNumber: UInt32 = 0
        public var firmware: String?
        public var region: UInt32 = 0
        public var presetNumber: UInt32 = 0
        public var usePreset = true
        /// The modulation in use (from the preset, or the custom bandwidth / SF / CR).
        public var lora: LoRaParameters = Meshtastic.longFast
        public var hopLimit: UInt32 = 3
        public var txEnabled = true
        public var primaryChannel = ""
        public var nodes = 0
        public init() {}

        public var modem: String {
            if self.usePreset { return Meshtastic.preset(self.presetNumber)?.name ?? "preset \(self.presetNumber)" }
            return "custom SF\(self.lora.spreadingFactor) BW\(self.lora.bandwidthHz / 1000) kHz CR 4/\(self.lora.codingRate)"
        }
    }

    /// The config handshake: wake bytes, want_config_id, then every FromRadio until config_complete_id echoes it.
    /// Gives up after `timeout` seconds without a frame, or once the device stops sending for 5 s before it is done;
    /// asks a second time after 4 s of silence (a board that resets when its port opens misses the first request).
    public static func handshake(_ ch: ByteChannel, label: String, timeout: Double = 10, logger: Logger) throws(LinkError) -> Device {
        var decoder = MeshtasticStreamDecoder()
        var nonce = UInt32.random(in: 1...0xFFFF_0000)
        // 69420 and 69421 ask the firmware for a partial config (the apps' two-step start): avoid them.
        if nonce == 69_420 || nonce == 69_421 { nonce += 2 }
        var want = Courier_Meshtastic_ToRadio()
        want.wantConfigID = nonce
        try ch.write(self.wake, timeout: 2)
        try ch.write(self.frame(Self.encode(want)), timeout: 2)
        var dev = Device()
        var sawMyInfo = false
        let started = Date()
        var end = started.addingTimeInterval(timeout)
        var heard = false
        var askedAgain = false
        while true {
            if !heard && !askedAgain && Date().timeIntervalSince(started) >= 4 {
                askedAgain = true
                try ch.write(self.wake, timeout: 2)
                try ch.write(self.frame(Self.encode(want)), timeout: 2)
            }
            guard end.timeIntervalSinceNow > 0 else {
                throw .handshake("\(label): no Meshtastic device answered the config request\(heard ? " to the end" : "") within \(Int(Date().timeIntervalSince(started))) s; is Meshtastic firmware (2.x) on it, the serial module off and the port or address right?")
            }
            let bytes = try ch.read(max: 4_096, timeout: 0.2)
            let bodies = decoder.feed(bytes[...])
            if !bodies.isEmpty {
                heard = true
                end = max(end, Date().addingTimeInterval(5))
            }
            for body in bodies {
                let m: Courier_Meshtastic_FromRadio
                do { m = try Courier_Meshtastic_FromRadio(serializedBytes: body) } catch {
                    // Counted by the link once running; during the handshake only logged.
                    logger.debug("refused frame during the Meshtastic handshake", metadata: ["device": "\(label)", "reason": "not a FromRadio message: \(error)"])
                    continue
                }
                switch m.payloadVariant {
                case .myInfo(let i):
                    dev.nodeNumber = i.myNodeNum
                    sawMyInfo = true
                case .metadata(let md): dev.firmware = md.firmwareVersion
                case .channel(let c) where c.index == 0: dev.primaryChannel = c.settings.name
                case .nodeInfo: dev.nodes += 1
                case .config(let c):
                    if case .lora(let l) = c.payloadVariant {
                        dev.region = l.region
                        dev.usePreset = l.usePreset
                        dev.presetNumber = l.modemPreset
                        dev.hopLimit = l.hopLimit
                        dev.txEnabled = l.txEnabled
                        if l.usePreset {
                            dev.lora = self.preset(l.modemPreset)?.lora ?? self.longFast
                        } else if (5...12).contains(l.spreadFactor), l.bandwidth > 0 {
                            dev.lora = LoRaParameters(spreadingFactor: Int(l.spreadFactor), bandwidthHz: Int(l.bandwidth) * 1000,
                                                      codingRate: (5...8).contains(l.codingRate) ? Int(l.codingRate) : 5, preambleSymbols: 16)
                        }
                    }
                case .configCompleteID(let n) where n == nonce:
                    guard sawMyInfo, dev.nodeNumber != 0 else {
                        throw .handshake("\(label): the Meshtastic device finished its config without telling its node number; update its firmware (2.x)")
                    }
                    return dev
                default: break
                }
            }
        }
    }

    static func encode(_ m: Courier_Meshtastic_ToRadio) -> [UInt8] {
        // Encoding a message built here cannot fail (no required fields, no Any): a failure is a programming error.
        do { return try m.serializedBytes() } catch { preconditionFailure("ToRadio encoding failed: \(error)") }
    }

    /// ToRadio.packet carrying one Courier packet: PRIVATE_APP, broadcast on the primary channel, hop limit 0, no
    /// want_ack, the given (unique, non-zero) id.
    public static func packetFrame(_ payload: [UInt8], id: UInt32, to: UInt32 = Meshtastic.broadcast, channel: UInt32 = 0) -> [UInt8] {
        var t = Courier_Meshtastic_ToRadio()
        var p = Courier_Meshtastic_MeshPacket()
        p.to = to
        p.channel = channel
        p.id = id
        p.hopLimit = 0
        p.wantAck = false
        var d = Courier_Meshtastic_Data()
        d.portnum = self.privateApp
        d.payload = Data(payload)
        p.decoded = d
        t.packet = p
        return self.frame(self.encode(t))
    }

    public static func heartbeatFrame() -> [UInt8] {
        var t = Courier_Meshtastic_ToRadio()
        t.heartbeat = Courier_Meshtastic_Heartbeat()
        return self.frame(self.encode(t))
    }
}

/// Finds 0x94 0xC3 LEN LEN frames in the byte stream; anything between frames (the device's console text before
/// it saw a client frame, line noise) is skipped. A length over 512 is no frame: counted and skipped.
public struct MeshtasticStreamDecoder: Sendable {
    private var buffer: [UInt8] = []
    public private(set) var oversize = 0
    public private(set) var skippedBytes = 0
    public init() {}

    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        self.buffer += bytes
        var out: [[UInt8]] = []
        var i = 0
        while true {
            // Look for the start bytes.
            var s = i
            while s + 1 < self.buffer.count && !(self.buffer[s] == Meshtastic.start1 && self.buffer[s + 1] == Meshtastic.start2) { s += 1 }
            if s + 1 >= self.buffer.count {
                // Keep a last 0x94 that may begin a frame.
                let keep = (s < self.buffer.count && self.buffer[s] == Meshtastic.start1) ? s : self.buffer.count
                self.skippedBytes += keep - i
                i = keep
                break
            }
            self.skippedBytes += s - i
            i = s
            guard self.buffer.count - i >= 4 else { break }
            let n = Int(self.buffer[i + 2]) << 8 | Int(self.buffer[i + 3])
            if n > Meshtastic.maxFrame {
                self.oversize += 1
                i += 2
                continue
            }
            guard self.buffer.count - i - 4 >= n else { break }
            out.append(Array(self.buffer[(i + 4)..<(i + 4 + n)]))
            i += 4 + n
        }
        self.buffer.removeFirst(i)
        return out
    }
}

/// A Meshtastic device as a link. Opens the port (or TCP connection), runs the config handshake, then reads
/// FromRadio frames on a dedicated thread: PRIVATE_APP packets are Courier packets, QueueStatus answers say how many
/// transmit slots are free (a send waits while none is), everything else is skipped. A heartbeat goes out every
/// minute (the device drops clients silent for 15), and every second while the queue is full. When the device goes
/// away (unplugged, rebooted, TCP closed) the link reports down and reconnects with the link backoff, handshake
/// included.
public final class MeshtasticLink: Link, @unchecked Sendable {
    public typealias Opener = @Sendable () throws(LinkError) -> ByteChannel

    public let name: String
    public let events: AsyncStream<LinkEvent>
    private let continuation: AsyncStream<LinkEvent>.Continuation
    private let label: String
    private let opener: Opener
    private let backoff: Backoff
    private let logger: Logger
    private let mtu: Int
    private let writer = DispatchQueue(label: "courier.link.meshtastic.writer")
    /// Longest a send waits for a free transmit slot before giving up (the packet stays queued in the store).
    private let sendTimeout: Double
    static var heartbeatInterval: Double { 60 }
    static var stableAfter: Double { 10 }

    /// How long a packet given to the device counts against its free slots while the device has not yet answered
    /// it with a QueueStatus naming its id (the answer comes within milliseconds; a packet the device dropped
    /// without one must not block the queue for ever).
    static var unansweredFor: Double { 10 }

    private struct Session {
        let channel: ByteChannel
        let device: Meshtastic.Device
        /// Free transmit slots as the device's last QueueStatus said, less the packets sent since that the device
        /// had not seen when it said so.
        var free = 1
        var maxlen = 16
        var sentAt = Date()
        /// Packets given to the device whose own QueueStatus has not come back, by id, with when they were sent.
        /// Any QueueStatus that comes before a packet's own answer was counted without it (a heartbeat's answer,
        /// or a slot freed by a transmission, crossing the packet on the line).
        var unanswered: [UInt32: Date] = [:]

        mutating func status(_ q: Courier_Meshtastic_QueueStatus, at now: Date) {
            self.unanswered[q.meshPacketID] = nil
            self.unanswered = self.unanswered.filter { now.timeIntervalSince($0.value) < MeshtasticLink.unansweredFor }
            self.free = Int(q.free) - self.unanswered.count
            if q.maxlen > 0 { self.maxlen = Int(q.maxlen) }
        }
    }

    private struct State {
        var session: Session?
        var opened: (ByteChannel, Meshtastic.Device)?
        var stopped = false
        var counters = LinkCounters()
        var device: Meshtastic.Device?
        var nextID = UInt32.random(in: 1...0x7FFF_FFFF)
        var refused = 0
    }
    private let state = Mutex(State())

    public init(name: String, label: String, mtu: Int? = nil, backoff: Backoff = Backoff(), sendTimeout: Double = 60,
                logger: Logger, open: @escaping Opener) {
        self.name = name
        self.label = label
        self.opener = open
        self.backoff = backoff
        self.logger = logger
        self.sendTimeout = sendTimeout
        self.mtu = min(mtu ?? Meshtastic.broadcastPayloadLimit, Meshtastic.broadcastPayloadLimit)
        (self.events, self.continuation) = AsyncStream.makeStream(of: LinkEvent.self, bufferingPolicy: .bufferingNewest(4_096))
    }

    /// MTU 231 (the device's broadcast payload limit); airtime from the device's modem preset once the handshake
    /// told it (LongFast before), with the 24 bytes the device adds on air.
    public var properties: LinkProperties {
        let lora = self.state.withLock { $0.device?.lora } ?? Meshtastic.longFast
        return LinkProperties(mtu: self.mtu, bitsPerSecond: lora.bitsPerSecond, duplex: .half, mediumChecksFrames: true,
                              airtime: .lora(lora, framing: Meshtastic.airOverhead))
    }

    /// What the device reported in the last handshake.
    public var device: Meshtastic.Device? { self.state.withLock { $0.device } }
    public var isUp: Bool { self.state.withLock { $0.session != nil } }
    public var counters: LinkCounters { self.state.withLock { $0.counters } }

    public func start() {
        let t = Thread { [self] in self.run() }
        t.name = "courier.link.\(self.name)"
        t.start()
    }

    public func stop() {
        let chs = self.state.withLock { s -> [ByteChannel] in
            s.stopped = true
            defer { s.session = nil; s.opened = nil }
            return [s.session?.channel, s.opened?.0].compactMap { $0 }
        }
        for ch in chs { ch.close() }
    }

    public func openAtStart() throws(LinkError) {
        let (ch, dev) = try self.connect()
        let old = self.state.withLock { s -> ByteChannel? in
            defer { s.opened = (ch, dev); s.device = dev }
            return s.opened?.0
        }
        old?.close()
    }

    private func connect() throws(LinkError) -> (ByteChannel, Meshtastic.Device) {
        let ch = try self.opener()
        do throws(LinkError) {
            let dev = try Meshtastic.handshake(ch, label: self.label, logger: self.logger)
            return (ch, dev)
        } catch {
            ch.close()
            throw error
        }
    }

    private var stopped: Bool { self.state.withLock { $0.stopped } }

    private func sleep(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !self.stopped && Date() < end { Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow))) }
    }

    private func run() {
        var attempt = 0
        var lastError = ""
        while !self.stopped {
            let channel: ByteChannel
            let device: Meshtastic.Device
            if let pre = self.state.withLock({ s -> (ByteChannel, Meshtastic.Device)? in defer { s.opened = nil }; return s.opened }) {
                (channel, device) = pre
            } else {
                do throws(LinkError) {
                    (channel, device) = try self.connect()
                } catch {
                    let delay = self.backoff.delay(attempt: attempt)
                    if error.description != lastError {
                        self.logger.warning("link cannot open; retrying", metadata: [
                            "link": "\(self.name)", "error": "\(error)",
                            "retry": "\(StreamLink<LengthPrefixCodec>.seconds(delay)), then up to every \(StreamLink<LengthPrefixCodec>.seconds(self.backoff.maximum))",
                        ])
                        lastError = error.description
                    }
                    self.sleep(delay)
                    attempt += 1
                    continue
                }
            }
            let wasStopped = self.state.withLock { s -> Bool in
                if s.stopped { return true }
                s.session = Session(channel: channel, device: device)
                s.device = device
                if attempt > 0 || s.counters.framesIn + s.counters.framesOut > 0 { s.counters.reconnects += 1 }
                return false
            }
            if wasStopped { channel.close(); break }
            lastError = ""
            let opened = Date()
            self.logger.info("link up", metadata: [
                "link": "\(self.name)", "via": "\(channel.kind)", "device": "Meshtastic !\(String(device.nodeNumber, radix: 16))",
                "firmware": "\(device.firmware ?? "?")", "region": "\(Meshtastic.regionName(device.region))", "modem": "\(device.modem)",
                "channel": "\(device.primaryChannel.isEmpty ? "primary (default name)" : device.primaryChannel)",
            ])
            if !device.txEnabled {
                self.logger.warning("the Meshtastic device has transmit disabled (lora.tx_enabled is off): it will only listen", metadata: ["link": "\(self.name)"])
            }
            self.continuation.yield(.up)
            let reason = self.serve(channel)
            channel.close()
            self.state.withLock { s in if s.session?.channel === channel { s.session = nil } }
            if self.stopped { break }
            let stable = Date().timeIntervalSince(opened) >= Self.stableAfter
            attempt = stable ? 0 : attempt + 1
            let delay = self.backoff.delay(attempt: attempt)
            self.logger.warning("link down; will retry", metadata: ["link": "\(self.name)", "reason": "\(reason)", "retry": "\(StreamLink<LengthPrefixCodec>.seconds(delay))"])
            self.continuation.yield(.down(reason))
            self.sleep(delay)
            if attempt == 0 { attempt = 1 }
        }
        self.continuation.finish()
    }

    /// Reads until the device goes away; returns why.
    private func serve(_ channel: ByteChannel) -> String {
        var decoder = MeshtasticStreamDecoder()
        var lastHeartbeat = Date()
        while !self.stopped {
            // Heartbeats: every minute, and every second while the device's transmit queue is full (its answer says
            // when slots free up).
            let full = self.state.withLock { ($0.session?.free ?? 1) <= 0 }
            if Date().timeIntervalSince(lastHeartbeat) >= (full ? 1 : Self.heartbeatInterval) {
                lastHeartbeat = Date()
                let hb = Meshtastic.heartbeatFrame()
                self.writer.async {
                    // A failed write shows up as a failed read at once: the reader reports the link down.
                    do throws(LinkError) { try channel.write(hb, timeout: 5) } catch {
                        self.logger.debug("heartbeat not written", metadata: ["link": "\(self.name)", "error": "\(error)"])
                    }
                }
            }
            let bytes: [UInt8]
            do throws(LinkError) { bytes = try channel.read(max: 4_096, timeout: 0.25) } catch { return error.description }
            if bytes.isEmpty { continue }
            let (bodies, oversize) = self.state.withLock { s -> ([[UInt8]], Int) in
                s.counters.bytesIn += bytes.count
                let o0 = decoder.oversize
                let b = decoder.feed(bytes[...])
                s.counters.framingErrors += decoder.oversize - o0
                return (b, decoder.oversize - o0)
            }
            if oversize > 0 {
                self.logger.debug("refused frame", metadata: ["link": "\(self.name)", "reason": "length over 512 (line noise or wrong baud rate?)", "count": "\(oversize)"])
            }
            for body in bodies {
                let m: Courier_Meshtastic_FromRadio
                do { m = try Courier_Meshtastic_FromRadio(serializedBytes: body) } catch {
                    self.state.withLock { $0.counters.framingErrors += 1 }
                    self.logger.debug("refused frame", metadata: ["link": "\(self.name)", "reason": "not a FromRadio message: \(error)"])
                    continue
                }
                switch m.payloadVariant {
                case .packet(let p):
                    guard case .decoded(let d) = p.payloadVariant else { continue }   // not for us: not decodable by the device
                    if d.portnum == Meshtastic.privateApp, !d.payload.isEmpty {
                        let f = [UInt8](d.payload)
                        self.state.withLock { $0.counters.framesIn += 1 }
                        self.continuation.yield(.frame(f))
                    } else if d.portnum == Meshtastic.routingApp, p.from == p.to {
                        // The device's own answer to one of our packets (a NAK: TOO_LARGE 7, DUTY_CYCLE_LIMIT 9, ...).
                        do {
                            let r = try Courier_Meshtastic_Routing(serializedBytes: d.payload)
                            if r.errorReason != 0 {
                                self.logger.warning("the Meshtastic device refused a packet", metadata: [
                                    "link": "\(self.name)", "routing-error": "\(r.errorReason)\(r.errorReason == 7 ? " (too large)" : r.errorReason == 9 ? " (duty cycle limit)" : "")",
                                    "request": "\(d.requestID)",
                                ])
                            }
                        } catch {
                            self.logger.debug("undecodable routing answer from the device", metadata: ["link": "\(self.name)", "error": "\(error)"])
                        }
                    }
                case .queueStatus(let q):
                    self.state.withLock { s in
                        s.session?.status(q, at: Date())
                        if q.res != 0 { s.refused += 1 }
                    }
                    if q.res != 0 {
                        self.logger.warning("the Meshtastic device did not queue a packet; it stays queued here", metadata: [
                            "link": "\(self.name)", "res": "\(q.res)\(q.res == 7 ? " (too large)" : "")", "free": "\(q.free)/\(q.maxlen)",
                        ])
                    }
                case .rebooted:
                    return "the Meshtastic device rebooted"
                default:
                    break
                }
            }
        }
        return "stopped"
    }

    public func send(_ packet: [UInt8]) async throws(LinkError) {
        guard packet.count <= self.mtu else {
            throw .io("\(self.name): packet of \(packet.count) bytes is over the Meshtastic payload limit of \(self.mtu)")
        }
        // Flow control: never give the device a packet while its transmit queue has no free slot.
        let deadline = Date().addingTimeInterval(self.sendTimeout)
        var taken: (ByteChannel, UInt32)? = nil
        while taken == nil {
            enum Step { case down, wait, go(ByteChannel, UInt32) }
            let step = self.state.withLock { s -> Step in
                guard var sess = s.session else { return .down }
                guard sess.free > 0 else { return .wait }
                let id = s.nextID
                s.nextID = s.nextID &+ 1
                if s.nextID == 0 { s.nextID = 1 }
                sess.free -= 1
                sess.sentAt = Date()
                sess.unanswered[id] = sess.sentAt
                s.session = sess
                return .go(sess.channel, id)
            }
            switch step {
            case .down: throw .down(self.name)
            case .go(let ch, let id): taken = (ch, id)
            case .wait:
                guard Date() < deadline else { throw .timeout("\(self.name): the Meshtastic device's transmit queue stayed full for \(Int(self.sendTimeout)) s") }
                do { try await Task.sleep(nanoseconds: 20_000_000) } catch { throw .down(self.name) }
            }
        }
        guard let (channel, id) = taken else { throw .down(self.name) }
        let bytes = Meshtastic.packetFrame(packet, id: id)
        let result: Result<Void, LinkError> = await withCheckedContinuation { cont in
            self.writer.async {
                do throws(LinkError) {
                    try channel.write(bytes, timeout: 10)
                    cont.resume(returning: .success(()))
                } catch {
                    cont.resume(returning: .failure(error))
                }
            }
        }
        switch result {
        case .success:
            self.state.withLock { s in
                s.counters.framesOut += 1
                s.counters.bytesOut += bytes.count
            }
        case .failure(let e):
            if case .timeout = e { throw e }
            throw .down(self.name)
        }
    }
}
