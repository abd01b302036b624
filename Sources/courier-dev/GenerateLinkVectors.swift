import CourierLinks
import CourierTooling
import CourierWire
import Foundation

/// framing.json, kiss.json, codes.json and announces.json (SPEC 9.2, 18, 19), from the code that sends these bytes.
enum LinkVectors {
    static func generate(_ g: GenerateVectors, packet: [UInt8]) throws {
        let a = try Fixtures.a.identity()
        let b = try Fixtures.b.identity()
        let net = try NetworkKey(bytes: [UInt8](hex: Fixtures.networkKey)!)

        // framing.json
        let cobs = COBSFrameCodec()
        let run250 = (1...250).map { UInt8($0) }
        let zeros = [UInt8](repeating: 0, count: 30)
        let small = Array(packet.prefix(25))
        func frame(_ name: String, _ p: [UInt8]) -> Vectors.FrameVector {
            Vectors.FrameVector(name: name, packetHex: p.hex, frameHex: cobs.encode(p).hex)
        }
        let frames = [
            frame("the worked-example packet (167 bytes, SPEC 13.1)", packet),
            frame("25 bytes: the smallest packet", small),
            frame("30 zero bytes", zeros),
            frame("250 non-zero bytes: with the CRC a run of 254, so a 0xff block and a final empty block", run250),
        ]
        func decode(_ name: String, _ stream: [UInt8]) -> Vectors.StreamVector {
            var c = COBSFrameCodec()
            let got = c.feed(stream[...])
            return Vectors.StreamVector(name: name, streamHex: stream.hex, packetsHex: got.map(\.hex), dropped: c.dropped)
        }
        var flipped = cobs.encode(small)
        flipped[10] ^= 0x04
        // The same 250 bytes in canonical COBS (no final empty block after the 0xff block): also accepted.
        var canonical = cobs.encode(run250)
        canonical.remove(at: canonical.count - 2)
        let noLeading = Array(cobs.encode(small).dropFirst())
        let shortFrame = [0x00] + COBS.encode([0x01, 0x02, 0x03]) + [0x00]
        let streams = [
            decode("two frames back to back", cobs.encode(small) + cobs.encode(zeros)),
            decode("line noise before a frame: dropped at the frame's leading 0x00", [0x41, 0x42, 0x43] + cobs.encode(small)),
            decode("one bit flipped: the CRC fails, the frame is dropped, the next one is read", flipped + cobs.encode(zeros)),
            decode("canonical COBS without the final empty block", canonical),
            decode("a frame without the leading 0x00", noLeading),
            decode("a body shorter than the CRC", shortFrame + cobs.encode(small)),
            decode("a 0x00 inside a COBS block (a code that runs past the next 0x00)", [0x00, 0x05, 0x11, 0x00, 0x22, 0x00] + cobs.encode(small)),
        ]
        let tcp = LengthPrefixCodec()
        let tcpFrames = [Vectors.FrameVector(name: "the worked-example packet", packetHex: packet.hex, frameHex: tcp.encode(packet).hex)]
        let crcs = [Array("123456789".utf8), [], small].map {
            Vectors.CRCVector(inputHex: $0.hex, crc: String(format: "%08x", CRC32C.checksum($0)))
        }
        try g.write(Vectors.FramingFile(
            description: "Framed serial (SPEC 18.1): 0x00, COBS(packet || CRC-32C little-endian), 0x00; TCP (18.4): 2-byte big-endian length, packet.",
            crc32c: crcs, frames: frames, streams: streams, tcp: tcpFrames), "framing.json")

        // kiss.json
        let station = AX25.Station("N0CALL-7")!
        let escapes: [UInt8] = [0x10, 0xC0, 0xDB, 0xDC, 0xDD, 0xC0, 0xC0, 0xDB, 0x00]
        let kissFrames = [
            Vectors.FrameVector(name: "the worked-example packet on port 0, no callsign", packetHex: packet.hex,
                                frameHex: KISSFrameCodec().encode(packet).hex, port: 0),
            Vectors.FrameVector(name: "FEND and FESC in the data are escaped", packetHex: escapes.hex,
                                frameHex: KISSFrameCodec().encode(escapes).hex, port: 0),
            Vectors.FrameVector(name: "in an AX.25 UI frame from N0CALL-7 to QST", packetHex: small.hex,
                                frameHex: KISSFrameCodec(ax25: station).encode(small).hex, port: 0, callsign: "N0CALL-7"),
        ]
        let defaults = LinkOptions().kissParameters
        let parameters = [Vectors.ParameterVector(
            name: "what `relay run --link kiss:PATH` writes when the port opens (port 0)",
            txDelay: Int(defaults.txDelay ?? 0), persistence: Int(defaults.persistence ?? 0), slotTime: Int(defaults.slotTime ?? 0),
            txTail: Int(defaults.txTail ?? 0), framesHex: defaults.frames(port: 0).map(\.hex))]
        func kissDecode(_ name: String, _ stream: [UInt8], callsign: AX25.Station? = nil) -> Vectors.StreamVector {
            var c = KISSFrameCodec(ax25: callsign)
            let got = c.feed(stream[...])
            return Vectors.StreamVector(name: name, streamHex: stream.hex, packetsHex: got.map(\.hex), dropped: c.dropped, port: 0,
                                        callsign: callsign?.description)
        }
        let other = AX25.Station("M0XYZ")!
        let digi = AX25.Station("WIDE1-1")!
        // A frame that went through a digipeater: destination, source (not last), one repeater address (last).
        var digipeated = AX25.courierDestination.address(last: false, commandBit: true) + other.address(last: false, commandBit: false)
        digipeated += digi.address(last: true, commandBit: true) + [0x03, 0xF0] + small
        let aprs = AX25.courierDestination.address(last: false, commandBit: true) + other.address(last: true, commandBit: false) + [0x03, 0xCF] + small
        let kissStreams = [
            kissDecode("two data frames; a frame for port 1 and a TXDELAY command are not ours", KISSFrameCodec().encode(small)
                + KISS.frame(type: 0x10, small) + KISS.frame(type: 0x01, [30]) + KISSFrameCodec().encode(escapes)),
            kissDecode("a bad escape (FESC then 0x41) drops the frame", [0xC0, 0x00, 0x01, 0xDB, 0x41, 0x02, 0xC0] + KISSFrameCodec().encode(small)),
            kissDecode("AX.25: from another station, through a digipeater; a frame with PID 0xCF is not ours",
                       KISS.frame(type: 0x00, digipeated) + KISS.frame(type: 0x00, aprs), callsign: station),
            kissDecode("AX.25 expected: a bare packet is not ours", KISSFrameCodec().encode(small), callsign: station),
        ]
        let rnode = [
            Vectors.FrameVector(name: "a packet to an RNode: a KISS frame with command 0x00 (no port nibble)", packetHex: packet.hex,
                                frameHex: RNodeFrameCodec().encode(packet).hex),
        ]
        try g.write(Vectors.KISSFile(
            description: "KISS (SPEC 18.2-18.3): FEND, type byte (port << 4 | command), escaped data, FEND; AX.25 UI frames with a callsign; parameter frames; RNode data frames.",
            frames: kissFrames, parameters: parameters, streams: kissStreams, rnode: rnode), "kiss.json")

        // codes.json
        let joins = [false, true].map {
            Vectors.JoinCodeVector(networkKey: net.bytes.hex, open: $0, code: JoinCode.encode(networkKey: net, open: $0))
        }
        let identities = [("A", a), ("B", b)].map { name, id in
            Vectors.IdentityCodeVector(name: name, signingPublic: id.publicKeys.signing.hex, agreementPublic: id.publicKeys.agreement.hex,
                                       code: IdentityCode.encode(id.publicKeys))
        }
        let join = joins[0].code
        func swap(_ s: String, at i: Int) -> String {
            var c = Array(s)
            c.swapAt(i, i + 1)
            return String(c)
        }
        // Flags 0x02, a bit this version does not know, with a valid check.
        let newer = JoinCode.prefix + CheckedBase32.encode([0x02] + net.bytes)
        let invalid = [
            Vectors.InvalidCodeVector(kind: "join", code: "courier2-" + join.dropFirst(JoinCode.prefix.count), why: "another prefix"),
            Vectors.InvalidCodeVector(kind: "join", code: String(join.dropLast()), why: "one character missing"),
            Vectors.InvalidCodeVector(kind: "join", code: join + "a", why: "one character too many"),
            Vectors.InvalidCodeVector(kind: "join", code: swap(join, at: 20), why: "two characters swapped: the CRC-32C fails"),
            Vectors.InvalidCodeVector(kind: "join", code: join.replacingOccurrences(of: "a", with: "1"), why: "a character outside the alphabet"),
            Vectors.InvalidCodeVector(kind: "join", code: newer, why: "flags 0x02: a feature this version does not know"),
            Vectors.InvalidCodeVector(kind: "identity", code: swap(identities[0].code, at: 40), why: "two characters swapped: the CRC-32C fails"),
            Vectors.InvalidCodeVector(kind: "identity", code: join, why: "a join code is not an identity code"),
        ]
        try g.write(Vectors.CodesFile(
            description: "Join codes (SPEC 19.1) and identity codes (19.2): prefix, then lower-case base32 of payload || CRC-32C (big-endian).",
            joinCodes: joins, identityCodes: identities, invalid: invalid), "codes.json")

        // announces.json
        let k = a.publicKeys
        func announce(_ name: String, mtu: Int, caps: UInt8, nodeName: String?) -> Vectors.AnnounceVector {
            let parts = AnnounceRecord.parts(AnnounceRecord(capabilities: caps, signingKey: k.signing, agreementKey: k.agreement, name: nodeName), mtu: mtu)
            return Vectors.AnnounceVector(name: name, mtu: mtu, capabilities: Int(caps), signingKey: k.signing.hex, agreementKey: k.agreement.hex,
                                          nameUtf8: nodeName, recordsHex: parts.map { Record.encode([.announce($0)]).hex })
        }
        try g.write([
            announce("whole, with the name, at MTU 255", mtu: 255, caps: 1, nodeName: "Sargalu clinic"),
            announce("whole, without a name, at MTU 96", mtu: 96, caps: 1, nodeName: nil),
            announce("at MTU 96 the name rides with the signing key", mtu: 96, caps: 5, nodeName: "Sargalu clinic"),
            announce("at MTU 64: name, signing key, agreement key", mtu: 64, caps: 5, nodeName: "Sargalu clinic"),
            announce("at MTU 64 without a name: one key each", mtu: 64, caps: 1, nodeName: nil),
            announce("a name over 32 bytes is cut at a whole character", mtu: 255, caps: 1, nodeName: "مستوصف سركلو - الطابق الأول"),
        ], "announces.json")
        print("wrote \(g.out)/{framing,kiss,codes,announces}.json")
    }
}
