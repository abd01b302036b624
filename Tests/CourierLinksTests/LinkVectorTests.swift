import CourierLinks
import CourierTooling
import CourierWire
import Foundation
import Testing

/// protocol/vectors/{framing,kiss,codes,announces}.json, both directions (SPEC 9.2, 18, 19).
@Suite struct LinkVectorTests {
    func load<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol/vectors/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    func bytes(_ hex: String) throws -> [UInt8] { try #require([UInt8](hex: hex)) }

    @Test func framing() throws {
        let file = try self.load("framing.json", as: Vectors.FramingFile.self)
        for v in file.crc32c { #expect(String(format: "%08x", CRC32C.checksum(try self.bytes(v.inputHex))) == v.crc) }
        #expect(file.frames.count >= 4 && file.streams.count >= 6)
        for v in file.frames {
            let p = try self.bytes(v.packetHex)
            #expect(COBSFrameCodec().encode(p).hex == v.frameHex, "\(v.name)")
            var c = COBSFrameCodec()
            #expect(c.feed(try self.bytes(v.frameHex)[...]) == [p], "\(v.name)")
            // Byte by byte, as a slow line delivers it.
            var d = COBSFrameCodec()
            #expect(try self.bytes(v.frameHex).flatMap { d.feed([$0][...]) } == [p], "\(v.name)")
        }
        for v in file.streams {
            var c = COBSFrameCodec()
            #expect(c.feed(try self.bytes(v.streamHex)[...]).map(\.hex) == v.packetsHex, "\(v.name)")
            #expect(c.dropped == v.dropped, "\(v.name)")
        }
        for v in file.tcp {
            #expect(LengthPrefixCodec().encode(try self.bytes(v.packetHex)).hex == v.frameHex)
            var c = LengthPrefixCodec()
            #expect(c.feed(try self.bytes(v.frameHex)[...]).map(\.hex) == [v.packetHex])
        }
    }

    @Test func kiss() throws {
        let file = try self.load("kiss.json", as: Vectors.KISSFile.self)
        for v in file.frames {
            let codec = KISSFrameCodec(port: UInt8(v.port ?? 0), ax25: v.callsign.flatMap(AX25.Station.init))
            #expect(codec.encode(try self.bytes(v.packetHex)).hex == v.frameHex, "\(v.name)")
            var c = codec
            #expect(c.feed(try self.bytes(v.frameHex)[...]).map(\.hex) == [v.packetHex], "\(v.name)")
        }
        for v in file.parameters {
            let p = KISS.Parameters(txDelay: UInt8(v.txDelay), persistence: UInt8(v.persistence), slotTime: UInt8(v.slotTime),
                                    txTail: UInt8(v.txTail))
            #expect(p.frames(port: 0).map(\.hex) == v.framesHex)
            #expect(p == LinkOptions().kissParameters, "the relay's defaults")
        }
        for v in file.streams {
            var c = KISSFrameCodec(port: UInt8(v.port ?? 0), ax25: v.callsign.flatMap(AX25.Station.init))
            #expect(c.feed(try self.bytes(v.streamHex)[...]).map(\.hex) == v.packetsHex, "\(v.name)")
            #expect(c.dropped == v.dropped, "\(v.name)")
        }
        for v in file.rnode {
            #expect(RNodeFrameCodec().encode(try self.bytes(v.packetHex)).hex == v.frameHex)
            var c = RNodeFrameCodec()
            #expect(c.feed(try self.bytes(v.frameHex)[...]).map(\.hex) == [v.packetHex])
        }
    }

    @Test func codes() throws {
        let file = try self.load("codes.json", as: Vectors.CodesFile.self)
        for v in file.joinCodes {
            let key = try NetworkKey(bytes: try self.bytes(v.networkKey))
            #expect(JoinCode.encode(networkKey: key, open: v.open) == v.code)
            let d = try JoinCode.decode(v.code)
            #expect(d.networkKey == key && d.open == v.open)
            // Read out and retyped: upper case, in groups.
            let spoken = stride(from: 0, to: v.code.count, by: 5).map { i -> String in
                let s = v.code.index(v.code.startIndex, offsetBy: i)
                return String(v.code[s..<v.code.index(s, offsetBy: min(5, v.code.count - i))])
            }.joined(separator: " ").uppercased()
            #expect(try JoinCode.decode(spoken).networkKey == key)
        }
        for v in file.identityCodes {
            let keys = try NodePublicKeys(signing: try self.bytes(v.signingPublic), agreement: try self.bytes(v.agreementPublic))
            #expect(IdentityCode.encode(keys) == v.code)
            #expect(try IdentityCode.decode(v.code) == keys)
        }
        #expect(file.invalid.count >= 6)
        for v in file.invalid {
            if v.kind == "join" {
                #expect(throws: CodeError.self, "\(v.why)") { try JoinCode.decode(v.code) }
            } else {
                #expect(throws: CodeError.self, "\(v.why)") { try IdentityCode.decode(v.code) }
            }
        }
        let newer = try #require(file.invalid.first { $0.why.contains("flags") })
        #expect(throws: CodeError.unsupportedFlags(0x02)) { try JoinCode.decode(newer.code) }
    }

    @Test func announces() throws {
        for v in try self.load("announces.json", as: [Vectors.AnnounceVector].self) {
            let a = AnnounceRecord(capabilities: UInt8(v.capabilities), signingKey: try self.bytes(v.signingKey),
                                   agreementKey: try self.bytes(v.agreementKey), name: v.nameUtf8)
            let parts = AnnounceRecord.parts(a, mtu: v.mtu)
            #expect(parts.map { Record.encode([.announce($0)]).hex } == v.recordsHex, "\(v.name)")
            var learned = AnnounceRecord(capabilities: 0, signingKey: nil, agreementKey: nil)
            for hex in v.recordsHex {
                let records = try Record.decodeAll(try self.bytes(hex)[...])
                #expect(Packet.announceOverhead + hex.count / 2 <= v.mtu, "\(v.name): a part does not fit")
                guard case .announce(let r) = try #require(records.first) else { Issue.record("not an announce"); continue }
                learned.signingKey = r.signingKey ?? learned.signingKey
                learned.agreementKey = r.agreementKey ?? learned.agreementKey
                learned.name = r.name ?? learned.name
            }
            #expect(learned.signingKey == a.signingKey && learned.agreementKey == a.agreementKey)
            if let n = v.nameUtf8 {
                let got = try #require(learned.name)
                #expect(n.hasPrefix(got) && got.utf8.count <= 32 && (n.utf8.count <= 32) == (got == n), "\(v.name)")
            }
        }
    }
}
