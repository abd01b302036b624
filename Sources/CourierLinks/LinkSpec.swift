import Foundation
import Logging

/// A link as an operator writes it: `serial:PATH[:BAUD]`, `kiss:PATH[:BAUD]`, `kiss-tcp:HOST:PORT`, `rnode:PATH`,
/// `tcp:HOST:PORT`, `tcp-listen:HOST:PORT`, `mqtt:HOST[:PORT]` (with options, see `LinkConfig`),
/// `meshtastic:PATH[:BAUD]`, `meshtastic-tcp:HOST[:PORT]`.
public enum LinkSpec: Sendable, Hashable, CustomStringConvertible {
    case serial(path: String, baud: Int)
    case kiss(path: String, baud: Int)
    case kissTCP(host: String, port: Int)
    case rnode(path: String)
    case tcp(host: String, port: Int)
    case tcpListen(host: String, port: Int)
    /// A client of an MQTT broker: the gateways of a federation that reach one broker hear each other.
    case mqtt(MQTTSettings)
    /// A Meshtastic device's client API on USB serial (115200 baud unless told).
    case meshtastic(path: String, baud: Int)
    /// The same API over TCP (meshtasticd, Wi-Fi boards; port 4403 unless told).
    case meshtasticTCP(host: String, port: Int)

    public static let help = "serial:PATH[:BAUD], kiss:PATH[:BAUD], kiss-tcp:HOST:PORT, rnode:PATH, tcp:HOST:PORT, tcp-listen:HOST:PORT, meshtastic:PATH[:BAUD], meshtastic-tcp:HOST[:PORT] or mqtt:HOST[:PORT][,topic=ROOT][,tls][,cafile=PATH][,user=U][,password-file=PATH]"

    public init(_ text: String) throws(LinkError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw .invalidSpec("bad link '\(text)': expected \(Self.help)")
        }
        let type = String(text[..<colon])
        let rest = String(text[text.index(after: colon)...])
        func pathAndBaud(_ defaultBaud: Int) throws(LinkError) -> (String, Int) {
            if let c = rest.lastIndex(of: ":") {
                let tail = rest[rest.index(after: c)...]
                if let b = Int(tail) {
                    guard SerialPort.speed(b) != nil else {
                        throw .invalidSpec("bad link '\(text)': unsupported baud rate \(b) (use 1200-1000000, e.g. 9600, 57600, 115200)")
                    }
                    return (String(rest[..<c]), b)
                }
                // Letters and digits only after the last ':' is a mistyped baud rate, not part of a path (the colons
                // of /dev/serial/by-path/... names are followed by dots and dashes: "...-usb-0:1.2:1.0-port0").
                if tail.isEmpty || tail.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                    throw .invalidSpec("bad link '\(text)': the baud rate '\(tail)' is not a number (e.g. \(type):/dev/ttyUSB0:9600)")
                }
            }
            return (rest, defaultBaud)
        }
        func hostPort() throws(LinkError) -> (String, Int) {
            var host: Substring
            var portText: Substring
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                host = rest[rest.index(after: rest.startIndex)..<close]
                portText = rest[rest.index(after: close)...].drop { $0 == ":" }
            } else if let c = rest.lastIndex(of: ":") {
                host = rest[..<c]
                portText = rest[rest.index(after: c)...]
            } else {
                throw .invalidSpec("bad link '\(text)': expected \(type):HOST:PORT")
            }
            guard let port = Int(portText), (0...65535).contains(port) else {
                throw .invalidSpec("bad link '\(text)': port must be a number 0-65535")
            }
            if host.isEmpty { host = "0.0.0.0" }
            return (String(host), port)
        }
        switch type {
        case "serial":
            let (p, b) = try pathAndBaud(9_600)
            guard !p.isEmpty else { throw .invalidSpec("bad link '\(text)': missing device path, e.g. serial:/dev/ttyUSB0:9600") }
            self = .serial(path: p, baud: b)
        case "kiss":
            let (p, b) = try pathAndBaud(9_600)
            guard !p.isEmpty else { throw .invalidSpec("bad link '\(text)': missing device path, e.g. kiss:/dev/ttyUSB0:9600") }
            self = .kiss(path: p, baud: b)
        case "rnode":
            guard !rest.isEmpty else { throw .invalidSpec("bad link '\(text)': missing device path, e.g. rnode:/dev/ttyACM0") }
            self = .rnode(path: rest)
        case "kiss-tcp":
            let (h, p) = try hostPort()
            self = .kissTCP(host: h, port: p)
        case "tcp":
            let (h, p) = try hostPort()
            self = .tcp(host: h, port: p)
        case "tcp-listen":
            let (h, p) = try hostPort()
            self = .tcpListen(host: h, port: p)
        case "mqtt":
            // The port is optional: 1883, or 8883 with `,tls` (`LinkConfig` sets it once it has read the options).
            var host = Substring(rest)
            var port: Int? = nil
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                host = rest[rest.index(after: rest.startIndex)..<close]
                let tail = rest[rest.index(after: close)...]
                if !tail.isEmpty {
                    guard tail.first == ":", let p = Int(tail.dropFirst()), (1...65535).contains(p) else {
                        throw .invalidSpec("bad link '\(text)': port must be a number 1-65535, e.g. mqtt:[::1]:1883")
                    }
                    port = p
                }
            } else if let c = rest.firstIndex(of: ":") {
                guard rest.lastIndex(of: ":") == c else {
                    throw .invalidSpec("bad link '\(text)': put an IPv6 broker address in brackets, e.g. mqtt:[2001:db8::1]:1883")
                }
                host = rest[..<c]
                guard let p = Int(rest[rest.index(after: c)...]), (1...65535).contains(p) else {
                    throw .invalidSpec("bad link '\(text)': port must be a number 1-65535, e.g. mqtt:broker.example.org:1883")
                }
                port = p
            }
            guard !host.isEmpty else { throw .invalidSpec("bad link '\(text)': missing broker host, e.g. mqtt:broker.example.org") }
            self = .mqtt(MQTTSettings(host: String(host), explicitPort: port))
        case "meshtastic":
            let (p, b) = try pathAndBaud(Meshtastic.defaultBaud)
            guard !p.isEmpty else { throw .invalidSpec("bad link '\(text)': missing device path, e.g. meshtastic:/dev/ttyUSB0") }
            self = .meshtastic(path: p, baud: b)
        case "meshtastic-tcp":
            // The port is optional: HOST, HOST:PORT, [IPV6] or [IPV6]:PORT.
            let bracketed = rest.hasPrefix("[")
            let hasPort = bracketed ? rest.contains("]:") : (rest.contains(":") && rest.filter { $0 == ":" }.count == 1)
            if hasPort {
                let (h, p) = try hostPort()
                self = .meshtasticTCP(host: h, port: p)
            } else {
                let host = bracketed ? String(rest.dropFirst().prefix { $0 != "]" }) : rest
                guard !host.isEmpty else { throw .invalidSpec("bad link '\(text)': missing host, e.g. meshtastic-tcp:192.168.1.50 or meshtastic-tcp:localhost:4403") }
                self = .meshtasticTCP(host: host, port: Meshtastic.defaultTCPPort)
            }
        default:
            throw .invalidSpec("bad link '\(text)': unknown type '\(type)'; expected \(Self.help)")
        }
    }

    public var description: String {
        switch self {
        case .serial(let p, let b): return "serial:\(p):\(b)"
        case .kiss(let p, let b): return "kiss:\(p):\(b)"
        case .kissTCP(let h, let p): return "kiss-tcp:\(h):\(p)"
        case .rnode(let p): return "rnode:\(p)"
        case .tcp(let h, let p): return "tcp:\(h):\(p)"
        case .tcpListen(let h, let p): return "tcp-listen:\(h):\(p)"
        // The topic root is part of the name: two links to one broker under different roots are two links.
        case .mqtt(let m):
            return "mqtt:\(m.host.contains(":") ? "[\(m.host)]" : m.host):\(m.port)" + (m.topicRoot != "courier" ? ",topic=\(m.topicRoot)" : "")
        case .meshtastic(let p, let b): return "meshtastic:\(p):\(b)"
        case .meshtasticTCP(let h, let p): return "meshtastic-tcp:\(h.contains(":") ? "[\(h)]" : h):\(p)"
        }
    }
}

/// Where an `mqtt:` link connects and how: `mqtt:HOST[:PORT][,topic=ROOT][,tls][,cafile=PATH][,user=U][,password-file=PATH]`.
public struct MQTTSettings: Sendable, Hashable {
    public var host: String
    /// The port given in the spec; nil: 1883, or 8883 with TLS.
    public var explicitPort: Int?
    /// The first level of every topic this link uses (`ROOT/<federation fingerprint>/<node>`).
    public var topicRoot = "courier"
    public var tls = false
    /// CA certificates to check the broker with (PEM); with TLS and none, the system's (/etc/ssl/certs).
    public var caFile: String?
    public var user: String?
    /// A file whose first line is the password (kept out of relay.conf and the process list).
    public var passwordFile: String?

    public init(host: String, explicitPort: Int? = nil) {
        self.host = host
        self.explicitPort = explicitPort
    }

    public var port: Int { self.explicitPort ?? (self.tls ? 8_883 : 1_883) }

    public static let optionsHelp = "topic=ROOT, tls, cafile=PATH, user=U, password-file=PATH, mtu=N"

    /// Reads one `,option` of the spec; false when it is not an MQTT option.
    mutating func apply(_ key: String, _ value: String?, in text: String) throws(LinkError) -> Bool {
        func need() throws(LinkError) -> String {
            guard let v = value, !v.isEmpty else {
                throw .invalidSpec("bad link option '\(key)' in '\(text)': give a value, \(key)=...")
            }
            return v
        }
        switch key {
        case "topic":
            let v = try need()
            // MQTT wildcards and a leading or trailing '/' would change which topics the link hears.
            guard !v.contains(where: { $0 == "+" || $0 == "#" || $0 == "\u{0}" }), !v.hasPrefix("/"), !v.hasSuffix("/"), !v.hasPrefix("$") else {
                throw .invalidSpec("bad link option 'topic=\(v)' in '\(text)': a topic root has no '+', '#', leading '$' or '/' at either end (e.g. topic=courier or topic=valleys/courier)")
            }
            self.topicRoot = v
        case "tls":
            guard value == nil || value == "yes" else { throw .invalidSpec("bad link option '\(key)=\(value ?? "")' in '\(text)': write just ,tls") }
            self.tls = true
        case "cafile":
            self.caFile = try need()
            self.tls = true
        case "user": self.user = try need()
        case "password-file": self.passwordFile = try need()
        default: return false
        }
        return true
    }

    /// The options as written in a spec after the host, port and topic, e.g. ",tls,user=valley".
    var optionsDescription: String {
        var s = ""
        if self.tls && self.caFile == nil { s += ",tls" }
        if let c = self.caFile { s += ",cafile=\(c)" }
        if let u = self.user { s += ",user=\(u)" }
        if let p = self.passwordFile { s += ",password-file=\(p)" }
        return s
    }
}

/// A link spec with per-link options: `SPEC[,mtu=N]`, e.g. `serial:/dev/ttyUSB0:9600,mtu=233` for an E22 module;
/// `mqtt:` links take more (`MQTTSettings`).
public struct LinkConfig: Sendable, Hashable, CustomStringConvertible {
    public var spec: LinkSpec
    /// Overrides the link type's default MTU (64 or more).
    public var mtu: Int?

    public init(spec: LinkSpec, mtu: Int? = nil) {
        self.spec = spec
        self.mtu = mtu
    }

    public init(_ text: String) throws(LinkError) {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        self.spec = try LinkSpec(parts.removeFirst())
        self.mtu = nil
        for opt in parts {
            let kv = opt.split(separator: "=", maxSplits: 1).map(String.init)
            if case .mqtt(var m) = self.spec, let key = kv.first, key != "mtu" {
                guard try m.apply(key, kv.count == 2 ? kv[1] : nil, in: text) else {
                    throw .invalidSpec("bad link option '\(opt)' in '\(text)': mqtt links take \(MQTTSettings.optionsHelp)")
                }
                self.spec = .mqtt(m)
                continue
            }
            guard kv.count == 2, kv[0] == "mtu", let v = Int(kv[1]) else {
                throw .invalidSpec("bad link option '\(opt)' in '\(text)': the only option is mtu=N (e.g. ,mtu=233)")
            }
            guard (64...65_535).contains(v) else {
                throw .invalidSpec("bad link option '\(opt)' in '\(text)': mtu must be 64-65535")
            }
            self.mtu = v
        }
        switch self.spec {
        case .meshtastic, .meshtasticTCP: try LinkFactory.checkMeshtasticMTU(self.mtu, self.spec.description)
        default: break
        }
    }

    public var description: String {
        var s = self.spec.description
        if case .mqtt(let m) = self.spec { s += m.optionsDescription }
        return s + (self.mtu.map { ",mtu=\($0)" } ?? "")
    }
}

/// Options that apply across links.
public struct LinkOptions: Sendable {
    /// Wrap KISS packets in AX.25 UI frames from this station (amateur bands; Direwolf requires AX.25).
    public var callsign: AX25.Station? = nil
    public var kissParameters = KISS.Parameters(txDelay: 30, persistence: 63, slotTime: 10, txTail: 10)
    public var rnodeRadio = RNode.Radio()
    public var serialMTU = 255
    /// Replaces the link type's default MTU (from `,mtu=N`).
    public var mtuOverride: Int? = nil
    public var backoff = Backoff()
    /// For `mqtt:` links: the federation's fingerprint and this relay's short id (hex), which make its topics.
    public var mqttIdentity: (federation: String, node: String)? = nil
    public init() {}
}

public enum LinkFactory {
    /// Builds the link a spec names. Nothing is opened until `start()`; a device that is missing then is retried.
    public static func make(_ config: LinkConfig, options: LinkOptions = LinkOptions(), logger: Logger) throws(LinkError) -> any Link {
        var o = options
        if let m = config.mtu { o.mtuOverride = m }
        return try self.make(config.spec, options: o, logger: logger)
    }

    public static func make(_ spec: LinkSpec, options: LinkOptions = LinkOptions(), logger: Logger) throws(LinkError) -> any Link {
        let name = spec.description
        let mtu = options.mtuOverride
        switch spec {
        case .serial(let path, let baud):
            let props = LinkProperties(mtu: mtu ?? options.serialMTU, bitsPerSecond: baud, duplex: .half, mediumChecksFrames: false,
                                       airtime: .serial(baud: baud, overhead: 7))
            return StreamLink(name: name, properties: props, backoff: options.backoff, logger: logger,
                              codec: { COBSFrameCodec() }) { () throws(LinkError) in
                try SerialPort.open(path, settings: SerialSettings(baud: baud), logger: logger)
            }
        case .kiss(let path, let baud):
            let params = options.kissParameters
            return StreamLink(name: name, properties: Self.kissProperties(options, mtu: mtu), backoff: options.backoff, logger: logger,
                              codec: { KISSFrameCodec(ax25: options.callsign) },
                              handshake: { (ch: ByteChannel) throws(LinkError) in
                                  for f in params.frames(port: 0) { try ch.write(f, timeout: 2) }
                              }) { () throws(LinkError) in
                try SerialPort.open(path, settings: SerialSettings(baud: baud), logger: logger)
            }
        case .kissTCP(let host, let port):
            return StreamLink(name: name, properties: Self.kissProperties(options, mtu: mtu), backoff: options.backoff, logger: logger,
                              codec: { KISSFrameCodec(ax25: options.callsign) }) { () throws(LinkError) in
                try TCP.connect(host: host, port: port)
            }
        case .rnode(let path):
            let radio = options.rnodeRadio
            // 254: the firmware adds a 1-byte header to each LoRa frame and splits anything longer into two frames.
            let props = LinkProperties(mtu: mtu ?? 254, bitsPerSecond: radio.lora.bitsPerSecond, duplex: .half, mediumChecksFrames: true,
                                       airtime: .lora(radio.lora, framing: 1))
            return StreamLink(name: name, properties: props, backoff: options.backoff, logger: logger,
                              codec: { RNodeFrameCodec() },
                              handshake: { (ch: ByteChannel) throws(LinkError) in
                                  _ = try RNode.handshake(ch, radio: radio, path: path, logger: logger)
                              }) { () throws(LinkError) in
                var s = SerialSettings(baud: 115_200)
                s.dtr = false
                s.rts = false
                return try SerialPort.open(path, settings: s, logger: logger)
            }
        case .tcp(let host, let port):
            return StreamLink(name: name, properties: Self.tcpProperties(mtu), backoff: options.backoff, logger: logger,
                              codec: { LengthPrefixCodec() }) { () throws(LinkError) in
                try TCP.connect(host: host, port: port)
            }
        case .tcpListen(let host, let port):
            return try TCPListenLink(name: name, host: host, port: port, properties: Self.tcpProperties(mtu), logger: logger)
        case .mqtt(let settings):
            guard let id = options.mqttIdentity else {
                throw .invalidSpec("\(name): an mqtt link needs the relay's federation and node id (only `relay run` makes one)")
            }
            // Reconnects: from 1 s doubling to 30 s at most, whatever the serial ports use.
            let backoff = Backoff(initial: options.backoff.initial, maximum: min(options.backoff.maximum, 30))
            return try MQTTLink(name: name, settings: settings, federation: id.federation, node: id.node,
                                properties: Self.mqttProperties(mtu), backoff: backoff, logger: logger)
        case .meshtastic(let path, let baud):
            try Self.checkMeshtasticMTU(mtu, name)
            return MeshtasticLink(name: name, label: path, mtu: mtu, backoff: options.backoff, logger: logger) { () throws(LinkError) in
                // DTR/RTS left as they are: toggling them resets ESP32 boards.
                try SerialPort.open(path, settings: SerialSettings(baud: baud), logger: logger)
            }
        case .meshtasticTCP(let host, let port):
            try Self.checkMeshtasticMTU(mtu, name)
            return MeshtasticLink(name: name, label: "\(host):\(port)", mtu: mtu, backoff: options.backoff, logger: logger) { () throws(LinkError) in
                try TCP.connect(host: host, port: port)
            }
        }
    }

    static func checkMeshtasticMTU(_ mtu: Int?, _ name: String) throws(LinkError) {
        if let m = mtu, m > Meshtastic.broadcastPayloadLimit {
            throw .invalidSpec("bad link option mtu=\(m) for \(name): a Meshtastic device carries at most \(Meshtastic.broadcastPayloadLimit) bytes a packet (leave mtu out)")
        }
    }

    public static func tcpProperties(_ mtu: Int? = nil) -> LinkProperties {
        LinkProperties(mtu: mtu ?? 16_384, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none)
    }

    /// A broker: a shared medium (every gateway hears every packet) with a large MTU and no airtime budget.
    public static func mqttProperties(_ mtu: Int? = nil) -> LinkProperties {
        LinkProperties(mtu: mtu ?? 16_384, bitsPerSecond: nil, duplex: .full, mediumChecksFrames: true, airtime: .none)
    }

    static func kissProperties(_ o: LinkOptions, mtu: Int?) -> LinkProperties {
        // 1200-baud AFSK unless told otherwise; AX.25 adds 16 bytes of header, HDLC 2 flags and a 2-byte FCS.
        let txDelay = Double(o.kissParameters.txDelay ?? 30) / 100
        let txTail = Double(o.kissParameters.txTail ?? 10) / 100
        return LinkProperties(mtu: mtu ?? 255, bitsPerSecond: 1_200, duplex: .half, mediumChecksFrames: true,
                              airtime: .afsk(baud: 1_200, txDelay: txDelay, txTail: txTail, overhead: (o.callsign != nil ? 16 : 0) + 4))
    }
}
