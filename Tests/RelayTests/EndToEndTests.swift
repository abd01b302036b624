import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end encryption between members that never exchanged keys by hand, and nothing given up in silence: real
/// `relay` processes on real ptys (`VirtualCable`), federations made with `init`, `invite` and `init --join` only.
@Suite(.serialized, .timeLimit(.minutes(20))) struct EndToEndTests {
    func identityCode(_ dir: String) throws -> String {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try #require(o["identityCode"] as? String)
    }

    /// Node ids whose keys a relay knows (heard, learnt through the federation, or on its trust list).
    func knownNodes(_ dir: String) throws -> Set<String> {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        guard let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else { return [] }
        return Set(((o["peers"] as? [[String: Any]]) ?? []).compactMap { $0["node"] as? String })
    }

    func status(_ dir: String) throws -> [String: Any] {
        let out = try R.run(["status", "--data-dir", dir, "--json"]).1
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    func feed(_ dir: String) throws -> [[String: Any]] {
        let out = try R.run(["queue", "tail", "--data-dir", dir, "--json", "--since", "0", "--no-follow"]).1
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Starts relays in a line, each joined to the next by a virtual cable at 115200 baud.
    func startLine(_ dirs: [String]) throws -> (processes: [Process], cables: [VirtualCable]) {
        let cables = try (0..<(dirs.count - 1)).map { _ in try VirtualCable() }
        var processes: [Process] = []
        for (i, d) in dirs.enumerated() {
            var args = ["run", "--data-dir", d]
            if i > 0 { args += ["--link", "serial:\(cables[i - 1].pathB):115200"] }
            if i < dirs.count - 1 { args += ["--link", "serial:\(cables[i].pathA):115200"] }
            processes.append(try R.start(args, log: d + "/run.log"))
        }
        return (processes, cables)
    }

    func stop(_ line: (processes: [Process], cables: [VirtualCable])) {
        for p in line.processes { R.stop(p) }
        for c in line.cables { c.stop() }
    }

    @Test(arguments: [3, 5]) func grievancesAreEndToEndEncryptedAlongALine(relays: Int) throws {
        let dirs = try R.federation((0..<relays).map { "r\($0)" })
        let ids = try dirs.map(R.id)
        let first = dirs[0], last = dirs[relays - 1]
        let line = try self.startLine(dirs)
        defer { self.stop(line) }
        // Nobody exchanged keys by hand: each end learns the other's keys through the federation.
        let learnt = try R.wait(150) {
            try self.knownNodes(first).contains(ids[relays - 1]) && self.knownNodes(last).contains(ids[0])
        }
        let (k0, k1) = (try self.knownNodes(first), try self.knownNodes(last))
        #expect(learnt, "the ends never learnt each other's keys: \(k0) / \(k1)")
        let texts = ["The pump at the upper well has been broken for nine days.", "The clinic's generator needs diesel."]
        var sent: [String: String] = [:]
        for t in texts {
            let (rc, out, err) = try R.run(["send", "--data-dir", first, "--to", ids[relays - 1], "--kind", "grievance", t])
            #expect(rc == 0 && err.isEmpty, "send: \(err)")
            sent[out.trimmingCharacters(in: .whitespacesAndNewlines)] = t
        }
        // And one back the other way.
        let (rc, back, err) = try R.run(["send", "--data-dir", last, "--to", ids[0], "--kind", "grievance", "Received; the committee meets Friday."])
        #expect(rc == 0 && err.isEmpty, "send back: \(err)")
        let arrived = try R.wait(150) {
            let there = Set(try R.inbox(last).compactMap { $0["id"] as? String })
            let here = Set(try R.inbox(first).compactMap { $0["id"] as? String })
            return Set(sent.keys).isSubset(of: there) && here.contains(back.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let lastFeed = try self.feed(last).compactMap { $0["type"] as? String }
        #expect(arrived, "not every grievance arrived; far end's feed: \(lastFeed)")
        for m in try R.inbox(last) where sent[m["id"] as? String ?? ""] != nil {
            #expect(m["text"] as? String == sent[m["id"] as! String], "readable at the far end")
            #expect(m["encrypted"] as? Bool == true, "end-to-end encrypted")
        }
        #expect(try R.inbox(first).contains { $0["encrypted"] as? Bool == true && ($0["text"] as? String)?.contains("Friday") == true })
        // The relays in between carried them and cannot read them.
        for d in dirs[1..<(relays - 1)] {
            let inbox = try R.inbox(d)
            #expect(!inbox.contains { sent[$0["id"] as? String ?? ""] != nil }, "a middle relay has the grievance in its inbox")
        }
        // Nothing was given up on anywhere.
        for d in dirs {
            let s = try self.status(d)
            #expect((s["waiting"] as? [Any])?.isEmpty == true)
            #expect((s["gaveUp"] as? [String: Int])?.values.allSatisfy { $0 == 0 } == true, "\(d): \(s["gaveUp"] ?? "-")")
        }
    }

    @Test func aBundleThatCannotBeReadIsKeptReportedAndReadWhenTheKeysArrive() throws {
        let dirs = try R.federation(["origin", "middle", "far"])
        let (origin, far) = (dirs[0], dirs[2])
        let farID = try R.id(far)
        // The origin knows the far relay's keys (added by hand); the far relay does not know the origin's. The
        // grievance goes by hand (an export carried to the far relay).
        #expect(try R.run(["peers", "add", "--data-dir", origin, try self.identityCode(far)]).0 == 0)
        let (rc, out, err) = try R.run(["send", "--data-dir", origin, "--to", farID, "--kind", "grievance", "Sealed: the storeroom key is with the imam."])
        #expect(rc == 0 && err.isEmpty, "send: \(err)")
        let gid = out.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = origin + "/carried.courier"
        #expect(try R.run(["export", "--data-dir", origin, file]).0 == 0)
        let (irc, iout, ierr) = try R.run(["import", "--data-dir", far, file])
        #expect(irc == 0, "import: \(ierr)")
        #expect(iout.contains("1 waiting for their origin's keys"), "\(iout)")
        // Kept, unread, and said so: the feed, the status (and its JSON), no inbox entry.
        #expect(try R.inbox(far).isEmpty)
        let waiting = try self.feed(far).first { $0["type"] as? String == "waiting" }
        #expect(waiting?["bundle"] as? String == gid && (waiting?["detail"] as? String)?.contains("keys") == true)
        let s = try self.status(far)
        #expect((s["waiting"] as? [[String: Any]])?.first?["id"] as? String == gid)
        #expect(try R.run(["status", "--data-dir", far]).1.contains("waiting for their origin's keys"))
        // The relays run: the far relay gets the origin's keys through the federation and reads it.
        let line = try self.startLine(dirs)
        defer { self.stop(line) }
        let read = try R.wait(120) { try R.inbox(far).contains { $0["id"] as? String == gid } }
        let farFeed = try self.feed(far).map { "\($0["type"] ?? "") \($0["detail"] ?? "")" }
        #expect(read, "never read; far relay's feed: \(farFeed)")
        let m = try #require(try R.inbox(far).first { $0["id"] as? String == gid })
        #expect(m["text"] as? String == "Sealed: the storeroom key is with the imam." && m["encrypted"] as? Bool == true)
        #expect((try self.status(far)["waiting"] as? [Any])?.isEmpty == true)
        #expect(try R.inbox(dirs[1]).isEmpty, "the middle relay cannot read it")
    }

    @Test func aTrustEditAppliesToARunningRelayAndARefusalIsReportedToTheOrigin() throws {
        let dirs = try R.federation(["hill", "valley"])
        let (hill, valley) = (dirs[0], dirs[1])
        let valleyID = try R.id(valley)
        let hillCode = try self.identityCode(hill)
        let line = try self.startLine(dirs)
        defer { self.stop(line) }
        #expect(try R.wait(60) { try self.knownNodes(hill).contains(valleyID) })
        // relay.conf edited while the valley relay runs, then SIGHUP: only its (empty) trust list is accepted now.
        let conf = valley + "/relay.conf"
        try (try String(contentsOfFile: conf, encoding: .utf8) + "trust = peers\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(line.processes[1].processIdentifier, SIGHUP)
        #expect(try R.wait(60) { (try String(contentsOfFile: valley + "/run.log", encoding: .utf8)).contains("trust=peers") })
        let refused = try R.run(["send", "--data-dir", hill, "--to", valleyID, "--kind", "text", "Is the bridge open?"]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Refused, and said so: the valley's feed, status and log, and a failure notice back to the hill.
        let reported = try R.wait(60) {
            try self.feed(valley).contains { $0["type"] as? String == "refused" && $0["bundle"] as? String == refused }
                && self.feed(hill).contains { $0["type"] as? String == "failed" && $0["bundle"] as? String == refused }
        }
        let hillFeed = try self.feed(hill).map { "\($0["type"] ?? "") \($0["bundle"] ?? "")" }
        #expect(reported, "hill feed: \(hillFeed)")
        #expect(!(try R.inbox(valley).contains { $0["id"] as? String == refused }))
        #expect((try self.status(valley)["gaveUp"] as? [String: Int])?["refused"] ?? 0 >= 1)
        #expect(try String(contentsOfFile: valley + "/run.log", encoding: .utf8).contains("warning"))
        #expect(try R.inbox(hill).contains { ($0["text"] as? String)?.contains("NOT delivered: \(refused) (refused)") == true })
        // The hill goes on the valley's trust list, again without a restart: its next message is accepted.
        #expect(try R.run(["peers", "add", "--data-dir", valley, hillCode]).0 == 0)
        // (The running relay looks at the trust list once a second.)
        #expect(try R.wait(60) { (try String(contentsOfFile: valley + "/run.log", encoding: .utf8)).contains("trust list changed") })
        let accepted = try R.run(["send", "--data-dir", hill, "--to", valleyID, "--kind", "text", "Is the ford passable?"]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.inbox(valley).contains { $0["id"] as? String == accepted && $0["encrypted"] as? Bool == true } })
    }

    @Test func aTrustListEditTeachesKeysToARunningRelay() throws {
        // Two relays that never meet: the grievance goes by hand, the keys by `relay peers add` while running.
        let dirs = try R.federation(["origin", "far"])
        let (origin, far) = (dirs[0], dirs[1])
        #expect(try R.run(["peers", "add", "--data-dir", origin, try self.identityCode(far)]).0 == 0)
        let gid = try R.run(["send", "--data-dir", origin, "--to", try R.id(far), "--kind", "grievance", "Sealed, by hand."]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let file = origin + "/carried.courier"
        #expect(try R.run(["export", "--data-dir", origin, file]).0 == 0)
        #expect(try R.run(["import", "--data-dir", far, file]).0 == 0)
        let p = try R.start(["run", "--data-dir", far, "--link", "tcp-listen:127.0.0.1:0"], log: far + "/run.log")
        defer { R.stop(p) }
        #expect(try R.wait(60) { (try self.status(far)["running"] as? Bool) == true })
        #expect(try R.inbox(far).isEmpty)
        #expect(try R.run(["peers", "add", "--data-dir", far, try self.identityCode(origin)]).0 == 0)
        #expect(try R.wait(60) { try R.inbox(far).contains { $0["id"] as? String == gid && $0["text"] as? String == "Sealed, by hand." } })
    }
}
