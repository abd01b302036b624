import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A store that fails is an output of the engine, with defined behaviour (issue 11 point 4): on a real SQLite file in
/// a real tmpfs filled to the last byte, a node that cannot reserve packet counters sends nothing and says so
/// (`storageFailed`, naming the link); once space returns the next tick sends.
@Suite(.serialized) struct StorageFailureEngineTests {
    /// Mounts a small tmpfs (needs root, as in CI): its path, or nil.
    static func mountTmpfs(size: String) -> String? {
        guard getuid() == 0 else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("courier-engine-disk-\(UUID().uuidString)").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch { return nil }
        return self.system(["/bin/mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir]) == 0 ? dir : nil
    }

    @discardableResult
    static func system(_ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    static let canMount: Bool = {
        guard let dir = mountTmpfs(size: "64k") else { return false }
        system(["/bin/umount", dir])
        return true
    }()

    @Test(.enabled(if: StorageFailureEngineTests.canMount, "needs to mount a tmpfs (root)"))
    func aFailedCounterReservationStopsTheLinkWithAnEventAndTheNextTickAfterSpaceReturnsSends() throws {
        let disk = try #require(Self.mountTmpfs(size: "4m"))
        defer { Self.system(["/bin/umount", "-l", disk]) }
        let store = try Store(path: disk + "/engine.db")
        let t0 = 1_790_000_000.0
        let node = try Node(config: NodeConfig(identity: NodeIdentity(), networkKey: NetworkKey.random(), name: "hill"), store: store,
                            links: [LinkInfo(name: "ip", properties: LinkFactory.tcpProperties())], now: t0, seed: 7)
        // The disk fills to the last byte.
        #expect(Self.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"]) != 0, "dd should stop at a full disk")
        let out = node.linkUp("ip", now: t0)
        let sends = out.filter { if case .send = $0 { true } else { false } }
        #expect(sends.isEmpty, "a packet went out without a packet counter kept in the store: \(out)")
        let failed = out.contains {
            if case .event(.storageFailed(let operation, let link, let error)) = $0 {
                return operation == "reserve packet counters" && link == "ip" && { if case .diskFull = error { true } else { false } }()
            }
            return false
        }
        #expect(failed, "no storageFailed(reserve packet counters, ip, disk full) in \(out)")

        // Space returns: the announce that waited goes out at the next tick.
        #expect(unlink(disk + "/filler") == 0)
        let later = node.tick(now: t0 + 1)
        #expect(later.contains { if case .send(let link, _, _) = $0 { link == "ip" } else { false } }, "nothing sent after space returned: \(later)")
    }
}
