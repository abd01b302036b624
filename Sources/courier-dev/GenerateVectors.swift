import ArgumentParser
import CourierTooling
import CourierWire
import Crypto
import Foundation

/// Fixed inputs of the vectors, shared with the tests.
enum Fixtures {
    static func seeds(_ start: UInt8) -> String { (0..<32).map { start &+ UInt8($0) }.hex }
    static let a = Vectors.IdentitySeeds(signingSeed: seeds(0x00), agreementSeed: seeds(0x20))
    static let b = Vectors.IdentitySeeds(signingSeed: seeds(0x40), agreementSeed: seeds(0x60))
    static let networkKey = seeds(0x80)
}

struct GenerateVectors: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors", abstract: "Regenerate protocol/vectors/*.json from the code.")

    @Option(help: "Output folder.") var out = Vectors.defaultDirectory()

    func run() throws {
        let compressor = BodyCompressor()
        let a = try Fixtures.a.identity()
        let b = try Fixtures.b.identity()
        let net = try NetworkKey(bytes: [UInt8](hex: Fixtures.networkKey)!)
        try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true)

        // keys.json
        func keyBytes(_ k: SymmetricKey) -> String { k.withUnsafeBytes { Array($0) }.hex }
        let nodes = [("A", Fixtures.a, a), ("B", Fixtures.b, b)].map { name, seeds, id in
            Vectors.KeyVector(
                name: name, identity: seeds, signingPublic: id.publicKeys.signing.hex,
                agreementPublic: id.publicKeys.agreement.hex, nodeId: id.nodeID.description,
                shortId: id.nodeID.short.description, networkKey: Fixtures.networkKey,
                packetKey: keyBytes(net.packetKey(for: id.nodeID)), announceKey: keyBytes(net.announceKey))
        }
        let groups = ["water-committee", "clinic", "لجنة المياه"].map {
            Vectors.GroupVector(name: $0, groupId: String(format: "%04x", GroupID(name: $0).rawValue))
        }
        let ids = [
            try BundleID(origin: a.nodeID.short, created: 1_523_041, sequence: 0),
            try BundleID(origin: b.nodeID.short, created: 16_777_215, sequence: 4_294_967_295),
        ]
        let digests = ids.map {
            Vectors.DigestVector(bundleId: $0.description, fixedBytes: $0.fixedBytes.hex, digest: String(format: "%08x", $0.digest))
        }
        try self.write(
            Vectors.KeysFile(
                description: "Node ids, short ids, packet and announce keys (HKDF-SHA256), group ids and bundle digests.",
                nodes: nodes, groups: groups, digests: digests), "keys.json")

        // varints.json
        var varints: [Vectors.VarintVector] = [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 4_294_967_295].map {
            var w = ByteWriter()
            w.varint(UInt64($0))
            return Vectors.VarintVector(value: UInt64($0), hex: w.bytes.hex, error: nil)
        }
        varints += [
            Vectors.VarintVector(value: nil, hex: "8000", error: "not in shortest form"),
            Vectors.VarintVector(value: nil, hex: "ffffffff10", error: "more than 32 bits"),
            Vectors.VarintVector(value: nil, hex: "80", error: "truncated"),
        ]
        try self.write(varints, "varints.json")

        // bundles.json
        let aidRequest = ids[0]
        let water = String(format: "%04x", GroupID(name: "water-committee").rawValue)
        var bundleVectors: [Vectors.BundleVector] = []
        func bundle(
            _ name: String, kind: Kind, dest: String, created: UInt32, seq: UInt32, lifetime: UInt32? = nil,
            hop: UInt8 = 8, priority: PriorityClass? = nil, respondBy: UInt32? = nil, reference: BundleID? = nil,
            sign: Bool? = nil, e2e: Bool = false, text: String, contentHex: String? = nil,
            extensions: [Vectors.ExtensionJSON]? = nil, dictionary: Bool? = nil
        ) throws {
            var v = Vectors.BundleVector(
                name: name, origin: Fixtures.a, recipient: e2e ? Fixtures.b : nil, kind: kind.code, destination: dest,
                created: created, sequence: seq, lifetime: lifetime ?? kind.defaultLifetime, hopLimit: hop,
                priority: priority?.rawValue, respondBy: respondBy, reference: reference?.description,
                sign: sign ?? kind.signedByDefault, compression: "", contentUtf8: text, bundleHex: "")
            v.contentHex = contentHex
            v.extensions = extensions
            v.dictionary = dictionary
            let made = try Vectors.make(v, compressor: compressor)
            v.compression = Vectors.describe(made.compression)
            v.bundleHex = made.encode().hex
            v.provenBy = made.isSigned ? "signature" : (made.isEncrypted && !kind.signedByDefault ? "end-to-end" : "none")
            bundleVectors.append(v)
        }
        try bundle(
            "alert to everyone, origin-signed", kind: .alert, dest: "everyone", created: 1_523_041, seq: 0,
            text: "Flash flood warning: the Zab is rising fast. Move away from the riverbank now. Avoid the low road.")
        try bundle(
            "aid request to a group, with respond-by", kind: .aidRequest, dest: "group:\(water)", created: 1_523_041,
            seq: 1, respondBy: 360,
            text: "نحتاج 20 كيس طحين و200 لتر ماء للعائلات النازحة في الحي الشرقي. الرجاء الرد قبل الساعة السادسة مساءً.")
        try bundle(
            "aid offer answering the request (reference)", kind: .aidOffer, dest: "group:\(water)", created: 1_523_100,
            seq: 0, reference: aidRequest,
            text: "Em dikarin 10 kîs ard û 100 lître av heta êvarê bînin navenda gund. Komîteya alîkariyê ya Semêlê.")
        try bundle(
            "grievance end-to-end encrypted to node B", kind: .grievance, dest: "node:\(b.nodeID.short)",
            created: 1_523_200, seq: 7, e2e: true,
            text: "The pump at the upper well has been broken for nine days and the committee has not answered our three requests. Families on the hill carry water 2 km.")
        try bundle("tiny text, stored raw", kind: .text, dest: "node:\(b.nodeID.short)", created: 1_523_201, seq: 128, hop: 0, text: "ok")
        try bundle(
            "minutes with a priority override and signature", kind: .minutes, dest: "everyone", created: 1_523_300,
            seq: 2, priority: .aid, sign: true,
            text: "کۆبوونەوەی گشتی گوندی سەرگەڵوو، ٢٠ی تشرینی دووەم. ئامادەبووان: ١٤ ئەندام. بڕیار: دابەشکردنی ئاو بە نۆرە، هەر ماڵێک دوو ڕۆژ جارێک. کۆبوونەوەی داهاتوو هەینی.")
        try bundle(
            "grievance signed and end-to-end encrypted (the AAD carries the signed flag)", kind: .grievance,
            dest: "node:\(b.nodeID.short)", created: 1_523_210, seq: 8, sign: true, e2e: true,
            text: "Second notice: the upper well pump is still broken. We ask the committee to meet before Friday.")
        try bundle(
            "text with a non-critical and a critical extension", kind: .text, dest: "everyone", created: 1_523_220,
            seq: 9, text: "Bread oven rota posted at the school.",
            extensions: [Vectors.ExtensionJSON(type: 2, value: "0102"), Vectors.ExtensionJSON(type: 7, value: "ff")])
        try bundle(
            "delivery receipt for two bundles (binary content, signed by default)", kind: .receipt,
            dest: "node:\(a.nodeID.short)", created: 1_523_230, seq: 10, text: "", contentHex: ReceiptContent.encode(ids).hex)
        try bundle(
            "zstd without a dictionary (an encoder that has none)", kind: .minutes, dest: "everyone",
            created: 1_523_240, seq: 11,
            text: String(repeating: "Item 4: the water rota. Agreed: east quarter Monday and Thursday, west quarter Tuesday and Friday. ", count: 8),
            dictionary: false)
        try bundle(
            "identity bundle flooded to everyone (keys and name, signed with the key it carries)", kind: .identity,
            dest: "everyone", created: 1_523_250, seq: 12, text: "",
            contentHex: IdentityContent(keys: a.publicKeys, name: "Sargalu clinic").encode().hex)
        try bundle(
            "key request to node B (identity with Q set, one day)", kind: .identity, dest: "node:\(b.nodeID.short)",
            created: 1_523_251, seq: 13, lifetime: 24 * 60, text: "",
            contentHex: IdentityContent(keys: a.publicKeys, name: nil, wantsAnswer: true).encode().hex)
        try bundle(
            "failure notice to node B: one of its bundles was unreadable", kind: .failure, dest: "node:\(b.nodeID.short)",
            created: 1_523_260, seq: 14, text: "",
            contentHex: FailureContent.encode([(try BundleID(origin: b.nodeID.short, created: 1_523_200, sequence: 3), .unreadable)]).hex)
        try bundle(
            "failure notice to node B: one of its directed bundles ran out of hops in a loop of routes (reason 5)",
            kind: .failure, dest: "node:\(b.nodeID.short)", created: 1_523_261, seq: 15, text: "",
            contentHex: FailureContent.encode([(try BundleID(origin: b.nodeID.short, created: 1_523_201, sequence: 4), .outOfHops)]).hex)
        try self.write(bundleVectors, "bundles.json")

        // packets.json
        let alertBytes = [UInt8](hex: bundleVectors[0].bundleHex)!
        let aidBytes = [UInt8](hex: bundleVectors[1].bundleHex)!
        let grievanceBytes = [UInt8](hex: bundleVectors[3].bundleHex)!
        let sealer = PacketSealer(networkKey: net, sender: a.nodeID)
        let openSealer = PacketSealer(networkKey: net, sender: a.nodeID, open: true)
        var packets: [Vectors.PacketVector] = []
        func packet(_ name: String, _ records: [Record], counter: UInt32, salt: UInt32? = nil, open: Bool = false) {
            let bytes = (open ? openSealer : sealer).seal(records, counter: counter, announceSalt: salt)
            packets.append(Vectors.PacketVector(
                name: name, networkKey: Fixtures.networkKey, sender: Fixtures.a, counter: counter, announceSalt: salt,
                open: open, records: records.map(Vectors.json), payloadHex: Record.encode(records).hex,
                packetHex: bytes.hex))
        }
        packet("one flooded alert", [.bundle(BundleRecord(bundle: alertBytes))], counter: 1)
        packet(
            "ack, summary and an addressed bundle packed together",
            [
                .ack(AckRecord(target: b.nodeID.short, entries: [
                    AckEntry(transfer: 5, received: 1), AckEntry(transfer: 6, receivedIndices: [0, 1, 3, 9]),
                ])),
                .summary(SummaryRecord(isFinal: true, digests: ids.map(\.digest))),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 300, bundle: grievanceBytes)),
            ], counter: 2)
        packet(
            "announce form",
            [.announce(AnnounceRecord(capabilities: 1, signingKey: a.publicKeys.signing, agreementKey: a.publicKeys.agreement, name: "Sargalu clinic"))],
            counter: 3, salt: 0x0BAD_CAFE)
        packet("open mode (amateur bands): readable, authenticated", [.bundle(BundleRecord(bundle: alertBytes))], counter: 4, open: true)
        packet(
            "an unknown record type is skipped",
            [.unknown(type: 9, flags: 2, body: [1, 2, 3]), .bundle(BundleRecord(bundle: aidBytes))], counter: 5)
        packet(
            "open mode announce form, one key only (as at the 64-byte MTU)",
            [.announce(AnnounceRecord(capabilities: 0, signingKey: a.publicKeys.signing, agreementKey: nil))],
            counter: 7, salt: 0x0102_0304, open: true)
        packet(
            "a summary page that is not the last",
            [.summary(SummaryRecord(isFinal: false, digests: [0xDEAD_BEEF, 0x0000_0001, 0xFFFF_FFFF]))], counter: 8)
        // 5.3 compact form: the grievance and the tiny text are from A (the packet's sender) to B (the next hop).
        let tinyBytes = [UInt8](hex: bundleVectors[4].bundleHex)!
        packet(
            "compact bundle records (5.3): origin, destination and a default lifetime left out",
            [
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 301, bundle: grievanceBytes, compactFrom: a.nodeID.short)),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 302, bundle: tinyBytes, compactFrom: a.nodeID.short)),
            ], counter: 10)
        // The tiny text's successor: same header, a sequence two on (one transfer skipped: "like" the one before it in a
        // run, 5.11).
        var next = try CourierBundle(decoding: tinyBytes)
        next.id = try BundleID(origin: next.id.origin, created: next.id.created, sequence: next.id.sequence + 2)
        next.body = Array("no".utf8)
        let tinyNext = next.encode()
        // 5.11 bundle run and 5.5 ranges form (capability bit 4): the same two bundles and a third as one run record,
        // after an ack of whole transfers 7-9 and 12 from B; the third bundle is "like" the second.
        packet(
            "a bundle run (5.11) after an ack in the ranges form (5.5, flag W)",
            [
                .ack(AckRecord(target: b.nodeID.short, entries: [7, 8, 9, 12].map { AckEntry(transfer: $0, received: 1) }, ranges: true)),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 303, bundle: grievanceBytes, compactFrom: a.nodeID.short, inRun: true)),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 304, bundle: tinyBytes, compactFrom: a.nodeID.short, inRun: true)),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 306, bundle: tinyNext, compactFrom: a.nodeID.short, inRun: true)),
            ], counter: 11)
        // 5.12 cut bundles (capability bit 5): a packet filled with the tiny text and the first 20 bytes of the
        // grievance's first form; the next packet begins with the grievance's rest, then the tiny text's successor
        // (written as a first bundle: it must read without the head).
        let grievanceRecord = BundleRecord(nextHop: b.nodeID.short, transfer: 308, bundle: grievanceBytes, compactFrom: a.nodeID.short, inRun: true)
        let cut = RunPiece.cut(grievanceRecord, keep: 20)!
        packet(
            "a bundle run ending with the head of a cut bundle (5.12, flag C)",
            [
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 307, bundle: tinyBytes, compactFrom: a.nodeID.short, inRun: true)),
                .piece(cut.head),
            ], counter: 12)
        packet(
            "a bundle run beginning with the rest of a cut bundle (5.12, flag R)",
            [
                .piece(cut.rest),
                .bundle(BundleRecord(nextHop: b.nodeID.short, transfer: 310, bundle: tinyNext, compactFrom: a.nodeID.short, inRun: true)),
            ], counter: 13)
        let frags = try Fragmenter.records(bundle: aidBytes, mtu: 64, transfer: 9, nextHop: b.nodeID.short)
        packet("one fragment of an addressed transfer", [frags[1]], counter: 6)
        try self.write(packets, "packets.json")

        // fragments.json
        var fragments: [Vectors.FragmentVector] = []
        for (name, bytes, mtu, next) in [
            ("aid request at the minimum MTU", aidBytes, 64, b.nodeID.short as ShortID?),
            ("aid request at a LoRa MTU fits whole", aidBytes, 255, nil),
            ("grievance flooded at MTU 100", grievanceBytes, 100, nil),
        ] {
            let recs = try Fragmenter.records(bundle: bytes, mtu: mtu, transfer: 300, nextHop: next)
            fragments.append(Vectors.FragmentVector(
                name: name, bundleHex: bytes.hex, mtu: mtu, transfer: 300, nextHop: next?.description,
                recordsHex: recs.map { Record.encode([$0]).hex }))
        }
        try self.write(fragments, "fragments.json")

        // invalid.json
        var tampered = [UInt8](hex: packets[0].packetHex)!
        tampered[12] ^= 0x01
        var wrongSender = [UInt8](hex: packets[0].packetHex)!
        wrongSender[4] ^= 0x01
        var alertMutated = alertBytes
        alertMutated[1] |= 0x01
        let invalid: [Vectors.InvalidVector] = [
            .init(decoder: "bundle", hex: "", why: "empty"),
            .init(decoder: "bundle", hex: Array(alertBytes.prefix(5)).hex, why: "truncated inside the id"),
            .init(decoder: "bundle", hex: alertMutated.hex, why: "reserved flag bit set"),
            .init(decoder: "bundle", hex: "80c0" + a.nodeID.short.description + "173d610001", why: "destination type 3"),
            .init(decoder: "bundle", hex: "8080" + a.nodeID.short.description + "173d610000", why: "lifetime 0"),
            .init(decoder: "bundle", hex: "8080" + a.nodeID.short.description + "173d618000", why: "sequence varint not in shortest form"),
            .init(decoder: "bundle", hex: "8088" + a.nodeID.short.description + "173d610001" + String(repeating: "00", count: 10), why: "signed flag but shorter than a signature"),
            .init(decoder: "bundle", hex: "808204" + a.nodeID.short.description + "173d610001", why: "priority bits without the priority flag"),
            .init(decoder: "bundle", hex: "8090" + a.nodeID.short.description + "173d610001", why: "compression 1 with an empty body: not a zstd frame (rejected when the content is read)"),
            .init(decoder: "payload", hex: "3804" + "aabbccdd", why: "ack record without entries"),
            .init(decoder: "payload", hex: "20" + "010001" + "ff", why: "fragment count 1"),
            .init(decoder: "payload", hex: "20" + "01050300", why: "fragment index not below count"),
            .init(decoder: "payload", hex: "51" + "000000", why: "summary length not a multiple of 4"),
            .init(decoder: "payload", hex: "1805" + "aabb", why: "record length beyond the payload"),
            .init(decoder: "payload", hex: "4302" + "00", why: "announce keys truncated"),
            .init(decoder: "payload", hex: "39" + "aabbccdd" + "ffffffff0f" + "01", why: "ack ranges past transfer 2^32 - 1"),
            .init(decoder: "payload", hex: "39" + "aabbccdd", why: "ack in the ranges form without ranges"),
            .init(decoder: "payload", hex: "80" + "aabbccdd" + "01", why: "bundle run without bundles (or outside an ordinary packet)"),
            .init(decoder: "packet", hex: tampered.hex, why: "one ciphertext bit flipped: authentication fails"),
            .init(decoder: "packet", hex: wrongSender.hex, why: "sender short id changed: unknown sender (or authentication fails)"),
            .init(decoder: "packet-header", hex: "20" + String(repeating: "00", count: 24), why: "version 2"),
            .init(decoder: "packet-header", hex: "11" + String(repeating: "00", count: 24), why: "reserved header bits"),
            .init(decoder: "packet-header", hex: "10aabb", why: "truncated header"),
            // 6.8: receipt and failure notice content must parse as whole entries (malformed: not delivered).
            .init(decoder: "receipt-content", hex: "aabbccdd173d", why: "entry cut inside created"),
            .init(decoder: "receipt-content", hex: "aabbccdd173d6100" + "aa", why: "a whole entry, then one byte more"),
            .init(decoder: "receipt-content", hex: "aabbccdd173d618000", why: "sequence varint not in shortest form"),
            .init(decoder: "failure-content", hex: "03", why: "reason without a bundle id"),
            .init(decoder: "failure-content", hex: "03aabbccdd173d6100" + "09aabb", why: "second entry (an unknown reason, 9) cut inside its id"),
        ]
        try self.write(invalid, "invalid.json")

        // archives.json (SPEC 17): what `relay export` writes.
        let archive = BundleArchive(created: 1_523_400, writer: a.nodeID, bundles: [alertBytes, grievanceBytes])
        let archives = [Vectors.ArchiveVector(
            name: "two bundles written by node A", networkKey: Fixtures.networkKey, created: archive.created,
            writer: a.nodeID.description, bundlesHex: archive.bundles.map(\.hex),
            archiveKey: keyBytes(HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: net.bytes), salt: Array("courier/v1".utf8), info: Array("archive".utf8), outputByteCount: 32)),
            archiveHex: archive.encoded(networkKey: net).hex)]
        try self.write(archives, "archives.json")
        try LinkVectors.generate(self, packet: [UInt8](hex: packets[0].packetHex)!)
        try self.pactVectors(a: a, b: b, compressor: compressor)
        try self.dictionaryVectors(a: a, b: b)
        try self.receiptVectors(a: a, b: b)
        try self.neighbourVectors(a: a, b: b)
        try self.budgetVectors(b: b)
        print("wrote \(self.out)/{keys,varints,bundles,packets,fragments,invalid,archives,pacts,dictionaries,receipts,neighbours,budgets}.json")
    }

    func write<T: Encodable>(_ value: T, _ name: String) throws {
        var data = try Vectors.encoder().encode(value)
        data.append(0x0A)
        try data.write(to: URL(fileURLWithPath: (self.out as NSString).appendingPathComponent(name)))
    }
}
