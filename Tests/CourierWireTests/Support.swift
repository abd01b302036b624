import CourierTooling
import CourierWire
import Foundation

enum Fixture {
    static func seeds(_ start: UInt8) -> [UInt8] { (0..<32).map { start &+ UInt8($0) } }
    static let a = try! NodeIdentity(signingSeed: seeds(0x00), agreementSeed: seeds(0x20))
    static let b = try! NodeIdentity(signingSeed: seeds(0x40), agreementSeed: seeds(0x60))
    static let c = try! NodeIdentity(signingSeed: seeds(0xA0), agreementSeed: seeds(0xC0))
    static let network = try! NetworkKey(bytes: seeds(0x80))
    static let compressor = BodyCompressor()

    static func load<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol/vectors/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    static func repoPath(_ sub: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(sub).path
    }

    /// Known nodes by short id, as a node's neighbour table would give them.
    static func directory(_ ids: [NodeIdentity]) -> (ShortID) -> [NodeID] {
        let map = Dictionary(grouping: ids.map(\.nodeID), by: \.short)
        return { map[$0] ?? [] }
    }

    static func randomBytes(_ n: Int, _ g: inout SplitMix64) -> [UInt8] {
        (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    static func bundle(
        kind: Kind = .text, to dest: Destination = .everyone, text: String, seq: UInt32 = 0, sign: Bool? = nil,
        from: NodeIdentity = a
    ) throws -> CourierBundle {
        try CourierBundle.make(
            kind: kind, destination: dest, content: Array(text.utf8), origin: from, created: 1_500_000,
            sequence: seq, options: BundleOptions(kind: kind, sign: sign), compressor: compressor)
    }
}
