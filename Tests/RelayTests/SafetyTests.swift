import CourierLinks
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Operator safety and acknowledgements backed by storage (issue 10, points 2, 11 and 12): a relay whose disk is
/// full acknowledges nothing it could not store; text from the network cannot drive the operator's terminal;
/// bundles delivered from an archive are receipted. Real `relay` processes, federations made with init / invite /
/// init --join, `VirtualCable` (two real ptys) between relays, a real tmpfs for the full disk.
@Suite(.serialized, .timeLimit(.minutes(20))) struct SafetyTests {
    func json(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send \(args): \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func queued(_ dir: String) throws -> [[String: Any]] { self.json(try R.run(["queue", "list", "--data-dir", dir, "--json"]).1) }

    /// No escape character, C1 control or other C0 control (but newlines) reaches the terminal.
    func safeForTerminal(_ s: String) -> Bool {
        !s.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) }
    }

    // MARK: Point 11

    @Test func humanOutputEscapesControlCharactersAndJSONKeepsThem() throws {
        // A member whose name clears the screen; a message that clears, recolours, rings, retitles and overwrites.
        // (`relay init --name` refuses such a name since session 16; a hostile member edits identity.json, whose
        // name no checksum covers, or runs a modified relay.)
        let evilName = "\u{1B}[2Jalpha\u{1B}[31m"
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        var identity = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a + "/identity.json"))) as? [String: Any])
        identity["name"] = evilName
        try JSONSerialization.data(withJSONObject: identity).write(to: URL(fileURLWithPath: a + "/identity.json"))
        let (idA, idB) = (try R.id(a), try R.id(b))
        let hostile = "Hello\u{1B}[2J\u{1B}[31mRED\u{07}\u{9B}0m done\rFAKE\nsecond line\u{1B}]0;owned\u{07}\u{7F}"
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        let mid = try self.send(a, ["--to", idB, "--unknown-ok", hostile])
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == mid } }, "never delivered")

        // JSON: exact.
        let m = try #require(try R.inbox(b).first { $0["id"] as? String == mid })
        #expect(m["text"] as? String == hostile && m["fromName"] as? String == evilName, "\(m)")
        let shownJSON = try #require(self.json(try R.run(["inbox", "show", "--data-dir", b, "--json", mid]).1).first)
        #expect(shownJSON["text"] as? String == hostile)
        // Human: escaped (\e, \t, \r, \xHH, \u{HHHH}; newlines kept in `inbox show` only).
        let label = #"\e[2Jalpha\e[31m ("# + idA + ")"
        let list = try R.run(["inbox", "--data-dir", b]).1
        #expect(self.safeForTerminal(list), "raw control characters in: \(list.debugDescription)")
        #expect(list.contains("from " + label) && list.contains(#"Hello\e[2J\e[31mRED\x07\u{009B}0m done\rFAKE… [whole: relay inbox show "#), "\(list)")
        let shown = try R.run(["inbox", "show", "--data-dir", b, mid]).1
        #expect(self.safeForTerminal(shown), "raw control characters in: \(shown.debugDescription)")
        #expect(shown.contains("from:     " + label), "\(shown)")
        #expect(shown.hasSuffix("\n\n" + #"Hello\e[2J\e[31mRED\x07\u{009B}0m done\rFAKE"# + "\n" + #"second line\e]0;owned\x07\x7F"# + "\n"), "\(shown)")
        // Names heard on the air: status, peers, the queue and the outbox.
        let status = try R.run(["status", "--data-dir", b]).1
        #expect(self.safeForTerminal(status) && status.contains(#"neighbour \#(idA) \e[2Jalpha\e[31m on"#), "\(status)")
        let peers = try R.run(["peers", "--data-dir", b]).1
        #expect(self.safeForTerminal(peers) && peers.contains(#"\e[2Jalpha\e[31m"#), "\(peers)")
        let note = try self.send(b, ["--to", idA, "Thanks."])
        let queue = try R.run(["queue", "list", "--data-dir", b]).1
        #expect(self.safeForTerminal(queue), "\(queue.debugDescription)")
        #expect(try R.wait(60) { try R.run(["outbox", "--data-dir", b]).1.contains(note) })
        let outbox = try R.run(["outbox", "--data-dir", b]).1
        #expect(self.safeForTerminal(outbox) && outbox.contains(label), "\(outbox)")
    }

    // MARK: Point 12

    @Test func bundlesDeliveredFromAnArchiveAreReceipted() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let (idA, idB) = (try R.id(a), try R.id(b))
        let real = try (0..<2).map { try self.send(a, ["--to", idB, "--unknown-ok", "By hand, number \($0)."]) }
        let stick = a + "/stick.cba"
        #expect(try R.run(["export", "--data-dir", a, stick]).0 == 0)
        // A full stick: the two messages and 7,300 older ones of the same origin (made here with alpha's keys, as
        // alpha would have queued them over weeks): more ids than one receipt can list within the bundle size limit.
        struct KeyFile: Decodable { let key: String }
        struct IdentityFile: Decodable { let signingSeed: String; let agreementSeed: String }
        let key = try NetworkKey(bytes: try #require([UInt8](hex: try JSONDecoder().decode(KeyFile.self, from: Data(contentsOf: URL(fileURLWithPath: a + "/network.json"))).key)))
        let f = try JSONDecoder().decode(IdentityFile.self, from: Data(contentsOf: URL(fileURLWithPath: a + "/identity.json")))
        let alpha = try NodeIdentity(signingSeed: try #require([UInt8](hex: f.signingSeed)), agreementSeed: try #require([UInt8](hex: f.agreementSeed)))
        let exported = try BundleArchive(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: stick))), networkKey: key)
        let compressor = BodyCompressor(dictionary: nil)
        var bundles = exported.bundles
        for i in 0..<7_300 {
            let bundle = try CourierBundle.make(kind: .text, destination: .node(try #require(ShortID(hex: idB))), content: Array("Ledger line \(i)".utf8),
                                                origin: alpha, created: exported.created - 600, sequence: UInt32(i), options: BundleOptions(kind: .text), compressor: compressor)
            bundles.append(bundle.encode())
        }
        try Data(BundleArchive(created: exported.created, writer: exported.writer, bundles: bundles).encoded(networkKey: key)).write(to: URL(fileURLWithPath: stick))

        let (rc, out, err) = try R.run(["import", "--data-dir", b, "--json", stick])
        #expect(rc == 0, "import: \(err)")
        // The 7,300 unsigned ones are delivered (their origin not proven); alpha's two real ones are signed, and
        // bravo has never heard alpha's keys: kept for them (SPEC 6.12), read and receipted when the relays meet.
        #expect(self.json(out).first?["delivered"] as? Int == 7_300, "\(out)")
        #expect(self.json(out).first?["waiting-for-keys"] as? Int == 2, "\(out)")
        // Receipts for alpha wait in bravo's queue: every id, in receipts within the size limit.
        let receipts = try self.queued(b).filter { $0["kind"] as? String == "receipt" && $0["to"] as? String == "node:\(idA)" }
        #expect(receipts.count == 15, "\(receipts.count) receipts for alpha queued; \(err)")

        // The relays meet: alpha's outbox shows both delivered.
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        var outbox: [[String: Any]] = []
        let delivered = try R.wait(120) {
            outbox = self.json(try R.run(["outbox", "--data-dir", a, "--json"]).1)
            return real.allSatisfy { id in outbox.contains { $0["id"] as? String == id && $0["state"] as? String == "delivered" } }
        }
        #expect(delivered, "\(outbox)")
    }

    // MARK: Point 2

    /// Mounts a small tmpfs (needs root, as in CI; a container may refuse): its path, or nil.
    static func mountTmpfs(size: String) -> String? {
        guard getuid() == 0 else { return nil }
        let dir = R.tempDir()
        return self.system(["/bin/mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir]) == 0 ? dir : nil
    }

    static let canMount: Bool = {
        guard let dir = mountTmpfs(size: "64k") else { return false }
        _ = system(["/bin/umount", dir])
        return true
    }()

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

    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): full-disk relay test skipped"))
    func aRelayWithAFullDiskAcknowledgesNothingItCouldNotStore() throws {
        let disk = try #require(Self.mountTmpfs(size: "8m"), "could not mount a tmpfs")
        defer { Self.system(["/bin/umount", "-l", disk]) }
        let a = R.tempDir() + "/alpha"
        let b = disk + "/bravo"
        #expect(try R.run(["init", "--data-dir", a, "--name", "alpha"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", b, "--name", "bravo", "--join", code]).0 == 0)
        let (idA, idB) = (try R.id(a), try R.id(b))
        let cable = try VirtualCable()
        defer { cable.stop() }
        let logB = R.tempDir() + "/bravo.log"
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: logB)
        defer { R.stop(ra); R.stop(rb) }
        #expect(try R.wait(60) { try R.run(["status", "--data-dir", a]).1.contains("neighbour \(idB) bravo") }, "alpha never heard bravo")
        // Bravo's disk fills up.
        Self.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"])
        // Ten messages for bravo, five in one record and five in two fragments: none stored, none acknowledged.
        let ids = try (0..<10).map { i in
            let filler = i % 2 == 0 ? "short" : (0..<300).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            return try self.send(a, ["--to", idB, "--unknown-ok", "Message \(i): \(filler)"])
        }
        let refused = R.wait(90) { ids.allSatisfy { R.text(logB).contains("cannot deliver \($0), not acknowledged") } }
        #expect(refused, "bravo's log: \(R.text(logB).suffix(3_000))")
        #expect(try R.inbox(b).isEmpty)
        let held = try R.queuedIDs(a)
        #expect(ids.allSatisfy { held.contains($0) }, "alpha dropped messages bravo never stored: holds \(held)")
        let outbox = self.json(try R.run(["outbox", "--data-dir", a, "--json"]).1)
        #expect(!outbox.contains { ids.contains($0["id"] as? String ?? "") && ["delivered", "custody-passed"].contains($0["state"] as? String ?? "") }, "\(outbox)")

        // Space is freed: all ten arrive.
        #expect(unlink(disk + "/filler") == 0)
        var inbox: [[String: Any]] = []
        let arrived = try R.wait(180) {
            inbox = try R.inbox(b)
            return ids.allSatisfy { id in inbox.contains { $0["id"] as? String == id } }
        }
        #expect(arrived, "\(inbox.count) of 10 arrived; alpha: \(R.text(a + "/run.log").suffix(2_000))")
        _ = idA
    }
}
