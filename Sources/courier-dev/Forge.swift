import ArgumentParser
import CourierLinks
import CourierTooling
import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `courier-dev forge`: what a hostile member can transmit (issue 10): bundles of any kind claiming any origin,
/// signed with any key or unsigned, with any priority override, sealed in packets with the federation's network key
/// as the member, written on a serial line (a pty) in Courier's framed-serial form (SPEC 18.1).
struct ForgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forge",
        abstract: "Red-team tool: seal packets and bundles as another member, and write them on a serial line.",
        discussion: """
            The member's data directory gives the network key and the packet sender (its identity). Each bundle \
            claims --origin; --sign picks the key: none (unsigned), member (the member's own key: a bad signature for \
            another origin) or origin (the origin's real key; --origin must then be a data directory). Prints the \
            bundle ids made, one per line. Example: courier-dev forge --member /tmp/m --origin 1a2b3c4d --kind text \
            --to everyone --line /tmp/cable/a "forged"
            """)

    @Option(help: "Data directory of the member that transmits (network key, packet sender).") var member: String
    @Option(help: "The origin each bundle claims: 8 hex digits, or a data directory (its node).") var origin: String
    @Option(help: "none, member or origin.") var sign = "none"
    @Option(help: "alert, request, offer, grievance, minutes, text, receipt, identity, failure, or a kind number 0-15.") var kind = "text"
    @Option(help: "Destination: a node (8 hex digits), everyone, or group:NAME.") var to = "everyone"
    @Option(help: "Priority override written in the header: urgent, aid, normal, bulk (default: none).") var priority: String?
    @Option(help: "Lifetime in minutes (default: the kind's).") var lifetime: UInt32?
    @Option(help: "First sequence number (default: from the clock, so runs do not collide).") var sequence: UInt32?
    @Option(help: "How many bundles (sequence numbers counting up).") var count = 1
    @Option(help: "Content size in bytes: random letters instead of the text argument.") var size: Int?
    @Option(help: "Receipt content: these bundle ids (origin.created.sequence), comma-separated.") var receiptFor: String?
    @Option(help: "Send directed bundles to this neighbour as next hop (it takes custody and acknowledges).") var nextHop: String?
    @Option(name: .customLong("extension"), help: "An extension TYPE:HEX written in each bundle's header (repeatable), e.g. 4:0102... for a pact record (SPEC 6.15).") var extensions: [String] = []
    @Option(help: "Write the frames to this serial device or pty (otherwise print each packet in hex).") var line: String?
    @Option(help: "Pace writes to this many bytes per second (115200 baud is 11520).") var bytesPerSecond = 11_520
    @Option(help: "First packet counter (default: from the clock, a thousand a second).") var counter: UInt32?
    @Flag(help: "Do not send the member's announce first.") var noAnnounce = false
    @Argument(help: "The content (text).") var text: String = "forged"

    static func readIdentity(_ dir: String) throws -> (NodeIdentity, String?) {
        struct F: Decodable { var name: String?; var signingSeed: String; var agreementSeed: String }
        guard let d = FileManager.default.contents(atPath: dir + "/identity.json") else {
            throw ValidationError("\(dir) is not a relay data directory (no identity.json)")
        }
        let f = try JSONDecoder().decode(F.self, from: d)
        guard let s = [UInt8](hex: f.signingSeed), let a = [UInt8](hex: f.agreementSeed) else {
            throw ValidationError("\(dir)/identity.json is damaged")
        }
        return (try NodeIdentity(signingSeed: s, agreementSeed: a), f.name)
    }

    static func readNetwork(_ dir: String) throws -> (NetworkKey, Bool) {
        struct F: Decodable { var key: String; var open: Bool }
        guard let d = FileManager.default.contents(atPath: dir + "/network.json") else {
            throw ValidationError("\(dir) has no network.json")
        }
        let f = try JSONDecoder().decode(F.self, from: d)
        guard let k = [UInt8](hex: f.key) else { throw ValidationError("\(dir)/network.json is damaged") }
        return (try NetworkKey(bytes: k), f.open)
    }

    static func kind(_ s: String) throws -> Kind {
        let names: [String: Kind] = ["alert": .alert, "request": .aidRequest, "offer": .aidOffer, "grievance": .grievance,
                                     "minutes": .minutes, "text": .text, "receipt": .receipt, "identity": .identity, "failure": .failure]
        if let k = names[s] { return k }
        guard let n = UInt8(s), n < 16 else { throw ValidationError("unknown kind '\(s)'") }
        return Kind(code: n)
    }

    func run() throws {
        let (memberID, memberName) = try Self.readIdentity(self.member)
        let (key, open) = try Self.readNetwork(self.member)
        var originShort: ShortID
        var originID: NodeIdentity?
        if let s = ShortID(hex: self.origin), self.origin.count == 8 {
            originShort = s
        } else {
            originID = try Self.readIdentity(self.origin).0
            originShort = originID!.nodeID.short
        }
        let signer: NodeIdentity?
        switch self.sign {
        case "none": signer = nil
        case "member": signer = memberID
        case "origin":
            guard let o = originID else { throw ValidationError("--sign origin needs --origin to be a data directory") }
            signer = o
        default: throw ValidationError("--sign is none, member or origin")
        }
        let destination: Destination
        if self.to == "everyone" {
            destination = .everyone
        } else if self.to.hasPrefix("group:") {
            destination = .group(GroupID(name: String(self.to.dropFirst(6))))
        } else if let n = ShortID(hex: self.to), self.to.count == 8 {
            destination = .node(n)
        } else {
            throw ValidationError("--to is 8 hex digits, everyone or group:NAME")
        }
        let priority: PriorityClass?
        switch self.priority {
        case nil: priority = nil
        case "urgent": priority = .urgent
        case "aid": priority = .aid
        case "normal": priority = .normal
        case "bulk": priority = .bulk
        default: throw ValidationError("--priority is urgent, aid, normal or bulk")
        }
        let next: ShortID?
        if let h = self.nextHop {
            guard let n = ShortID(hex: h), h.count == 8 else { throw ValidationError("--next-hop is 8 hex digits") }
            next = n
        } else { next = nil }
        let kind = try Self.kind(self.kind)
        let firstSeq = self.sequence ?? UInt32(truncatingIfNeeded: Int64(Date().timeIntervalSince1970 * 1_000) % 1_000_000_000)
        var records: [Record] = []
        for i in 0..<self.count {
            var content: [UInt8]
            if let ids = self.receiptFor {
                let list = try ids.split(separator: ",").map { s -> BundleID in
                    guard let id = BundleID(String(s)) else { throw ValidationError("bad bundle id '\(s)'") }
                    return id
                }
                content = ReceiptContent.encode(list)
            } else if let n = self.size {
                let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ".utf8)
                content = (0..<n).map { _ in letters.randomElement()! }
            } else {
                content = Array(self.text.utf8)
            }
            var spec = Forge.Spec(kind: kind, origin: originShort, destination: destination, content: content,
                                  sequence: firstSeq &+ UInt32(i), signer: signer)
            spec.priority = priority
            spec.lifetime = self.lifetime
            for e in self.extensions {
                let parts = e.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let t = UInt32(parts[0]), let v = [UInt8](hex: parts[1]) else {
                    throw ValidationError("--extension \(e): give TYPE:HEX, e.g. 4:0102")
                }
                spec.extensions.append(Extension(type: t, value: v))
            }
            let b = try Forge.bundle(spec)
            records.append(Forge.record(b, nextHop: next, transfer: UInt32.random(in: 1_000_000...2_000_000_000)))
            print(b.id)
        }
        let packets = Forge.packets(records, member: memberID, name: memberName, networkKey: key, open: open,
                                    firstCounter: self.counter ?? Forge.counterNow(), announce: !self.noAnnounce)
        guard let path = self.line else {
            for p in packets { FileHandle.standardError.write(Data((p.hex + "\n").utf8)) }
            return
        }
        let fd = Glibc.open(path, O_WRONLY | O_NOCTTY)
        guard fd >= 0 else { throw ValidationError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let codec = COBSFrameCodec()
        for p in packets {
            let frame = codec.encode(p)
            var off = 0
            while off < frame.count {
                let n = frame[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw ValidationError("cannot write to \(path): \(String(cString: strerror(errno)))") }
                off += n
            }
            usleep(UInt32(min(2_000_000, 1_000_000 * frame.count / max(1, self.bytesPerSecond))))
        }
    }
}
