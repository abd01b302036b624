import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Storage that fails mid-transfer (issue 11 point 4): a relay whose disk fills while a message is arriving says so
/// in its log, `relay status` and the change feed, pauses transmission, loses nothing it accepted, and resumes by
/// itself when space returns. Real `relay` processes, a federation made with init / invite / init --join, a
/// `VirtualCable` (two real ptys), a real tmpfs filled with a real file.
@Suite(.serialized, .timeLimit(.minutes(20))) struct StorageFailureTests {
    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send \(args): \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func inboxIDs(_ dir: String) throws -> Set<String> { Set(try R.inbox(dir).compactMap { $0["id"] as? String }) }

    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): full-disk relay test skipped"))
    func aDiskThatFillsMidTransferPausesTheRelayAndItResumesWhenSpaceReturns() throws {
        let disk = try #require(SafetyTests.mountTmpfs(size: "8m"), "could not mount a tmpfs")
        defer { SafetyTests.system(["/bin/umount", "-l", disk]) }
        let a = R.tempDir() + "/alpha"
        let b = disk + "/bravo"
        #expect(try R.run(["init", "--data-dir", a, "--name", "alpha"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", b, "--name", "bravo", "--join", code]).0 == 0)
        let idB = try R.id(b)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let logB = R.tempDir() + "/bravo.log"
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: logB)
        defer { R.stop(ra); R.stop(rb) }
        #expect(try R.wait(60) { try R.run(["status", "--data-dir", a]).1.contains("neighbour \(idB) bravo") }, "alpha never heard bravo")

        // A first message arrives while the disk has room: accepted, it must survive what follows.
        let first = try self.send(a, ["--to", idB, "--unknown-ok", "before the disk filled"])
        #expect(try R.wait(60) { try self.inboxIDs(b).contains(first) }, "the first message never arrived")

        // Bravo's disk fills, all but 64 KB: a message of about 8 KB (many fragments, each stored with its packet's
        // replay window) uses the rest while it arrives.
        SafetyTests.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"])
        #expect(SafetyTests.system(["/usr/bin/truncate", "-s", "-64K", disk + "/filler"]) == 0)
        let big = (0..<4_000).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let second = try self.send(a, ["--to", idB, "--unknown-ok", "arriving when the disk filled: \(big)"])

        // Bravo says so: log, `relay status` (text and JSON).
        let paused = "storage failed: disk full; queued messages are safe; transmission paused"
        var status = (Int32(0), "", "")
        let shown = try R.wait(90) {
            status = try R.run(["status", "--data-dir", b])
            return status.1.contains(paused)
        }
        let files = try R.exec("/bin/ls", ["-la", b, disk]).1
        #expect(shown, "bravo's status: \(status)\nfiles: \(files)\nbravo's log: \(R.text(logB).suffix(3_000))")
        #expect(R.text(logB).contains(paused), "bravo's log: \(R.text(logB).suffix(3_000))")
        let json = try R.run(["status", "--data-dir", b, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect((o["storage"] as? [String: Any])?["message"] as? String == paused, "\(json)")

        // Nothing accepted is lost: the first message is still in bravo's inbox, the second still queued at alpha.
        #expect(try self.inboxIDs(b).contains(first))
        #expect(!(try self.inboxIDs(b).contains(second)), "the second message cannot have been stored")
        #expect(try R.queuedIDs(a).contains(second), "alpha dropped a message bravo never stored")

        // Space returns: bravo resumes by itself and the message arrives.
        #expect(unlink(disk + "/filler") == 0)
        let arrived = try R.wait(180) { try self.inboxIDs(b).contains(second) }
        #expect(arrived, "bravo: \(R.text(logB).suffix(3_000))\nalpha: \(R.text(a + "/run.log").suffix(2_000))")
        #expect(try R.wait(30) { !(try R.run(["status", "--data-dir", b]).1.contains("storage failed")) }, "status still says storage failed")
        #expect(R.text(logB).contains("storage works again"), "bravo's log: \(R.text(logB).suffix(3_000))")
        let feed = try R.run(["queue", "tail", "--data-dir", b, "--no-follow", "--since", "0"]).1
        #expect(feed.contains("storage") && feed.contains("storage works again after"), "bravo's feed: \(feed.suffix(3_000))")
        #expect(try self.inboxIDs(b).contains(first))
    }
}
