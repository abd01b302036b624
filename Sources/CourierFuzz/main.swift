import CourierLinks
import CourierWire

// libFuzzer entry point (scripts/fuzz.sh). The first byte picks the decoder; the rest is its input:
//   0 packet, 1 records (and reassembly), 2 archive, 3 bundle, 4 link framings (COBS, KISS, KISS in AX.25, RNode,
//   TCP's length prefix),
//   5 bundle contents (identity, receipt, failure notice), 6 person-typed text (join and identity codes, ids,
//   link specs, callsigns).
// Decoders must return a value or a typed error for every input: a trap, leak or hang is a bug. Where a decoder
// promises more than totality, the harness checks that too and traps when it fails (so libFuzzer keeps the input):
// a bundle that decodes re-encodes to the same bytes (SPEC 6.3: only the canonical form is accepted); a content
// that decodes re-encodes to a prefix of its input; every framing gives back a packet sent after any garbage
// (a receiver resynchronises within one frame, whatever came before on the line).

let network = try! NetworkKey(bytes: (0..<32).map { UInt8(0x80 + $0) })
let sender = try! NodeIdentity(signingSeed: (0..<32).map { UInt8($0) }, agreementSeed: (0..<32).map { UInt8(0x20 + $0) })
let opener = PacketOpener(networkKey: network, acceptOpen: true)
let compressor = BodyCompressor()
let station = AX25.Station("N0CALL-7")!

/// Feeds `stream` to a codec in chunks whose sizes the input chooses (a serial read returns any number of bytes),
/// then a well-formed frame of `packet`, and checks that the packet is the last thing the codec gives back.
func checkFraming<C: FrameCodec>(_ codec: C, _ stream: [UInt8], chunks: [UInt8], packet: [UInt8]) {
    var c = codec
    var i = 0
    var k = 0
    while i < stream.count {
        let n = chunks.isEmpty ? stream.count : max(1, Int(chunks[k % chunks.count]))
        _ = c.feed(stream[i..<min(stream.count, i + n)])
        i += n
        k += 1
    }
    let back = c.feed(c.encode(packet)[...])
    guard back.last == packet else {
        fatalError("\(C.self): a frame after \(stream.count) bytes of garbage did not come back (got \(back.count) frames)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func courierFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = Array(bytes.dropFirst())
    switch bytes[0] % 7 {
    case 0:
        // Whole packets, as the vectors' sender would have sealed them; authentication fails on almost all,
        // so also decode the payload as if it had opened, to reach the record decoders.
        if let p = try? opener.open(input, candidates: { $0 == sender.nodeID.short ? [sender.nodeID] : [] }) {
            for case .bundle(let r) in p.records { _ = try? CourierBundle(decoding: r.bundle) }
        }
        _ = try? PacketHeader.decode(input[...])
    case 1:
        if let records = try? Record.decodeAll(input[...]) {
            var re = Reassembler()
            for r in records {
                switch r {
                case .bundle(let b): _ = try? CourierBundle(decoding: b.bundle)
                case .fragment(let f):
                    if case .complete(let whole, _) = re.add(f, from: sender.nodeID, now: 0) {
                        _ = try? CourierBundle(decoding: whole)
                    }
                default: break
                }
                _ = Record.encode([r])
            }
        }
    case 2:
        // Bundle archives (SPEC 17), with a valid tag so the framing decoder sees arbitrary bodies.
        if let a = try? BundleArchive(decoding: BundleArchive.seal(BundleArchive.magic + input, networkKey: network), networkKey: network) {
            for b in a.bundles { _ = try? CourierBundle(decoding: b) }
            _ = a.encoded(networkKey: network)
        }
    case 3:
        if let b = try? CourierBundle(decoding: input) {
            guard b.encode() == input else { fatalError("a bundle decoded from non-canonical bytes") }
            _ = b.verifySignature(originKeys: sender.publicKeys)
            _ = try? b.content(compressor: compressor, recipient: sender, originKeys: sender.publicKeys)
        }
    case 4:
        // Link framings. Byte 1: how many of the following bytes choose chunk sizes (mod 16); then the chunk
        // sizes; the rest is the line. The packet sent afterwards is a slice of the input, so escapes, delimiters
        // and CRC-looking tails in packets are exercised too.
        guard let head = input.first else { return 0 }
        let rest = input.dropFirst()
        let chunks = Array(rest.prefix(Int(head % 16)))
        let line = Array(rest.dropFirst(chunks.count))
        let packet = line.isEmpty ? [0x01] : Array(line.suffix(max(1, min(line.count, Int(head) + 1))))
        checkFraming(COBSFrameCodec(), line, chunks: chunks, packet: packet)
        checkFraming(COBSFrameCodec(maxPacket: 64), line, chunks: chunks, packet: Array(packet.prefix(64)))
        checkFraming(KISSFrameCodec(), line, chunks: chunks, packet: packet)
        checkFraming(KISSFrameCodec(port: head >> 4), line, chunks: chunks, packet: packet)
        checkFraming(KISSFrameCodec(ax25: station), line, chunks: chunks, packet: packet)
        checkFraming(RNodeFrameCodec(), line, chunks: chunks, packet: Array(packet.prefix(500)))
        _ = AX25.parseUI(line)
        if let d = COBS.decode(line[...]) { _ = COBS.encode(d) }
        guard COBS.decode(COBS.encode(line)[...]) == line else { fatalError("COBS did not round-trip") }
        var kiss = KISSDecoder(maxFrame: 64)
        _ = kiss.feed(line[...])
        // TCP's length prefix cannot resynchronise (the stream is reliable): totality only, and a frame sent on
        // a fresh stream comes back.
        var tcp = LengthPrefixCodec()
        _ = tcp.feed(line[...])
        var fresh = LengthPrefixCodec()
        guard fresh.feed(fresh.encode(packet)[...]) == [packet] else { fatalError("a length-prefixed frame did not come back") }
    case 5:
        // Bundle contents, after decompression: what a member can put in a bundle it signs.
        if let identity = try? IdentityContent(decoding: input) { _ = identity.encode() }
        let ids = ReceiptContent.decode(input)
        guard input.starts(with: ReceiptContent.encode(ids)) else { fatalError("receipt ids did not re-encode to their input") }
        let failures = FailureContent.decode(input)
        guard input.starts(with: FailureContent.encode(failures)) else { fatalError("failure entries did not re-encode to their input") }
    default:
        // What a person types or pastes: codes, ids, link specs, callsigns. Any string gives a value or an error.
        let text = String(decoding: input, as: UTF8.self)
        _ = try? JoinCode.decode(text)
        _ = try? IdentityCode.decode(text)
        _ = try? CheckedBase32.decode(text, payloadLength: Int(input.first ?? 0) % 80)
        _ = BundleID(text)
        _ = NodeID(bytes: input)
        _ = ShortID(hex: text)
        _ = try? LinkSpec(text)
        _ = try? LinkConfig(text)
        _ = AX25.Station(text)
    }
    return 0
}
