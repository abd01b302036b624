import CourierMedium
import Foundation

/// A scenario file: relays on a map (or joined by explicit links), a radio, the traffic people send and the
/// disruptions a drill puts the mesh through. JSON; the format is documented in the README ("Scenario files").
///
/// Decoding is total: any file gives a `Scenario` or a `ScenarioError` that names the field and says what to do.
public struct Scenario: Sendable, Hashable {
    public struct RadioSpec: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            case lora(LoRaParameters)
            case afsk1200
        }
        public var kind: Kind
        /// Fraction of each hour a relay may transmit (nil: no limit).
        public var dutyCycle: Double?
        /// Listen-before-talk (default: LoRa as RNode firmware does it, AFSK as a KISS TNC does it).
        public var carrierSense: RadioChannel.CarrierSense

        public var channelRadio: RadioChannel.Radio {
            switch self.kind {
            case .lora(let p): return .lora(p)
            case .afsk1200: return .afsk1200
            }
        }
    }

    public struct NodeSpec: Sendable, Hashable {
        public var id: String
        public var x: Double
        public var y: Double
    }

    public struct LinkSpec: Sendable, Hashable {
        public var a: String
        public var b: String
        public var loss: Double
    }

    /// Whether the links are the only pairs that hear each other ("only", the default) or come on top of the
    /// path-loss model ("also": long links such as a ridge-top pair with directional antennas).
    public enum LinkMode: String, Sendable, Hashable, CaseIterable { case only, also }

    public enum Destination: Sendable, Hashable {
        case node(String)
        case everyone
    }

    public enum TrafficKind: String, Sendable, Hashable, CaseIterable {
        case alert, aid, offer, grievance, minutes, text
    }

    public struct Message: Sendable, Hashable {
        public var at: Double
        public var from: String
        public var to: Destination
        public var kind: TrafficKind
        public var bytes: Int
    }

    public enum Event: Sendable, Hashable {
        /// Relays switched off (they neither send nor receive) and back on.
        case down(at: Double, nodes: [String])
        case up(at: Double, nodes: [String])
        /// Relays that keep listening but do not transmit (radio silence), and their return.
        case quiet(at: Double, nodes: [String])
        case unquiet(at: Double, nodes: [String])
        /// Only relays in the same group hear each other (relays in no group form one more group).
        case partition(at: Double, groups: [[String]])
        case heal(at: Double)
        /// Someone carries a relay along `path`, staying `dwell` seconds in range of each one in turn.
        case courier(at: Double, path: [String], dwell: Double)

        public var at: Double {
            switch self {
            case .down(let t, _), .up(let t, _), .quiet(let t, _), .unquiet(let t, _), .partition(let t, _),
                 .heal(let t), .courier(let t, _, _):
                return t
            }
        }
    }

    public var name: String
    public var description: String?
    public var seed: UInt64
    public var duration: Double
    public var radio: RadioSpec
    public var nodes: [NodeSpec]
    public var links: [LinkSpec]?
    public var linkMode: LinkMode
    public var traffic: [Message]
    public var events: [Event]

    // MARK: Loading

    public static func load(contentsOf url: URL) throws(ScenarioError) -> Scenario {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ScenarioError(file: url.path, field: "", problem: "cannot be read (\(error.localizedDescription))",
                                fix: "check the path and its permissions")
        }
        do { return try self.decode(data) } catch {
            var e = error
            e.file = url.path
            throw e
        }
    }

    /// Decodes and validates a scenario.
    public static func decode(_ data: Data) throws(ScenarioError) -> Scenario {
        let s: Scenario
        do {
            s = try JSONDecoder().decode(Scenario.self, from: data)
        } catch let e as ScenarioError {
            throw e
        } catch let e as DecodingError {
            throw ScenarioError(e)
        } catch {
            throw ScenarioError(field: "", problem: "is not a scenario (\(error))", fix: "see \"Scenario files\" in the README")
        }
        try s.validate()
        return s
    }

    /// Cross-field checks: ids unique and known, times within the run, numbers in range.
    public func validate() throws(ScenarioError) {
        func fail(_ field: String, _ problem: String, _ fix: String) -> ScenarioError {
            ScenarioError(field: field, problem: problem, fix: fix)
        }
        guard self.duration > 0 else { throw fail("duration", "is \(self.duration)", "give the run's length in seconds, above 0") }
        guard !self.nodes.isEmpty else { throw fail("nodes", "is empty", "list at least one relay") }
        var ids: Set<String> = []
        for (i, n) in self.nodes.enumerated() {
            guard !n.id.isEmpty else { throw fail("nodes[\(i)].id", "is empty", "give every relay a name") }
            guard ids.insert(n.id).inserted else {
                throw fail("nodes[\(i)].id", "repeats \"\(n.id)\"", "give every relay a different id")
            }
            guard n.x.isFinite, n.y.isFinite else { throw fail("nodes[\(i)]", "has a position that is not a number", "give x and y in metres") }
        }
        func known(_ id: String, _ field: String) throws(ScenarioError) {
            guard ids.contains(id) else {
                throw fail(field, "names \"\(id)\", which is not in nodes", "add it to nodes or correct the id")
            }
        }
        func time(_ t: Double, _ field: String) throws(ScenarioError) {
            guard t.isFinite, t >= 0 else { throw fail(field, "is \(t)", "give seconds from the start, 0 or more") }
            guard t <= self.duration else {
                throw fail(field, "is \(t), after the end of the run (duration \(self.duration))", "move it earlier or lengthen duration")
            }
        }
        if case .lora(let p) = self.radio.kind {
            guard (5...12).contains(p.spreadingFactor) else { throw fail("radio.sf", "is \(p.spreadingFactor)", "use a LoRa spreading factor from 5 to 12") }
            guard [7_800, 10_400, 15_600, 20_800, 31_250, 41_700, 62_500, 125_000, 250_000, 500_000].contains(p.bandwidthHz) else {
                throw fail("radio.bw", "is \(p.bandwidthHz)", "use a LoRa bandwidth in Hz, e.g. 125000, 250000 or 500000")
            }
            guard (5...8).contains(p.codingRate) else { throw fail("radio.cr", "is \(p.codingRate)", "use 5 to 8 (coding rate 4/5 to 4/8)") }
        }
        if let dc = self.radio.dutyCycle {
            guard dc > 0, dc <= 1 else { throw fail("radio.duty_cycle", "is \(dc)", "give a fraction above 0 and at most 1 (0.01 for 1%), or leave it out") }
        }
        for (i, l) in (self.links ?? []).enumerated() {
            try known(l.a, "links[\(i)].a")
            try known(l.b, "links[\(i)].b")
            guard l.a != l.b else { throw fail("links[\(i)]", "joins \"\(l.a)\" to itself", "name two different relays") }
            guard l.loss >= 0, l.loss <= 1 else { throw fail("links[\(i)].loss", "is \(l.loss)", "give a probability from 0 to 1") }
        }
        for (i, m) in self.traffic.enumerated() {
            try time(m.at, "traffic[\(i)].at")
            try known(m.from, "traffic[\(i)].from")
            if case .node(let to) = m.to {
                try known(to, "traffic[\(i)].to")
                guard to != m.from else { throw fail("traffic[\(i)].to", "is the sender itself", "name another relay or \"everyone\"") }
            }
            guard m.bytes > 0 else { throw fail("traffic[\(i)].bytes", "is \(m.bytes)", "give the message size in bytes, above 0") }
        }
        for (i, e) in self.events.enumerated() {
            try time(e.at, "events[\(i)].at")
            switch e {
            case .down(_, let ns), .up(_, let ns), .quiet(_, let ns), .unquiet(_, let ns):
                guard !ns.isEmpty else { throw fail("events[\(i)].nodes", "is empty", "name the relays it applies to") }
                for (j, n) in ns.enumerated() { try known(n, "events[\(i)].nodes[\(j)]") }
            case .partition(_, let groups):
                guard !groups.isEmpty else { throw fail("events[\(i)].groups", "is empty", "give at least one group of relays") }
                var seen: Set<String> = []
                for (g, members) in groups.enumerated() {
                    for (j, n) in members.enumerated() {
                        try known(n, "events[\(i)].groups[\(g)][\(j)]")
                        guard seen.insert(n).inserted else {
                            throw fail("events[\(i)].groups[\(g)][\(j)]", "puts \"\(n)\" in two groups", "put each relay in one group")
                        }
                    }
                }
            case .heal:
                break
            case .courier(_, let path, let dwell):
                guard path.count >= 2 else { throw fail("events[\(i)].path", "has \(path.count) relays", "give at least two relays to carry between") }
                for (j, n) in path.enumerated() { try known(n, "events[\(i)].path[\(j)]") }
                guard dwell.isFinite, dwell > 0 else { throw fail("events[\(i)].dwell", "is \(dwell)", "give the seconds spent at each relay, above 0") }
            }
        }
    }

    /// The same scenario ended at `seconds` (`relay drill simulate --until`): the traffic and events after it are
    /// left out (a courier that set out before it keeps the stops it reaches by then; a partition healed later stays
    /// unhealed). `seconds` must be above 0 and at most `duration`.
    public func cut(at seconds: Double) throws(ScenarioError) -> Scenario {
        guard seconds.isFinite, seconds > 0, seconds <= self.duration else {
            throw ScenarioError(field: "--until", problem: "is \(seconds)",
                                fix: "give seconds above 0 and at most the scenario's duration (\(String(format: "%g", self.duration)))")
        }
        var s = self
        s.duration = seconds
        s.traffic = self.traffic.filter { $0.at <= seconds }
        s.events = self.events.filter { $0.at <= seconds }
        return s
    }

    /// The channel this scenario describes (node i is `nodes[i]`), with `extraRelays` more nodes after them, out of
    /// everyone's range until carried somewhere (`RadioChannel.carry`): the couriers of a drill.
    public func channel(extraRelays: Int = 0) throws(ScenarioError) -> RadioChannel {
        var index: [String: Int] = [:]
        for (i, n) in self.nodes.enumerated() { index[n.id] = i }
        var positions = self.nodes.map { RadioChannel.Position(x: $0.x, y: $0.y) }
        // Far beyond any radio's range (path loss at 10^9 m is far below every interference floor).
        for k in 0..<max(0, extraRelays) { positions.append(RadioChannel.Position(x: 1e9 * Double(k + 1), y: -1e9)) }
        var config = RadioChannel.Configuration(radio: self.radio.channelRadio, carrierSense: self.radio.carrierSense,
                                                dutyCycle: self.radio.dutyCycle, seed: self.seed)
        config.dutyCycleWindow = 3_600
        let geometry: RadioChannel.Geometry
        if let links = self.links {
            let l = links.compactMap { s -> RadioChannel.Link? in
                guard let a = index[s.a], let b = index[s.b] else { return nil }
                return RadioChannel.Link(a: a, b: b, loss: s.loss)
            }
            geometry = self.linkMode == .only ? .links(l) : .positionsAndLinks(l)
        } else {
            geometry = .positions
        }
        do {
            return try RadioChannel(positions: positions, geometry: geometry, configuration: config)
        } catch {
            throw ScenarioError(field: "links", problem: "cannot be used (\(error))", fix: "correct the link")
        }
    }
}

/// Why a scenario file cannot be used: the field (a path such as `traffic[3].from`), what is wrong and what to do.
public struct ScenarioError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String?
    public var field: String
    public var problem: String
    public var fix: String

    public init(file: String? = nil, field: String, problem: String, fix: String) {
        self.file = file
        self.field = field
        self.problem = problem
        self.fix = fix
    }

    init(_ e: DecodingError) {
        func path(_ keys: [any CodingKey]) -> String {
            var s = ""
            for k in keys {
                if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : ".\(k.stringValue)" }
            }
            return s
        }
        switch e {
        case .keyNotFound(let key, let ctx):
            let f = path(ctx.codingPath + [key])
            self.init(field: f, problem: "is missing", fix: "add \"\(key.stringValue)\" (see \"Scenario files\" in the README)")
        case .typeMismatch(let type, let ctx):
            self.init(field: path(ctx.codingPath), problem: "has the wrong type", fix: "give \(Self.describe(type))")
        case .valueNotFound(let type, let ctx):
            self.init(field: path(ctx.codingPath), problem: "is null", fix: "give \(Self.describe(type))")
        case .dataCorrupted(let ctx):
            if let custom = ctx.underlyingError as? ScenarioError {
                self = custom
            } else if ctx.codingPath.isEmpty {
                self.init(field: "", problem: "is not valid JSON (\(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription))",
                          fix: "check brackets, commas and quotes")
            } else {
                self.init(field: path(ctx.codingPath), problem: ctx.debugDescription, fix: "see \"Scenario files\" in the README")
            }
        @unknown default:
            self.init(field: "", problem: "cannot be decoded (\(e))", fix: "see \"Scenario files\" in the README")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type, is UInt64.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }

    public var description: String {
        let where_ = self.field.isEmpty ? "the scenario" : self.field
        return "\(self.file.map { "\($0): " } ?? "")\(where_) \(self.problem): \(self.fix)"
    }
}

// MARK: - Codable

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ s: String) { self.stringValue = s; self.intValue = nil }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.stringValue = "\(intValue)"; self.intValue = intValue }
}

/// Unknown keys are refused (a misspelt "duty_cycle" must not be silently ignored).
private func onlyKnownKeys(_ decoder: any Decoder, _ known: Set<String>) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for k in c.allKeys where !known.contains(k.stringValue) {
        let field = (decoder.codingPath + [k]).map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let f = field.hasPrefix(".") ? String(field.dropFirst()) : field
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath,
            debugDescription: "unknown key",
            underlyingError: ScenarioError(field: f, problem: "is not a known key",
                                           fix: "remove it or correct its spelling; known here: \(known.sorted().joined(separator: ", "))")))
    }
}

private func invalid(_ decoder: any Decoder, _ key: String, _ problem: String, _ fix: String) -> DecodingError {
    let field = (decoder.codingPath + [AnyKey(key)]).map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    let f = field.hasPrefix(".") ? String(field.dropFirst()) : field
    return DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem,
                                             underlyingError: ScenarioError(field: f, problem: problem, fix: fix)))
}

extension Scenario: Decodable {
    enum CodingKeys: String, CodingKey {
        case name, description, seed, duration, radio, nodes, links, linkMode = "link_mode", traffic, events
    }

    public init(from decoder: any Decoder) throws {
        try onlyKnownKeys(decoder, ["name", "description", "seed", "duration", "radio", "nodes", "links", "link_mode", "traffic", "events"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try c.decode(String.self, forKey: .name)
        self.description = try c.decodeIfPresent(String.self, forKey: .description)
        self.seed = try c.decode(UInt64.self, forKey: .seed)
        self.duration = try c.decode(Double.self, forKey: .duration)
        self.radio = try c.decode(RadioSpec.self, forKey: .radio)
        self.nodes = try c.decode([NodeSpec].self, forKey: .nodes)
        self.links = try c.decodeIfPresent([LinkSpec].self, forKey: .links)
        if let m = try c.decodeIfPresent(String.self, forKey: .linkMode) {
            guard let mode = LinkMode(rawValue: m) else {
                throw invalid(decoder, "link_mode", "is \"\(m)\"", "use \"only\" or \"also\"")
            }
            self.linkMode = mode
        } else {
            self.linkMode = .only
        }
        self.traffic = try c.decodeIfPresent([Message].self, forKey: .traffic) ?? []
        self.events = try c.decodeIfPresent([Event].self, forKey: .events) ?? []
    }
}

extension Scenario.RadioSpec: Decodable {
    enum CodingKeys: String, CodingKey { case kind, sf, bw, cr, dutyCycle = "duty_cycle", carrierSense = "carrier_sense" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decode(String.self, forKey: .kind)
        switch kind {
        case "lora":
            try onlyKnownKeys(decoder, ["kind", "sf", "bw", "cr", "duty_cycle", "carrier_sense"])
            let sf = try c.decode(Int.self, forKey: .sf)
            let bw = try c.decode(Int.self, forKey: .bw)
            let cr = try c.decode(Int.self, forKey: .cr)
            self.kind = .lora(LoRaParameters(spreadingFactor: sf, bandwidthHz: bw, codingRate: cr))
        case "afsk1200":
            try onlyKnownKeys(decoder, ["kind", "duty_cycle", "carrier_sense"])
            self.kind = .afsk1200
        default:
            throw invalid(decoder, "kind", "is \"\(kind)\"", "use \"lora\" or \"afsk1200\"")
        }
        self.dutyCycle = try c.decodeIfPresent(Double.self, forKey: .dutyCycle)
        if let cs = try c.decodeIfPresent(String.self, forKey: .carrierSense) {
            guard let v = RadioChannel.CarrierSense(rawValue: cs) else {
                throw invalid(decoder, "carrier_sense", "is \"\(cs)\"", "use \"rnode\", \"meshtastic\", \"kiss\" or \"none\"")
            }
            self.carrierSense = v
        } else if case .afsk1200 = self.kind {
            self.carrierSense = .kiss
        } else {
            self.carrierSense = .rnode
        }
    }
}

extension Scenario.NodeSpec: Decodable {
    enum CodingKeys: String, CodingKey { case id, x, y }
    public init(from decoder: any Decoder) throws {
        try onlyKnownKeys(decoder, ["id", "x", "y"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.x = try c.decode(Double.self, forKey: .x)
        self.y = try c.decode(Double.self, forKey: .y)
    }
}

extension Scenario.LinkSpec: Decodable {
    enum CodingKeys: String, CodingKey { case a, b, loss }
    public init(from decoder: any Decoder) throws {
        try onlyKnownKeys(decoder, ["a", "b", "loss"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.a = try c.decode(String.self, forKey: .a)
        self.b = try c.decode(String.self, forKey: .b)
        self.loss = try c.decodeIfPresent(Double.self, forKey: .loss) ?? 0
    }
}

extension Scenario.Message: Decodable {
    enum CodingKeys: String, CodingKey { case at, from, to, kind, bytes }
    public init(from decoder: any Decoder) throws {
        try onlyKnownKeys(decoder, ["at", "from", "to", "kind", "bytes"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.at = try c.decode(Double.self, forKey: .at)
        self.from = try c.decode(String.self, forKey: .from)
        let to = try c.decode(String.self, forKey: .to)
        self.to = to == "everyone" ? .everyone : .node(to)
        let kind = try c.decode(String.self, forKey: .kind)
        guard let k = Scenario.TrafficKind(rawValue: kind) else {
            throw invalid(decoder, "kind", "is \"\(kind)\"",
                          "use one of \(Scenario.TrafficKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        self.kind = k
        self.bytes = try c.decode(Int.self, forKey: .bytes)
    }
}

extension Scenario.Event: Decodable {
    enum CodingKeys: String, CodingKey { case at, type, nodes, groups, path, dwell }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        let at = try c.decode(Double.self, forKey: .at)
        switch type {
        case "down", "up", "quiet", "unquiet":
            try onlyKnownKeys(decoder, ["at", "type", "nodes"])
            let nodes = try c.decode([String].self, forKey: .nodes)
            switch type {
            case "down": self = .down(at: at, nodes: nodes)
            case "up": self = .up(at: at, nodes: nodes)
            case "quiet": self = .quiet(at: at, nodes: nodes)
            default: self = .unquiet(at: at, nodes: nodes)
            }
        case "partition":
            try onlyKnownKeys(decoder, ["at", "type", "groups"])
            self = .partition(at: at, groups: try c.decode([[String]].self, forKey: .groups))
        case "heal":
            try onlyKnownKeys(decoder, ["at", "type"])
            self = .heal(at: at)
        case "courier":
            try onlyKnownKeys(decoder, ["at", "type", "path", "dwell"])
            self = .courier(at: at, path: try c.decode([String].self, forKey: .path), dwell: try c.decode(Double.self, forKey: .dwell))
        default:
            throw invalid(decoder, "type", "is \"\(type)\"",
                          "use one of \"down\", \"up\", \"quiet\", \"unquiet\", \"partition\", \"heal\", \"courier\"")
        }
    }
}
