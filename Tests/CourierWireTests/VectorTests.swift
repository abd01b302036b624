import CourierTooling
import CourierWire
import Crypto
import Testing

/// protocol/vectors/*.json, both directions: encoding the inputs gives the hex; decoding the hex gives the value.
@Suite struct VectorTests {
    @Test func keys() throws {
        let file = try Fixture.load("keys.json", as: Vectors.KeysFile.self)
        let net = try NetworkKey(bytes: [UInt8](hex: file.nodes[0].networkKey)!)
        #expect(file.nodes.count == 2)
        for v in file.nodes {
            let id = try v.identity.identity()
            #expect(id.publicKeys.signing.hex == v.signingPublic)
            #expect(id.publicKeys.agreement.hex == v.agreementPublic)
            #expect(id.nodeID.description == v.nodeId)
            #expect(id.nodeID.short.description == v.shortId)
            #expect(net.packetKey(for: id.nodeID).withUnsafeBytes { Array($0) }.hex == v.packetKey)
            #expect(net.announceKey.withUnsafeBytes { Array($0) }.hex == v.announceKey)
        }
        for g in file.groups { #expect(String(GroupID(name: g.name).rawValue, radix: 16).leftPad(4) == g.groupId) }
        for d in file.digests {
            let id = try #require(BundleID(d.bundleId))
            #expect(id.fixedBytes.hex == d.fixedBytes)
            #expect(String(id.digest, radix: 16).leftPad(8) == d.digest)
        }
    }

    @Test func archives() throws {
        for v in try Fixture.load("archives.json", as: [Vectors.ArchiveVector].self) {
            let net = try NetworkKey(bytes: [UInt8](hex: v.networkKey)!)
            let writer = try #require(NodeID(bytes: [UInt8](hex: v.writer)!))
            let a = BundleArchive(created: v.created, writer: writer, bundles: v.bundlesHex.map { [UInt8](hex: $0)! })
            #expect(a.encoded(networkKey: net).hex == v.archiveHex)
            #expect(try BundleArchive(decoding: [UInt8](hex: v.archiveHex)!, networkKey: net) == a)
        }
    }

    @Test func varints() throws {
        let file = try Fixture.load("varints.json", as: [Vectors.VarintVector].self)
        for v in file {
            var r = ByteReader([UInt8](hex: v.hex)!)
            if let value = v.value {
                var w = ByteWriter()
                w.varint(value)
                #expect(w.bytes.hex == v.hex)
                #expect(try r.varint("v") == value)
                #expect(r.isAtEnd)
            } else {
                #expect(throws: WireError.self) { try r.varint("v") }
            }
        }
    }

    @Test func bundles() throws {
        let file = try Fixture.load("bundles.json", as: [Vectors.BundleVector].self)
        #expect(file.count >= 6)
        for v in file {
            let made = try Vectors.make(v, compressor: Fixture.compressor)
            #expect(made.encode().hex == v.bundleHex, "encode: \(v.name)")
            #expect(Vectors.describe(made.compression) == v.compression, "\(v.name)")
            let decoded = try CourierBundle(decoding: [UInt8](hex: v.bundleHex)!)
            #expect(decoded == made, "decode: \(v.name)")
            let origin = try v.origin.identity()
            if v.sign { #expect(decoded.verifySignature(originKeys: origin.publicKeys), "\(v.name)") }
            let recipient = try v.recipient?.identity()
            // SPEC 6.12: an unsigned end-to-end bundle is proven to its recipient (only) by its tag.
            let byTag = recipient.map { decoded.endToEndVerifies(recipient: $0, originKeys: origin.publicKeys) } ?? false
            let proof = decoded.isSigned ? "signature" : (byTag && !decoded.kind.signedByDefault ? "end-to-end" : "none")
            #expect(proof == v.provenBy, "provenBy: \(v.name)")
            if byTag { #expect(!decoded.endToEndVerifies(recipient: Fixture.c, originKeys: origin.publicKeys), "\(v.name)") }
            let content = try decoded.content(
                compressor: Fixture.compressor, recipient: recipient, originKeys: origin.publicKeys)
            #expect(content == Vectors.content(v), "\(v.name)")
            if recipient != nil {
                // Nobody else can read it.
                #expect(throws: WireError.decryptionFailed) {
                    try decoded.content(compressor: Fixture.compressor, recipient: Fixture.c, originKeys: origin.publicKeys)
                }
            }
        }
    }

    @Test func packets() throws {
        let file = try Fixture.load("packets.json", as: [Vectors.PacketVector].self)
        #expect(file.count >= 6)
        for v in file {
            let sender = try v.sender.identity()
            let net = try NetworkKey(bytes: [UInt8](hex: v.networkKey)!)
            let records = try v.records.map(Vectors.record)
            #expect(Record.encode(records).hex == v.payloadHex, "payload: \(v.name)")
            let sealed = PacketSealer(networkKey: net, sender: sender.nodeID, open: v.open)
                .seal(records, counter: v.counter, announceSalt: v.announceSalt)
            #expect(sealed.hex == v.packetHex, "seal: \(v.name)")
            let opened = try PacketOpener(networkKey: net, acceptOpen: v.open)
                .open([UInt8](hex: v.packetHex)!, candidates: Fixture.directory([sender]))
            #expect(opened.records.map(Vectors.json) == v.records, "open: \(v.name)")
            #expect(opened.header.counter == v.counter)
            #expect(opened.sender == (v.announceSalt == nil ? sender.nodeID : nil))
        }
    }

    @Test func fragments() throws {
        let file = try Fixture.load("fragments.json", as: [Vectors.FragmentVector].self)
        for v in file {
            let bundle = [UInt8](hex: v.bundleHex)!
            let recs = try Fragmenter.records(
                bundle: bundle, mtu: v.mtu, transfer: v.transfer, nextHop: v.nextHop.flatMap(ShortID.init(hex:)))
            #expect(recs.map { Record.encode([$0]).hex } == v.recordsHex, "\(v.name)")
            var re = Reassembler()
            var result: [UInt8]? = nil
            for hex in v.recordsHex {
                let decoded = try Record.decodeAll([UInt8](hex: hex)![...])
                #expect(decoded.count == 1)
                switch decoded[0] {
                case .bundle(let b): result = b.bundle
                case .fragment(let f):
                    #expect(Packet.overhead + hex.count / 2 <= v.mtu)
                    if case .complete(let bytes, _) = re.add(f, from: Fixture.a.nodeID, now: 0) { result = bytes }
                default: Issue.record("unexpected record")
                }
            }
            #expect(result == bundle, "\(v.name)")
        }
    }

    @Test func invalidInputsAreRejected() throws {
        let file = try Fixture.load("invalid.json", as: [Vectors.InvalidVector].self)
        #expect(file.count >= 10)
        for v in file {
            let bytes = [UInt8](hex: v.hex)!
            switch v.decoder {
            case "bundle":
                #expect(throws: WireError.self, "\(v.why)") {
                    let b = try CourierBundle(decoding: bytes)
                    _ = try b.content(compressor: Fixture.compressor)
                }
            case "payload": #expect(throws: WireError.self, "\(v.why)") { try Record.decodeAll(bytes[...]) }
            case "packet-header": #expect(throws: WireError.self, "\(v.why)") { try PacketHeader.decode(bytes[...]) }
            case "packet":
                #expect(throws: WireError.self, "\(v.why)") {
                    try PacketOpener(networkKey: Fixture.network).open(bytes, candidates: Fixture.directory([Fixture.a]))
                }
            case "receipt-content": #expect(throws: WireError.self, "\(v.why)") { try ReceiptContent.decode(bytes) }
            case "failure-content": #expect(throws: WireError.self, "\(v.why)") { try FailureContent.decode(bytes) }
            default: Issue.record("unknown decoder \(v.decoder)")
            }
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - self.count)) + self }
}
