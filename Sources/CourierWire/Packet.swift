import Crypto
import Synchronization

/// One hop on the air. Everything after the clear header is sealed with ChaCha20-Poly1305 (or, in open mode,
/// left readable and authenticated by the same tag).
///
/// ```
///  byte 0     VVVV A O 00   version (1) | announce form | open mode | reserved
///  sender     4             short id of the sending node
///  counter    4             sender's packet counter, never reused
///  [salt      4]            announce form only: random
///  payload    ...           records, encrypted (sealed) or clear (open)
///  tag        16            Poly1305 tag
/// ```
/// Nonce (12 bytes) = sender (4) || counter (4) || salt (4; zero in the ordinary form).
/// Key: ordinary form, HKDF(network key, "packet" || sender's 16-byte node id); announce form, HKDF(network key,
/// "announce"). AAD: the clear header. Open mode: the payload is the AAD too and the plaintext is empty.
public struct PacketHeader: Sendable, Hashable {
    public static let version: UInt8 = 1
    public var isAnnounceForm: Bool
    public var isOpen: Bool
    public var sender: ShortID
    public var counter: UInt32
    public var salt: UInt32

    public init(isAnnounceForm: Bool = false, isOpen: Bool = false, sender: ShortID, counter: UInt32, salt: UInt32 = 0) {
        self.isAnnounceForm = isAnnounceForm
        self.isOpen = isOpen
        self.sender = sender
        self.counter = counter
        self.salt = isAnnounceForm ? salt : 0
    }

    public var size: Int { self.isAnnounceForm ? 13 : 9 }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 13)
        w.u8(Self.version << 4 | (self.isAnnounceForm ? 0x08 : 0) | (self.isOpen ? 0x04 : 0))
        w.u32(self.sender.rawValue)
        w.u32(self.counter)
        if self.isAnnounceForm { w.u32(self.salt) }
        return w.bytes
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(WireError) -> PacketHeader {
        var r = ByteReader(bytes)
        let b0 = try r.u8("packet.header")
        guard b0 >> 4 == Self.version else { throw .unsupportedVersion(b0 >> 4) }
        guard b0 & 0x03 == 0 else { throw .unsupportedFeature("packet header reserved bits") }
        let announce = b0 & 0x08 != 0
        let sender = ShortID(try r.u32("packet.sender"))
        let counter = try r.u32("packet.counter")
        let salt = announce ? try r.u32("packet.salt") : 0
        return PacketHeader(isAnnounceForm: announce, isOpen: b0 & 0x04 != 0, sender: sender, counter: counter, salt: salt)
    }

    var nonce: ChaChaPoly.Nonce { try! ChaChaPoly.Nonce(data: self.nonceBytes) }

    /// The nonce's 12 bytes: sender, counter, salt (big-endian).
    var nonceBytes: [UInt8] {
        var w = ByteWriter(capacity: 12)
        w.u32(self.sender.rawValue)
        w.u32(self.counter)
        w.u32(self.salt)
        return w.bytes
    }
}

/// A decoded, authenticated packet.
public struct Packet: Sendable, Hashable {
    /// The largest packet any decoder accepts (TCP links may use large MTUs).
    public static let maxSize = 70_000
    public static let minimumMTU = 64
    public static let tagSize = 16
    /// Header plus tag of the ordinary form: 25 bytes.
    public static let overhead = 9 + 16
    public static let announceOverhead = 13 + 16

    /// Whether `record` still fits a packet of `mtu` bytes whose overhead and earlier records, each with its length
    /// prefix, take `used` bytes: it goes last, without a length (5.1, 5.9). Senders pack by this rule and the
    /// fragmenter cuts by it, so every record it makes fits a packet of its own.
    public static func fits(_ record: Record, used: Int, mtu: Int) -> Bool {
        used + record.encodedSize(last: true) <= mtu
    }

    public var header: PacketHeader
    /// The sender's full node id; nil for announce-form packets (the announce inside says who it is).
    public var sender: NodeID?
    public var records: [Record]

    public init(header: PacketHeader, sender: NodeID?, records: [Record]) {
        self.header = header
        self.sender = sender
        self.records = records
    }
}

/// Seals packets from one node.
public struct PacketSealer: Sendable {
    public let sender: NodeID
    public let isOpen: Bool
    private let packetKey: SymmetricKey
    private let announceKey: SymmetricKey

    public init(networkKey: NetworkKey, sender: NodeID, open: Bool = false) {
        self.sender = sender
        self.isOpen = open
        self.packetKey = networkKey.packetKey(for: sender)
        self.announceKey = networkKey.announceKey
    }

    /// Seals `records` with `counter` (which the caller must never reuse). `announceSalt` selects the announce
    /// form, which receivers can open before they know this node.
    public func seal(_ records: [Record], counter: UInt32, announceSalt: UInt32? = nil) -> [UInt8] {
        let header = PacketHeader(
            isAnnounceForm: announceSalt != nil, isOpen: self.isOpen, sender: self.sender.short, counter: counter,
            salt: announceSalt ?? 0)
        let h = header.encode()
        let payload = Record.encode(records)
        let key = announceSalt != nil ? self.announceKey : self.packetKey
        if self.isOpen {
            let box = try! ChaChaPoly.seal([UInt8](), using: key, nonce: header.nonce, authenticating: h + payload)
            return h + payload + Array(box.tag)
        }
        let box = try! ChaChaPoly.seal(payload, using: key, nonce: header.nonce, authenticating: h)
        return h + Array(box.ciphertext) + Array(box.tag)
    }
}

/// Packets opened lately, with the key that opened them and what they hold, for the openers of several engines in one
/// process to share (`PacketOpener.recent`): the same bytes under the same key open to the same plaintext, so a packet
/// opened again is not decrypted again. A simulator's relays each open every packet their neighbours send, a dozen of
/// them the same bytes one after the other (decrypting them was 4% of the 1,000-relay drill's CPU). A relay hears each
/// packet once (a copy is refused by the replay window after opening) and keeps none: its opener has no `recent`, and
/// no plaintext lingers in memory for it. Only packets that opened are kept.
public final class OpenedPackets: Sendable {
    /// Packets kept (the oldest replaced first).
    static let capacity = 16

    public init() {}

    private struct Entry {
        let packet: [UInt8]
        let key: SymmetricKey
        let plaintext: [UInt8]
        /// Its records, once decoded (by `PacketOpener.open`): the same plaintext decodes to the same records, and
        /// each of a transmission's receivers decoded them again (2% of the 1,000-relay drill).
        var records: [Record]? = nil
    }

    private let state = Mutex<(entries: [Entry], next: Int)>(([], 0))

    /// What `packet` opened to under `key`, and the records that decoded to if they were decoded, when it was opened
    /// lately.
    func opened(_ packet: [UInt8], under key: SymmetricKey) -> (plaintext: [UInt8], records: [Record]?)? {
        self.state.withLock { s in
            for e in s.entries where e.packet == packet && e.key == key { return (e.plaintext, e.records) }
            return nil
        }
    }

    /// Keeps the records `packet`'s plaintext under `key` decoded to, with it (if it is still kept).
    func remember(_ packet: [UInt8], under key: SymmetricKey, records: [Record]) {
        self.state.withLock { s in
            for i in s.entries.indices where s.entries[i].packet == packet && s.entries[i].key == key {
                s.entries[i].records = records
                return
            }
        }
    }

    func remember(_ packet: [UInt8], under key: SymmetricKey, plaintext: [UInt8]) {
        self.state.withLock { s in
            let e = Entry(packet: packet, key: key, plaintext: plaintext)
            if s.entries.count < Self.capacity { s.entries.append(e) } else { s.entries[s.next] = e }
            s.next = (s.next + 1) % Self.capacity
        }
    }
}

/// Opens packets for a node in a federation: under its network key, or under each of several while the
/// federation changes key (SPEC 3.7), tried in order.
public struct PacketOpener: Sendable {
    private let keys: [(network: NetworkKey, announce: SymmetricKey)]
    /// Accept open-mode (readable) packets. A sealed federation leaves this off.
    public var acceptOpen: Bool
    /// Packets opened lately by this opener and others sharing it (a simulator's engines); nil in a relay.
    public var recent: OpenedPackets? = nil
    /// Each sender's packet key under each network key, derived once (HKDF at every packet opened was 2% of a
    /// 1,000-relay drill): shared by the copies of this opener.
    private let senderKeys = SenderKeys()

    /// Packet keys derived so far, by network key (its index in `keys`) and sender; emptied when it holds
    /// `limit` (a relay hears far fewer senders: this only bounds what a flood of forged short ids could add).
    final class SenderKeys: Sendable {
        static let limit = 4_096
        let derived = Mutex<[NodeID: [Int: SymmetricKey]]>([:])

        func key(_ network: NetworkKey, index: Int, sender: NodeID) -> SymmetricKey {
            if let k = self.derived.withLock({ $0[sender]?[index] }) { return k }
            let k = network.packetKey(for: sender)
            self.derived.withLock {
                if $0.count >= Self.limit { $0.removeAll() }
                $0[sender, default: [:]][index] = k
            }
            return k
        }
    }

    public init(networkKey: NetworkKey, acceptOpen: Bool = false) {
        self.init(networkKeys: [networkKey], acceptOpen: acceptOpen)
    }

    /// `networkKeys`: every key a packet may be sealed under, the likeliest first (at least one).
    public init(networkKeys: [NetworkKey], acceptOpen: Bool = false) {
        precondition(!networkKeys.isEmpty, "a packet opener needs a network key")
        self.keys = networkKeys.map { ($0, $0.announceKey) }
        self.acceptOpen = acceptOpen
    }

    /// Authenticates and decodes a packet. `candidates` lists the known nodes whose short id matches the header's
    /// (usually one; several after a short-id collision: each is tried, and the tag tells which one sent it).
    /// The caller checks `header.counter` against the sender's replay window after this succeeds.
    public func open(_ bytes: [UInt8], candidates: (ShortID) -> [NodeID]) throws(WireError) -> Packet {
        guard bytes.count <= Packet.maxSize else {
            throw .tooLarge(field: "packet", size: bytes.count, limit: Packet.maxSize)
        }
        let header = try PacketHeader.decode(bytes[...])
        guard bytes.count >= header.size + Packet.tagSize else { throw .truncated(field: "packet.tag") }
        if header.isOpen && !self.acceptOpen { throw .unsupportedFeature("open-mode packet in a sealed federation") }
        let h = bytes[0..<header.size]
        let body = bytes[header.size..<(bytes.count - Packet.tagSize)]
        let tag = bytes.suffix(Packet.tagSize)
        // The sealed box (nonce, ciphertext, tag) made once for every key tried, in one copy: `SealedBox(nonce:
        // ciphertext:tag:)` builds it by appending three times, with the nonce made by its own writer, and that was a
        // third of opening a packet in a 1,000-relay drill's profile.
        // (Made at the first key tried, after looking for the packet among those opened lately.)
        var combined: [UInt8]? = nil

        func attempt(_ key: SymmetricKey) -> [UInt8]? {
            if header.isOpen {
                guard let box = try? ChaChaPoly.SealedBox(nonce: header.nonce, ciphertext: [UInt8](), tag: tag),
                    (try? ChaChaPoly.open(box, using: key, authenticating: h + body)) != nil
                else { return nil }
                return Array(body)
            }
            if combined == nil {
                var c = [UInt8]()
                c.reserveCapacity(12 + bytes.count - header.size)
                c.append(contentsOf: header.nonceBytes)
                c.append(contentsOf: bytes[header.size...])
                combined = c
            }
            guard let box = try? ChaChaPoly.SealedBox(combined: combined!),
                let plain = try? ChaChaPoly.open(box, using: key, authenticating: h)
            else { return nil }
            let opened = Array(plain)
            self.recent?.remember(bytes, under: key, plaintext: opened)
            return opened
        }

        // The records of the packet opened under `key` (nil: it does not open under it), decoded once for every opener
        // sharing `recent` (a packet that fails to decode is decoded, and fails, at each opening as before).
        func records(_ key: SymmetricKey, sender: ShortID?) throws(WireError) -> [Record]? {
            let kept = header.isOpen ? nil : self.recent?.opened(bytes, under: key)
            if let r = kept?.records { return r }
            guard let payload = kept?.plaintext ?? attempt(key) else { return nil }
            let r: [Record]
            if let sender { r = try Record.decodeAll(payload[...], sender: sender) } else { r = try Record.decodeAll(payload[...]) }
            if !header.isOpen { self.recent?.remember(bytes, under: key, records: r) }
            return r
        }

        if header.isAnnounceForm {
            for k in self.keys {
                if let r = try records(k.announce, sender: nil) {
                    return Packet(header: header, sender: nil, records: r)
                }
            }
            throw .authenticationFailed
        }
        let ids = candidates(header.sender).filter { $0.short == header.sender }
        guard !ids.isEmpty else { throw .unknownSender(header.sender) }
        for (index, k) in self.keys.enumerated() {
            for id in ids {
                if let r = try records(self.senderKeys.key(k.network, index: index, sender: id), sender: header.sender) {
                    return Packet(header: header, sender: id, records: r)
                }
            }
        }
        throw .authenticationFailed
    }
}

/// Per-sender replay protection (SPEC 4.8): a window of the highest counter accepted and a 64-wide bitmap below it.
/// Update only after the packet authenticated.
///
/// A counter more than `jumpBound` ahead of the main window does not move it: any member can seal a packet as any
/// other (SPEC 3.6), so one forged packet with counter 2^32-1 would otherwise make every real packet of that sender
/// a "replay". Such a counter opens a second, tentative window; the sender's real packets keep arriving in the main
/// one. The tentative window becomes the main one only after `confirmations` packets arrived in it while none arrived
/// in the main one (the sender really jumped: it sent many packets elsewhere, or restarted many times); the old main
/// window is then kept as the tentative one, so a sender whose counters continue there is still accepted. Both
/// windows refuse what they have seen, so replays stay refused.
public struct ReplayWindow: Sendable, Hashable, Codable {
    public static let width: UInt32 = 64
    /// How far ahead of the main window a counter may be and still move it (SPEC 4.8: 65,536).
    public static let jumpBound: UInt64 = 65_536
    /// Packets accepted in the tentative window, with none in the main one meanwhile, that make it the main one.
    public static let confirmations = 4

    /// One window: the highest counter accepted, a bitmap of the 64 ending at it, and the counter that opened it.
    public struct Line: Sendable, Hashable, Codable {
        public private(set) var highest: UInt32
        public private(set) var seen: UInt64
        public let low: UInt32

        init(_ c: UInt32) {
            self.highest = c
            self.seen = 1
            self.low = c
        }

        init(highest: UInt32, seen: UInt64, low: UInt32) {
            self.highest = highest
            self.seen = seen
            self.low = low
        }

        /// Whether `c` falls to this window: from the counter that opened it to `jumpBound` past its highest.
        func covers(_ c: UInt32) -> Bool { c >= self.low && UInt64(c) <= UInt64(self.highest) + ReplayWindow.jumpBound }

        mutating func accept(_ c: UInt32) -> Verdict {
            if c > self.highest {
                let shift = c - self.highest
                self.seen = shift >= 64 ? 0 : self.seen << UInt64(shift)
                self.seen |= 1
                self.highest = c
                return .accepted
            }
            let back = self.highest - c
            guard back < ReplayWindow.width else { return .tooOld }
            let bit: UInt64 = 1 << UInt64(back)
            if self.seen & bit != 0 { return .replay }
            self.seen |= bit
            return .accepted
        }
    }

    public enum Verdict: Sendable, Hashable {
        /// New: in the main window (or it moved it forward).
        case accepted
        /// New, but far ahead of the main window: accepted in the tentative window, which did not (yet) replace it.
        case acceptedAhead
        /// This counter was accepted already.
        case replay
        /// More than 64 behind the highest counter of its window.
        case tooOld

        public var isAccepted: Bool { self == .accepted || self == .acceptedAhead }
    }

    public private(set) var main: Line?
    public private(set) var tentative: Line?
    /// Packets accepted in the tentative window since the main one last accepted one.
    public private(set) var tentativeHits = 0

    public init() {}

    /// The highest counter of the main window.
    public var highest: UInt32? { self.main?.highest }

    /// True if `counter` is new (and records it); false for a replay or a counter too far behind.
    public mutating func accept(_ counter: UInt32) -> Bool { self.check(counter).isAccepted }

    /// Checks `counter` and records it when new.
    public mutating func check(_ c: UInt32) -> Verdict {
        guard var m = self.main else {
            self.main = Line(c)
            return .accepted
        }
        if var t = self.tentative, t.covers(c) {
            let v = t.accept(c)
            self.tentative = t
            guard v == .accepted else { return v }
            self.tentativeHits += 1
            guard self.tentativeHits >= Self.confirmations else { return .acceptedAhead }
            // Confirmed: the sender's counters are here now. The old main window stays, as the tentative one.
            (self.main, self.tentative, self.tentativeHits) = (t, m, 0)
            return .accepted
        }
        if UInt64(c) <= UInt64(m.highest) + Self.jumpBound {
            let v = m.accept(c)
            self.main = m
            if v == .accepted { self.tentativeHits = 0 }
            return v
        }
        // Far ahead of both: a new tentative window (the main one is kept whatever comes here).
        self.tentative = Line(c)
        self.tentativeHits = 1
        return .acceptedAhead
    }
}

/// The windows as a store keeps them (`ReplayWindow.stored`), written with every packet accepted: a few bytes, where
/// their JSON form (what stores kept before) cost more to make than the rest of the packet's work. Not on the wire.
///
///     form (u8, 1) | lines (u8: bit 0 main, bit 1 tentative) | each line present, main first:
///     highest (u32) | seen (2 x u32, high half first) | low (u32)   | tentative hits (u32)
///
/// A JSON form starts with `{` (0x7b), so a store tells the two apart by the first byte.
extension ReplayWindow {
    static let storedForm: UInt8 = 1

    public var stored: [UInt8] {
        var w = ByteWriter(capacity: 38)
        w.u8(Self.storedForm)
        w.u8((self.main == nil ? 0 : 1) | (self.tentative == nil ? 0 : 2))
        for l in [self.main, self.tentative].compactMap({ $0 }) {
            w.u32(l.highest)
            w.u32(UInt32(truncatingIfNeeded: l.seen >> 32))
            w.u32(UInt32(truncatingIfNeeded: l.seen))
            w.u32(l.low)
        }
        w.u32(UInt32(clamping: self.tentativeHits))
        return w.bytes
    }

    /// Reads what `stored` wrote; anything else (another form, a line missing, bytes left over) throws.
    public init(stored bytes: [UInt8]) throws(WireError) {
        var r = ByteReader(bytes)
        let form = try r.u8("replay window form")
        guard form == Self.storedForm else { throw .invalidValue(field: "replay window form", reason: "\(form) is not a stored form") }
        let lines = try r.u8("replay window lines")
        guard lines & ~3 == 0 else { throw .invalidValue(field: "replay window lines", reason: "unknown bits \(lines)") }
        func line(_ field: String) throws(WireError) -> Line {
            let highest = try r.u32(field)
            let seen = UInt64(try r.u32(field)) << 32 | UInt64(try r.u32(field))
            return Line(highest: highest, seen: seen, low: try r.u32(field))
        }
        self.init()
        if lines & 1 != 0 { self.main = try line("replay window main") }
        if lines & 2 != 0 { self.tentative = try line("replay window tentative") }
        self.tentativeHits = Int(try r.u32("replay window hits"))
        guard r.isAtEnd else { throw .trailingBytes(field: "replay window", count: r.remaining) }
    }
}
