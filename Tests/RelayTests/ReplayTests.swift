import CourierLinks
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10 points 1, 4 and 5: restarts, replays, forged counters and lost databases. Real `relay` processes joined
/// by a `FrameTap` (two real ptys with a wiretap between them that records every frame and injects frames) or a
/// `VirtualCable`; federations made with init / invite / init --join; real SQLite files.
@Suite(.serialized, .timeLimit(.minutes(20))) struct ReplayTests {
    /// `n` printable characters from a seed: every message of one length compresses to about the same size, and at
    /// 900 characters a bundle takes several fragments at the serial MTU of 255.
    static func text(_ n: Int, seed: UInt64) -> String {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-()'")
        return String((0..<n).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return alphabet[Int(x % UInt64(alphabet.count))]
        })
    }

    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send: \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func delivered(_ dir: String) throws -> Set<String> { Set(try R.inbox(dir).compactMap { $0["id"] as? String }) }

    func start(_ dir: String, _ path: String, log: String, debug: Bool = false) throws -> Process {
        try R.start(["run", "--data-dir", dir, "--link", "serial:\(path):115200"] + (debug ? ["--log-level", "debug"] : []), log: log)
    }

    /// The packet counter in a packet's clear header (SPEC 4.1).
    static func counter(_ p: [UInt8]) -> UInt32 { p.count >= 9 ? p[5..<9].reduce(0) { $0 << 8 | UInt32($1) } : 0 }
    static func isAnnounceForm(_ p: [UInt8]) -> Bool { !p.isEmpty && p[0] & 0x08 != 0 }

    // MARK: Point 1

    @Test func messagesSentAfterASenderRestartAllArrive() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let pb = try self.start(b, cable.pathB, log: b + "/run.log")
        defer { R.stop(pb) }
        var pa = try self.start(a, cable.pathA, log: a + "/run1.log")
        var before: [String] = []
        for i in 0..<3 { before.append(try self.send(a, ["--to", idB, "--unknown-ok", Self.text(900, seed: UInt64(i + 1))])) }
        #expect(try R.wait(90) { Set(before).isSubset(of: try self.delivered(b)) }, "before the restart: not all delivered")
        R.stop(pa)
        // The sender restarts; bravo remembers the transfers it completed (for an hour).
        pa = try self.start(a, cable.pathA, log: a + "/run2.log")
        defer { R.stop(pa) }
        var after: [String] = []
        for i in 0..<3 { after.append(try self.send(a, ["--to", idB, "--unknown-ok", Self.text(900, seed: UInt64(i + 11))])) }
        let all = try R.wait(90) { Set(after).isSubset(of: try self.delivered(b)) }
        let got = try self.delivered(b)
        let queued = try R.queuedIDs(a).intersection(after).count
        #expect(all, "after the restart, delivered \(after.filter(got.contains).count) of 3; still queued at alpha: \(queued)")
    }

    @Test func capturedFramesReplayedIntoARestartedRelayReleaseNothing() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let tap = try FrameTap()
        defer { tap.stop() }
        var pa = try self.start(a, tap.pathA, log: a + "/run1.log")
        let pb = try self.start(b, tap.pathB, log: b + "/run.log")
        let m1 = try self.send(a, ["--to", idB, "--unknown-ok", Self.text(900, seed: 1)])
        #expect(try R.wait(90) { try self.delivered(b).contains(m1) && !(try R.queuedIDs(a).contains(m1)) }, "m1 never delivered")
        R.stop(pb)
        R.stop(pa)
        // What an outsider recorded of bravo: its announces, and its acknowledgements of alpha's transfers.
        let captured = tap.frames(from: .b).map(\.packet)
        #expect(captured.contains { !Self.isAnnounceForm($0) } && captured.contains(where: Self.isAnnounceForm))

        // Alpha restarts, bravo is away: a new message waits in alpha's custody.
        pa = try self.start(a, tap.pathA, log: a + "/run2.log", debug: true)
        defer { R.stop(pa) }
        #expect(try R.wait(30) { R.text(a + "/run2.log").contains("relay running") })
        let m2 = try self.send(a, ["--to", idB, "--unknown-ok", Self.text(900, seed: 2)])
        #expect(try R.wait(30) { try R.queuedIDs(a).contains(m2) })
        // The replay: bravo's announces (so alpha takes bravo for a neighbour and starts sending it m2), then,
        // once alpha sends to it, the rest (bravo's acks, counters and transfer numbers as they were).
        let sentBefore = tap.frames(from: .a).count
        for p in captured where Self.isAnnounceForm(p) { tap.inject(p, from: .b) }
        _ = R.wait(15) { tap.frames(from: .a).dropFirst(sentBefore).contains { !Self.isAnnounceForm($0.packet) } }
        for p in captured where !Self.isAnnounceForm(p) { tap.inject(p, from: .b) }
        let refusedAll = R.wait(30) { R.replays(a) >= captured.count }
        let log = R.text(a + "/run2.log")
        #expect(refusedAll, "replayed \(captured.count) packets, refused as replays: \(R.replays(a))")
        #expect(log.contains("reason=replay"), "the first replay is logged in full (at debug level)")
        let held = try R.queuedIDs(a).contains(m2)
        #expect(held, "m2 was released on replayed acks: \(log.split(separator: "\n").filter { $0.contains(m2) })")
        #expect(!log.contains("custody moved on bundle.id=\(m2)"))
    }

    // MARK: Point 4

    @Test func aForgedCounterFarAheadDoesNotSilenceAMember() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let tap = try FrameTap()
        defer { tap.stop() }
        let pa = try self.start(a, tap.pathA, log: a + "/run.log")
        let pb = try self.start(b, tap.pathB, log: b + "/run.log", debug: true)
        defer { R.stop(pa); R.stop(pb) }
        let m1 = try self.send(a, ["--to", idB, "--unknown-ok", "before the forgery"])
        #expect(try R.wait(60) { try self.delivered(b).contains(m1) }, "m1 never delivered")

        // A member (it holds the network key from its data directory) seals an empty packet as alpha, counter 2^32-1.
        let net = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a + "/network.json"))) as! [String: Any]
        let key = try NetworkKey(bytes: try #require([UInt8](hex: net["key"] as! String)))
        let full = try R.run(["id", "--data-dir", a, "--full"]).1.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)
        let alpha = try #require([UInt8](hex: full).flatMap { NodeID(bytes: $0) })
        let forged = PacketSealer(networkKey: key, sender: alpha).seal([], counter: UInt32.max)
        tap.inject(forged, from: .a)
        #expect(R.wait(10) { tap.frames.contains { $0.injected } })
        // Bravo authenticated it (it is well sealed): anything after it from alpha is what the forgery would block.
        let m2 = try self.send(a, ["--to", idB, "--unknown-ok", "after the forgery"])
        let arrived = try R.wait(60) { try self.delivered(b).contains(m2) }
        #expect(arrived, "a real message from alpha never arrived after the forged counter; bravo refused \(R.replays(b)) packets as replays")
        // The forgery cannot be replayed either.
        let refused = R.replays(b)
        tap.inject(forged, from: .a)
        #expect(R.wait(20) { R.replays(b) > refused }, "the forged packet sent again was not refused")
    }

    // MARK: Point 5

    @Test func aLostDatabaseReusesNoPacketCounterAndNoBundleID() throws {
        let a = try R.federation(["alpha"])[0]
        let tap = try FrameTap()
        defer { tap.stop() }
        var pa = try self.start(a, tap.pathA, log: a + "/run1.log")
        #expect(R.wait(30) { !tap.frames(from: .a).isEmpty })
        let first = try self.send(a, ["--everyone", "one"])
        R.stop(pa)
        let run1 = Set(tap.frames(from: .a).map { Self.counter($0.packet) })
        let seen = tap.frames(from: .a).count

        // The database is damaged: moved aside as the error message advises; the identity is kept.
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: a + "/courier.db" + suffix) {
            try FileManager.default.moveItem(atPath: a + "/courier.db" + suffix, toPath: a + "/courier.db.damaged" + suffix)
        }
        pa = try self.start(a, tap.pathA, log: a + "/run2.log")
        defer { R.stop(pa) }
        #expect(R.wait(30) { tap.frames(from: .a).count > seen })
        let second = try self.send(a, ["--everyone", "two"])
        R.stop(pa)
        let run2 = Set(tap.frames(from: .a).dropFirst(seen).map { Self.counter($0.packet) })
        #expect(!run2.isEmpty && run1.isDisjoint(with: run2), "packet counters used twice under one key: \(run1.intersection(run2).sorted())")
        let (s1, s2) = (try #require(BundleID(first)).sequence, try #require(BundleID(second)).sequence)
        #expect(s2 > s1, "bundle sequence after the lost database: \(s2), before: \(s1)")
        let log = R.text(a + "/run2.log")
        #expect(log.contains("notice relay: [relay] the database is behind counters.json"), "\(log)")
        // A start with its own database says nothing of the kind.
        #expect(!R.text(a + "/run1.log").contains("the database is behind"))
    }

    @Test func aDamagedIdentityOrNetworkFileIsRefused() throws {
        let a = try R.federation(["alpha"])[0]
        let id = try R.id(a)
        for (file, field, command) in [("identity.json", "signingSeed", "id"), ("network.json", "key", "invite")] {
            let path = a + "/" + file
            let original = try String(contentsOfFile: path, encoding: .utf8)
            var o = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
            var digits = Array(o[field] as! String)
            digits[7] = digits[7] == "0" ? "1" : "0"
            o[field] = String(digits)
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
            let (rc, out, err) = try R.run([command, "--data-dir", a])
            #expect(rc == 78 && out.isEmpty, "\(file) with one digit changed: exit \(rc), printed \(out)")
            #expect(err.split(separator: "\n").count == 1 && err.contains(file) && err.contains("checksum"), "\(err)")
            let (rcRun, _, errRun) = try R.runWithin(20, ["run", "--data-dir", a, "--link", "tcp:127.0.0.1:9"])
            #expect(rcRun == 78 && errRun.contains("checksum"), "relay run with a damaged \(file): exit \(rcRun.map(String.init) ?? "none"): \(errRun)")
            try original.write(toFile: path, atomically: true, encoding: .utf8)
        }
        #expect(try R.id(a) == id)

        // A scheduled key change (rekey.json): a damaged digit of the next key is refused, not switched to.
        let (rcNew, _, errNew) = try R.run(["rekey", "new", "--data-dir", a, "--in", "72"])
        #expect(rcNew == 0, "\(errNew)")
        let rekey = a + "/rekey.json"
        let planned = try String(contentsOfFile: rekey, encoding: .utf8)
        var r = try JSONSerialization.jsonObject(with: Data(planned.utf8)) as! [String: Any]
        #expect((r["check"] as? String)?.count == 8, "\(r)")
        var next = Array(r["next"] as! String)
        next[3] = next[3] == "0" ? "1" : "0"
        r["next"] = String(next)
        try JSONSerialization.data(withJSONObject: r).write(to: URL(fileURLWithPath: rekey))
        let (rcShow, _, errShow) = try R.run(["rekey", "show", "--data-dir", a])
        #expect(rcShow == 78 && errShow.split(separator: "\n").count == 1 && errShow.contains("checksum"), "\(rcShow): \(errShow)")
        try FileManager.default.removeItem(atPath: rekey)

        // The counter floor: a damaged digit is refused too (it must not silently lower a floor).
        _ = try self.send(a, ["--everyone", "makes counters.json"])
        let floor = a + "/counters.json"
        let good = try String(contentsOfFile: floor, encoding: .utf8)
        try good.replacingOccurrences(of: "\"bundleSequence\":256", with: "\"bundleSequence\":156").write(toFile: floor, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: floor, encoding: .utf8) != good)
        let (rcFloor, _, errFloor) = try R.run(["send", "--data-dir", a, "--everyone", "refused"])
        #expect(rcFloor == 78 && errFloor.split(separator: "\n").count == 1 && errFloor.contains("counters.json fails its checksum"), "\(rcFloor): \(errFloor)")
        try good.write(toFile: floor, atomically: true, encoding: .utf8)

        // Files from before the checksum: read as they are; `relay run` adds it.
        for file in ["identity.json", "network.json"] {
            let path = a + "/" + file
            var o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
            o["check"] = nil
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
        }
        #expect(try R.id(a) == id)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let pa = try self.start(a, cable.pathA, log: a + "/run.log")
        #expect(R.wait(30) { R.text(a + "/run.log").contains("relay running") })
        R.stop(pa)
        let log = R.text(a + "/run.log")
        #expect(R.count("notice relay: [relay] added a checksum to", in: log) == 2, "\(log)")
        for file in ["identity.json", "network.json"] {
            let o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a + "/" + file))) as! [String: Any]
            #expect((o["check"] as? String)?.count == 8, "\(file): \(o)")
        }
        #expect(try R.id(a) == id)
    }

    @Test func initRefusesADirectoryWhoseIdentityIsLostButWhoseDatabaseRemains() throws {
        let a = try R.federation(["alpha"])[0]
        let queued = try self.send(a, ["--everyone", "queued under the old identity"])
        for f in ["identity.json", "network.json"] { try FileManager.default.removeItem(atPath: a + "/" + f) }
        let (rc, out, err) = try R.run(["init", "--data-dir", a, "--name", "alpha"])
        #expect(rc == 73 && out.isEmpty, "init over a lost identity: exit \(rc)")
        #expect(err.split(separator: "\n").count == 1 && err.contains("--force-new-identity") && err.contains("backup"), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: a + "/identity.json"))
        #expect(try R.queuedIDs(a).contains(queued))

        let (rc2, _, err2) = try R.run(["init", "--data-dir", a, "--name", "alpha", "--force-new-identity"])
        #expect(rc2 == 0, "\(err2)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: a).filter { $0.hasPrefix("courier.db.before-new-identity-") }
        #expect(aside.count == 1, "moved aside: \(aside)")
        #expect(try R.queuedIDs(a).isEmpty)
    }
}
