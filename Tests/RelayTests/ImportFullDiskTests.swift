import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `relay import` onto a full disk (issue 10: nothing lost in silence): it stops with exit 74 (a database error,
/// not "bad data") and one line saying what to do; the same import after space is freed brings everything, and
/// the exporting relay kept its copies all along. A real tmpfs, real relay processes.
@Suite(.serialized, .timeLimit(.minutes(20))) struct ImportFullDiskTests {
    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): full-disk import test skipped"))
    func anImportOntoAFullDiskSaysSoAndTheSameImportLaterBringsEverything() throws {
        let disk = try #require(SafetyTests.mountTmpfs(size: "8m"), "could not mount a tmpfs")
        defer { SafetyTests.system(["/bin/umount", "-l", disk]) }
        let a = R.tempDir() + "/alpha"
        let b = disk + "/bravo"
        #expect(try R.run(["init", "--data-dir", a, "--name", "alpha"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", b, "--name", "bravo", "--join", code]).0 == 0)
        let idB = try R.id(b)
        // Bravo's operator trusts alpha by its identity code, as users do when no radio carries the keys
        // (otherwise the signed messages wait for alpha's keys, SPEC 6.12).
        let peersA = try JSONSerialization.jsonObject(with: Data(try R.run(["peers", "--data-dir", a, "--json"]).1.utf8)) as? [String: Any]
        let codeA = try #require(peersA?["identityCode"] as? String)
        #expect(try R.run(["peers", "add", "--data-dir", b, codeA, "--name", "alpha"]).0 == 0)
        // Forty messages of ~3 KB each (random text: zstd cannot shrink it) for bravo, carried on a stick.
        let ids = try (0..<40).map { i in
            let text = "Minutes \(i): " + (0..<1_500).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let (rc, out, err) = try R.run(["send", "--data-dir", a, "--to", idB, "--unknown-ok", "--no-encrypt", "--kind", "minutes", text])
            #expect(rc == 0, "\(err)")
            return out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let stick = R.tempDir() + "/to-bravo.cba"
        #expect(try R.run(["export", "--data-dir", a, stick]).0 == 0)

        // Bravo's disk fills up, leaving room for less than the archive holds.
        SafetyTests.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"])
        SafetyTests.system(["/bin/rm", "-f", disk + "/filler"])
        SafetyTests.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=4k", "count=\(Self.freeBlocks(disk) - 24)"])
        let (rc, out, err) = try R.run(["import", "--data-dir", b, stick])
        #expect(rc == 74, "exit \(rc): \(out) \(err)")
        let lines = err.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1 && lines[0].contains("run the same import again"), "\(err)")
        #expect(try R.queuedIDs(a).isSuperset(of: ids), "the exporting relay must keep its copies")

        // Space freed: the same file brings every message, none twice.
        #expect(unlink(disk + "/filler") == 0)
        let (rc2, out2, err2) = try R.run(["import", "--data-dir", b, stick])
        #expect(rc2 == 0, "\(out2) \(err2)")
        let inbox = Set(try R.inbox(b).compactMap { $0["id"] as? String })
        #expect(inbox == Set(ids), "\(inbox.count) of \(ids.count) in bravo's inbox")
    }

    /// Free 4 KiB blocks on the file system of `path`.
    static func freeBlocks(_ path: String) -> Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return Int(s.f_bavail) * Int(s.f_frsize) / 4_096
    }
}
