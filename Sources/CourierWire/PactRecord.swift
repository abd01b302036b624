/// A mutual-aid pact record (SPEC 6.15): the typed part of a bundle that creates, joins, amends or withdraws from a
/// pact, or asks for, pledges or escalates aid under one. It travels as the value of an even (non-critical) bundle
/// extension of type `PactRecord.extensionType`, inside the origin-signed header, on an ordinary bundle whose content
/// is the human text: an older relay ignores the extension and shows the text.
///
/// ```
///  version    u8        1
///  type       u8        1 create, 2 join, 3 amend, 4 withdraw, 5 request, 6 pledge, 7 escalation, 8 delivered
///  pact       bundle id (6.5) of the pact's create record; absent in a create record (the pact is the bundle itself)
///  then, by type:
///   create     name (u8 length, 1-32 bytes UTF-8), respond-within (varint seconds, >= 1),
///              member count (u8, 1-32), members (4-byte short ids), pledge (u8 length, 0-200 bytes UTF-8)
///   join       pledge
///   amend      flags (u8: bit 0 respond-within present, bit 1 pledge present, others 0), then those fields
///   withdraw   nothing
///   request    deadline (varint unix seconds)
///   pledge     request (bundle id), at (varint unix seconds)
///   escalation request (bundle id), count (u8, 0-32), unmet members (4-byte short ids)
///   delivered  request (bundle id), member (4-byte short id), at (varint unix seconds): the requester confirms that a
///              member's pledged aid arrived
/// ```
public struct PactRecord: Sendable, Hashable {
    /// The extension type that carries a pact record: even, so a node that does not know it processes the bundle
    /// normally (6.6).
    public static let extensionType: UInt32 = 4
    public static let version: UInt8 = 1
    public static let maxName = 32
    public static let maxMembers = 32
    public static let maxPledge = 200

    public enum Body: Sendable, Hashable {
        case create(name: String, respondWithin: UInt32, members: [ShortID], pledge: String)
        case join(pledge: String)
        case amend(respondWithin: UInt32?, pledge: String?)
        case withdraw
        case request(deadline: UInt64)
        case pledge(request: BundleID, at: UInt64)
        case escalation(request: BundleID, unmet: [ShortID])
        case delivered(request: BundleID, member: ShortID, at: UInt64)

        var code: UInt8 {
            switch self {
            case .create: return 1
            case .join: return 2
            case .amend: return 3
            case .withdraw: return 4
            case .request: return 5
            case .pledge: return 6
            case .escalation: return 7
            case .delivered: return 8
            }
        }
    }

    /// The pact this record is about; nil in a create record (the pact is the bundle carrying it).
    public let pact: BundleID?
    public let body: Body

    public init(pact: BundleID?, body: Body) throws(WireError) {
        if case .create = body {
            guard pact == nil else { throw .invalidValue(field: "pact", reason: "a create record names no pact: it is one") }
        } else if pact == nil {
            throw .invalidValue(field: "pact", reason: "required for every record but create")
        }
        self.pact = pact
        self.body = body
        try self.check()
    }

    func check() throws(WireError) {
        func text(_ s: String, _ field: String, _ range: ClosedRange<Int>) throws(WireError) {
            guard range.contains(s.utf8.count) else { throw .invalidValue(field: field, reason: "\(range.lowerBound)-\(range.upperBound) bytes of UTF-8") }
        }
        switch self.body {
        case .create(let name, let within, let members, let pledge):
            try text(name, "pact.name", 1...Self.maxName)
            try text(pledge, "pact.pledge", 0...Self.maxPledge)
            guard within >= 1 else { throw .invalidValue(field: "pact.respondWithin", reason: "at least 1 second") }
            guard (1...Self.maxMembers).contains(members.count) else { throw .invalidValue(field: "pact.members", reason: "1-\(Self.maxMembers) members") }
        case .join(let pledge):
            try text(pledge, "pact.pledge", 0...Self.maxPledge)
        case .amend(let within, let pledge):
            if let within, within < 1 { throw .invalidValue(field: "pact.respondWithin", reason: "at least 1 second") }
            if let pledge { try text(pledge, "pact.pledge", 0...Self.maxPledge) }
        case .escalation(_, let unmet):
            guard unmet.count <= Self.maxMembers else { throw .invalidValue(field: "pact.unmet", reason: "at most \(Self.maxMembers)") }
        case .withdraw, .request, .pledge, .delivered: break
        }
    }

    public var extensionValue: Extension { Extension(type: Self.extensionType, value: self.encode()) }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(Self.version)
        w.u8(self.body.code)
        if let p = self.pact { p.write(to: &w) }
        func text(_ s: String) {
            w.u8(UInt8(s.utf8.count))
            w.append(Array(s.utf8))
        }
        func members(_ m: [ShortID]) {
            w.u8(UInt8(m.count))
            for s in m { w.u32(s.rawValue) }
        }
        switch self.body {
        case .create(let name, let within, let m, let pledge):
            text(name)
            w.varint(within)
            members(m)
            text(pledge)
        case .join(let pledge): text(pledge)
        case .amend(let within, let pledge):
            w.u8((within != nil ? 1 : 0) | (pledge != nil ? 2 : 0))
            if let within { w.varint(within) }
            if let pledge { text(pledge) }
        case .withdraw: break
        case .request(let deadline): w.varint(deadline)
        case .pledge(let request, let at):
            request.write(to: &w)
            w.varint(at)
        case .escalation(let request, let unmet):
            request.write(to: &w)
            members(unmet)
        case .delivered(let request, let member, let at):
            request.write(to: &w)
            w.u32(member.rawValue)
            w.varint(at)
        }
        return w.bytes
    }

    /// Total: any bytes give a record or a `WireError` (a version above 1 is `unsupportedVersion`).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var r = ByteReader(bytes)
        let version = try r.u8("pact.version")
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let type = try r.u8("pact.type")
        guard (1...8).contains(type) else { throw .unsupportedFeature("pact record type \(type)") }
        let pact: BundleID? = type == 1 ? nil : try BundleID.read(from: &r, "pact.pact")
        func text(_ field: String, max: Int) throws(WireError) -> String {
            let n = Int(try r.u8(field))
            guard n <= max else { throw .invalidValue(field: field, reason: "at most \(max) bytes") }
            let b = Array(try r.bytes(n, field))
            guard let s = String(validating: b, as: UTF8.self) else { throw .invalidValue(field: field, reason: "not UTF-8") }
            return s
        }
        func members(_ field: String) throws(WireError) -> [ShortID] {
            let n = Int(try r.u8(field))
            guard n <= Self.maxMembers else { throw .invalidValue(field: field, reason: "at most \(Self.maxMembers)") }
            var m: [ShortID] = []
            for _ in 0..<n { m.append(ShortID(try r.u32(field))) }
            return m
        }
        let body: Body
        switch type {
        case 1:
            let name = try text("pact.name", max: Self.maxName)
            let within = try r.varint32("pact.respondWithin")
            let m = try members("pact.members")
            body = .create(name: name, respondWithin: within, members: m, pledge: try text("pact.pledge", max: Self.maxPledge))
        case 2: body = .join(pledge: try text("pact.pledge", max: Self.maxPledge))
        case 3:
            let flags = try r.u8("pact.amend.flags")
            guard flags & ~3 == 0 else { throw .unsupportedFeature("pact amend flags \(flags)") }
            let within = flags & 1 != 0 ? try r.varint32("pact.respondWithin") : nil
            let pledge = flags & 2 != 0 ? try text("pact.pledge", max: Self.maxPledge) : nil
            body = .amend(respondWithin: within, pledge: pledge)
        case 4: body = .withdraw
        case 5: body = .request(deadline: try r.varint("pact.deadline", maxBits: 64))
        case 6:
            let request = try BundleID.read(from: &r, "pact.request")
            body = .pledge(request: request, at: try r.varint("pact.at", maxBits: 64))
        case 7:
            let request = try BundleID.read(from: &r, "pact.request")
            body = .escalation(request: request, unmet: try members("pact.unmet"))
        default:
            let request = try BundleID.read(from: &r, "pact.request")
            let member = ShortID(try r.u32("pact.member"))
            body = .delivered(request: request, member: member, at: try r.varint("pact.at", maxBits: 64))
        }
        let left = r.rest().count
        guard left == 0 else { throw .trailingBytes(field: "pact record", count: left) }
        try self.init(pact: pact, body: body)
    }

    /// The pact record a bundle carries, if any: nil when it has none; a `WireError` when it has one that does not
    /// decode (several are an error too).
    public static func carried(by bundle: CourierBundle) throws(WireError) -> PactRecord? {
        let exts = bundle.extensions.filter { $0.type == Self.extensionType }
        guard let e = exts.first else { return nil }
        guard exts.count == 1 else { throw .invalidValue(field: "pact record", reason: "\(exts.count) in one bundle; at most 1") }
        return try PactRecord(decoding: e.value)
    }

    /// The kind of bundle each record travels in: pact records as text, a request as an aid request, a pledge as an
    /// offer (its reference the request), an escalation as an alert.
    public var carrierKind: Kind {
        switch self.body {
        case .create, .join, .amend, .withdraw, .delivered: return .text
        case .request: return .aidRequest
        case .pledge: return .aidOffer
        case .escalation: return .alert
        }
    }

    public var typeName: String {
        switch self.body {
        case .create: return "create"
        case .join: return "join"
        case .amend: return "amend"
        case .withdraw: return "withdraw"
        case .request: return "request"
        case .pledge: return "pledge"
        case .escalation: return "escalation"
        case .delivered: return "delivered"
        }
    }
}
