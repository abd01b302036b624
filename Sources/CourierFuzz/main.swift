import CourierWire

// libFuzzer entry point (scripts/fuzz.sh). The first byte picks the decoder (0 packet, 1 records, 2 archive,
// 3 bundle); the rest is its input.
// Decoders must return a value or a WireError for every input: a trap, leak or hang is a bug.

let network = try! NetworkKey(bytes: (0..<32).map { UInt8(0x80 + $0) })
let sender = try! NodeIdentity(signingSeed: (0..<32).map { UInt8($0) }, agreementSeed: (0..<32).map { UInt8(0x20 + $0) })
let opener = PacketOpener(networkKey: network, acceptOpen: true)
let compressor = BodyCompressor()

@_cdecl("LLVMFuzzerTestOneInput")
public func courierFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = Array(bytes.dropFirst())
    switch bytes[0] % 4 {
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
    default:
        if let b = try? CourierBundle(decoding: input) {
            _ = b.encode()
            _ = b.verifySignature(originKeys: sender.publicKeys)
            _ = try? b.content(compressor: compressor, recipient: sender, originKeys: sender.publicKeys)
        }
    }
    return 0
}
