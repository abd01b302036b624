import CourierStore
import CourierTooling
import CourierWire
import Foundation

enum S {
    static let compressor = BodyCompressor()
    static let now: Int64 = 1_790_000_000  // 2026-09
    static var nowMinutes: UInt32 { CourierTime.minutes(unixSeconds: now) }

    static func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("courier-store-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func store(quota: Int = 64 * 1_048_576, path: String? = nil) throws -> Store {
        var c = Store.Configuration()
        c.quotaBytes = quota
        return try Store(path: path ?? (tempDir() + "/courier.db"), configuration: c)
    }

    static let origins = (0..<8).map { _ in NodeIdentity() }

    static func bundle(
        _ kind: Kind = .text, origin: Int = 0, seq: UInt32, size: Int = 60, to dest: Destination = .everyone,
        lifetime: UInt32? = nil, createdAgo: UInt32 = 1
    ) throws -> CourierBundle {
        var g = SplitMix64(seed: UInt64(seq) &* 31 &+ UInt64(origin))
        // Random bytes do not compress: the encoded size tracks `size`.
        let content = (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        return try CourierBundle.make(
            kind: kind, destination: dest, content: content, origin: origins[origin], created: nowMinutes - createdAgo,
            sequence: seq, options: BundleOptions(kind: kind, lifetime: lifetime, sign: false), compressor: compressor)
    }

    /// The directory holding the built executables (next to the test bundle).
    static func executable(_ name: String) -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug/\(name)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }
}
