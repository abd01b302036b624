import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built `relay` executable, end to end: real processes, real ptys, real SQLite files.
@Suite(.serialized, .timeLimit(.minutes(20))) struct RelayTests {
    func initFederation(_ names: [String]) throws -> [String] {
        let root = R.tempDir()
        var dirs: [String] = []
        var code: String? = nil
        for n in names {
            let dir = root + "/" + n
            var args = ["init", "--data-dir", dir, "--name", n]
            if let code { args += ["--join", code] }
            let (rc, out, err) = try R.run(args)
            #expect(rc == 0, "init \(n): \(err)")
            #expect(out.contains("node id:"))
            if code == nil { code = try R.run(["invite", "--data-dir", dir]).1.trimmingCharacters(in: .whitespacesAndNewlines) }
            dirs.append(dir)
        }
        return dirs
    }

    @Test func twoRelaysOverALinkedPTYPair() throws {
        let dirs = try self.initFederation(["village", "committee"])
        let bridge = try VirtualCable()
        defer { bridge.stop() }
        let idB = try R.run(["id", "--data-dir", dirs[1]]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let idA = try R.run(["id", "--data-dir", dirs[0]]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        // Queued before the relays run: delivered when they meet.
        let (rc1, alertID, _) = try R.run(["send", "--data-dir", dirs[0], "--everyone", "--kind", "alert", "Flood warning: the river is rising. Move to high ground."])
        #expect(rc1 == 0)
        let a = try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(bridge.pathA):115200"], log: dirs[0] + "/run.log")
        let b = try R.start(["run", "--data-dir", dirs[1], "--link", "serial:\(bridge.pathB):115200"], log: dirs[1] + "/run.log")
        defer { R.stop(a); R.stop(b) }
        // A grievance sent while both run, through the database of the running relay.
        let (rc2, grievanceID, _) = try R.run(["send", "--data-dir", dirs[0], "--to", idB, "--unknown-ok", "--kind", "grievance", "The pump at the upper well has been broken for nine days."])
        #expect(rc2 == 0)
        let got = try R.wait(120) {
            let ids = Set(try R.inbox(dirs[1]).compactMap { $0["id"] as? String })
            return ids.contains(alertID.trimmingCharacters(in: .whitespacesAndNewlines)) && ids.contains(grievanceID.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(got, "the committee's inbox lacks the alert or the grievance")
        let inbox = try R.inbox(dirs[1])
        #expect(inbox.contains { $0["kind"] as? String == "grievance" && $0["from"] as? String == idA && ($0["text"] as? String)?.contains("upper well") == true && $0["received"] != nil })
        #expect(Set(inbox.compactMap { $0["id"] as? String }).count == inbox.count, "a duplicate in the inbox")
        // A second send while running, the other way.
        let (rc3, textID, _) = try R.run(["send", "--data-dir", dirs[1], "--to", idA, "--kind", "text", "Received, the committee meets Friday."])
        #expect(rc3 == 0)
        #expect(try R.wait(120) { try R.inbox(dirs[0]).contains { $0["id"] as? String == textID.trimmingCharacters(in: .whitespacesAndNewlines) } })
        // The change feed in order, as JSON lines.
        let (rc4, tail, _) = try R.run(["queue", "tail", "--data-dir", dirs[0], "--json", "--since", "0", "--no-follow"])
        #expect(rc4 == 0)
        let events = tail.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let seqs = events.compactMap { $0["seq"] as? Int }
        #expect(!seqs.isEmpty && seqs == seqs.sorted())
        let types = events.compactMap { $0["type"] as? String }
        #expect(types.first == "enqueued")
        #expect(types.contains("fragment-sent") && types.contains("custody-released") && types.contains("delivered"))
        // The status file is refreshed about once a second: wait for it to name the neighbour.
        var status = ""
        let seen = try R.wait(60) {
            status = try R.run(["status", "--data-dir", dirs[0]]).1
            return status.contains("running") && status.contains("neighbour \(idB)")
        }
        #expect(seen, "relay status never showed the neighbour: \(status)")
    }

    @Test func mistakesGiveOneClearLineAndAnExitCode() throws {
        let dirs = try self.initFederation(["solo"])
        let (rc, out, err) = try R.run(["run", "--data-dir", dirs[0], "--link", "bogus:/dev/x"])
        #expect(rc == 64)
        #expect(out.isEmpty)
        #expect(err.split(separator: "\n").count == 1 && err.contains("bad link 'bogus:/dev/x'"))
        let (rc2, _, err2) = try R.run(["send", "--data-dir", dirs[0], "--kind", "shout", "--everyone", "x"])
        #expect(rc2 == 64 && err2.contains("unknown kind 'shout'"))
        let (rc3, _, err3) = try R.run(["inbox", "--data-dir", dirs[0] + "-missing"])
        #expect(rc3 == 66 && err3.contains("relay init"))
        let (rc4, _, err4) = try R.run(["init", "--data-dir", dirs[0]])
        #expect(rc4 == 73 && err4.contains("already holds"))
        let (rc5, _, err5) = try R.run(["init", "--data-dir", dirs[0] + "-2", "--join", "courier1-notacode"])
        #expect(rc5 == 64 && err5.contains("join code"))
        // A damaged relay.conf names the line; impossible radio settings name the setting.
        let conf = dirs[0] + "/relay.conf"
        let original = try String(contentsOfFile: conf, encoding: .utf8)
        try (original + "duty-cycle = ten\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc7, _, err7) = try R.run(["run", "--data-dir", dirs[0], "--link", "tcp-listen:127.0.0.1:0"])
        #expect(rc7 == 78 && err7.contains("relay.conf line") && err7.contains("duty-cycle = ten"))
        try original.write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc8, _, err8) = try R.run(["run", "--data-dir", dirs[0], "--link", "rnode:/dev/null", "--spreading-factor", "13"])
        #expect(rc8 == 64 && err8.contains("spreading factor 13"))
        // The queue is intact after all that.
        let (rc6, id, _) = try R.run(["send", "--data-dir", dirs[0], "--everyone", "--kind", "text", "still here"])
        #expect(rc6 == 0 && !id.isEmpty)
        #expect(try R.run(["queue", "--data-dir", dirs[0], "--json"]).1.contains("\"count\":1"))
    }
}

/// Three relays in a chain over pty-linked framed serial links (village - middle - committee).
@Suite(.serialized, .timeLimit(.minutes(20))) struct ThreeRelayTests {
    @Test func alertToAllDirectMessageEndToEndAndAKilledRelayResumes() throws {
        let root = R.tempDir()
        var dirs: [String] = []
        var code: String? = nil
        for n in ["village", "middle", "committee"] {
            var args = ["init", "--data-dir", root + "/" + n, "--name", n]
            if let code { args += ["--join", code] }
            #expect(try R.run(args).0 == 0)
            if code == nil { code = try R.run(["invite", "--data-dir", root + "/" + n]).1.trimmingCharacters(in: .whitespacesAndNewlines) }
            dirs.append(root + "/" + n)
        }
        let ab = try VirtualCable()
        let bc = try VirtualCable()
        defer { ab.stop(); bc.stop() }
        // 9600 baud: the engine paces packets at the line's speed, so a multi-fragment transfer takes seconds.
        func startMiddle() throws -> Process {
            try R.start(["run", "--data-dir", dirs[1], "--link", "serial:\(ab.pathB):9600", "--link", "serial:\(bc.pathA):9600"], log: dirs[1] + "/run.log")
        }
        let a = try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(ab.pathA):9600"], log: dirs[0] + "/run.log")
        var b = try startMiddle()
        let c = try R.start(["run", "--data-dir", dirs[2], "--link", "serial:\(bc.pathB):9600"], log: dirs[2] + "/run.log")
        defer { R.stop(a); R.stop(b); R.stop(c) }
        let idC = try R.run(["id", "--data-dir", dirs[2]]).1.trimmingCharacters(in: .whitespacesAndNewlines)

        let alert = try R.run(["send", "--data-dir", dirs[0], "--everyone", "--kind", "alert", "Checkpoint on the valley road since dawn."]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let alertEverywhere = try R.wait(120) { try R.inbox(dirs[1]).contains { $0["id"] as? String == alert } && R.inbox(dirs[2]).contains { $0["id"] as? String == alert } }
        #expect(alertEverywhere, "the alert reached every relay")

        // A multi-fragment transfer: minutes that compress to about 6 KB (about 30 packets).
        var g = SystemRandomNumberGenerator()
        let words = ["water", "rota", "east", "quarter", "pump", "committee", "assembly", "vote", "bread", "clinic", "road", "diesel"]
        let minutes = (0..<3_000).map { _ in words[Int(g.next() % UInt64(words.count))] + String(g.next() % 100) }.joined(separator: " ")
        let path = root + "/minutes.txt"
        try minutes.write(toFile: path, atomically: true, encoding: .utf8)
        let mid = try R.run(["send", "--data-dir", dirs[0], "--to", idC, "--unknown-ok", "--kind", "minutes", "--file", path]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        // Kill the middle relay with SIGKILL once part of the transfer went out.
        let started = try R.wait(120) {
            try R.run(["queue", "tail", "--data-dir", dirs[0], "--json", "--since", "0", "--no-follow"]).1
                .split(separator: "\n").filter { $0.contains(mid) && $0.contains("fragment-sent") }.count >= 3
        }
        #expect(started, "the transfer started")
        kill(b.processIdentifier, SIGKILL)
        b.waitUntilExit()
        let early = try R.inbox(dirs[2]).contains { $0["id"] as? String == mid }
        #expect(!early, "delivered before the kill: the test needs a slower link")
        b = try startMiddle()
        let arrived = try R.wait(300) { try R.inbox(dirs[2]).contains { $0["id"] as? String == mid } }
        #expect(arrived, "the minutes reached the committee after the restart")
        let inbox = try R.inbox(dirs[2])
        let intact = inbox.first { $0["id"] as? String == mid }?["text"] as? String == minutes
        #expect(intact, "the minutes arrived intact")
        #expect(Set(inbox.compactMap { $0["id"] as? String }).count == inbox.count, "no duplicates")
    }
}

/// The trust list and sneakernet, through the built executable.
@Suite(.serialized, .timeLimit(.minutes(20))) struct PeersAndSneakernetTests {
    @Test func trustListAndAUSBStickBetweenTwoRelays() throws {
        let root = R.tempDir()
        let (a, b, stranger) = (root + "/valley", root + "/committee", root + "/stranger")
        #expect(try R.run(["init", "--data-dir", a, "--name", "valley"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", b, "--name", "committee", "--join", code]).0 == 0)
        #expect(try R.run(["init", "--data-dir", stranger]).0 == 0)
        func json(_ s: String) -> [String: Any] { (try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any]) ?? [:] }

        // Peers: each side's identity code, added on the other side; an unknown id is explained.
        let idA = json(try R.run(["peers", "--data-dir", a, "--json"]).1)
        let idB = json(try R.run(["peers", "--data-dir", b, "--json"]).1)
        let codeA = try #require(idA["identityCode"] as? String)
        #expect(codeA.hasPrefix("courier-id1-"))
        let (rc, out, _) = try R.run(["peers", "add", "--data-dir", b, "--name", "valley relay", codeA])
        #expect(rc == 0 && out.contains("trusted \(idA["node"] as? String ?? "?")"))
        let listed = json(try R.run(["peers", "--data-dir", b, "--json"]).1)["peers"] as? [[String: Any]] ?? []
        #expect(listed.count == 1 && listed[0]["trusted"] as? Bool == true && listed[0]["name"] as? String == "valley relay")
        let (rc2, _, err2) = try R.run(["peers", "add", "--data-dir", b, "0badc0de"])
        #expect(rc2 == 64 && err2.contains("has not heard 0badc0de") && err2.split(separator: "\n").count == 1)
        let typo = String(codeA.dropLast(3)) + "aaa"
        let (rc3, _, err3) = try R.run(["peers", "add", "--data-dir", b, typo])
        #expect(rc3 == 64 && err3.contains("does not check out"))

        // Sneakernet: the valley writes what it holds to a stick; the committee reads it twice; a stranger cannot.
        let nodeB = try #require(idB["node"] as? String)
        let g = try R.run(["send", "--data-dir", a, "--to", nodeB, "--unknown-ok", "--kind", "grievance", "The pump at the upper well has been broken for nine days."]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let al = try R.run(["send", "--data-dir", a, "--everyone", "--kind", "alert", "Checkpoint on the valley road since dawn."]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let stick = root + "/stick.cba"
        let (rc4, out4, _) = try R.run(["export", "--data-dir", a, stick])
        #expect(rc4 == 0 && out4.contains("wrote 2 bundles"))
        let first = json(try R.run(["import", "--data-dir", b, "--json", stick]).1)
        #expect(first["delivered"] as? Int == 2 && first["bundles"] as? Int == 2)
        let ids = Set(try R.inbox(b).compactMap { $0["id"] as? String })
        #expect(ids == [g, al])
        let again = json(try R.run(["import", "--data-dir", b, "--json", stick]).1)
        #expect(again["already-here"] as? Int == 2 && again["delivered"] == nil)
        #expect(try R.inbox(b).count == 2, "no duplicate in the inbox")
        // The committee's receipt for the grievance waits in its queue for the valley.
        #expect(try R.run(["queue", "--data-dir", b, "--json"]).1.contains("node:\(idA["node"] as? String ?? "?")"))
        let (rc5, _, err5) = try R.run(["import", "--data-dir", stranger, stick])
        #expect(rc5 == 65 && err5.contains("another federation") && err5.contains("nothing was imported"))
        #expect(try R.inbox(stranger).isEmpty)
        // Only the grievance, by destination.
        let (rc6, out6, _) = try R.run(["export", "--data-dir", a, "--to", nodeB, root + "/only.cba"])
        #expect(rc6 == 0 && out6.contains("wrote 1 bundle "))
    }
}

/// SIGHUP and trust-list edits reach a running relay; a broken relay.conf on reload keeps the running settings.
@Suite(.serialized, .timeLimit(.minutes(20))) struct ReloadTests {
    @Test func sighupAppliesTheConfigurationAndRefusesABrokenOne() throws {
        let root = R.tempDir()
        let dir = root + "/clinic"
        #expect(try R.run(["init", "--data-dir", dir, "--name", "clinic"]).0 == 0)
        let log = dir + "/run.log"
        let p = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log)
        defer { R.stop(p) }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(R.wait(60) { logText().contains("relay running") }, "the relay did not start: \(logText())")
        let conf = dir + "/relay.conf"
        let original = try String(contentsOfFile: conf, encoding: .utf8)
        try (original + "group = water-committee\ntrust = peers\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        #expect(R.wait(60) { logText().contains("configuration applied") && logText().contains("groups=water-committee") && logText().contains("trust=peers") },
                "no reload in the log: \(logText())")
        #expect(R.count("SIGHUP: reloading", in: logText()) == 1, "the reload did not come from the signal: \(logText())")
        try (original + "trust = everybody\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        #expect(R.wait(60) { logText().contains("reload refused") && logText().contains("trust = everybody") })
        #expect(R.count("SIGHUP: reloading", in: logText()) == 2)
        // A trust-list edit from another process is picked up without a signal.
        let other = root + "/other"
        #expect(try R.run(["init", "--data-dir", other]).0 == 0)
        let code = try R.run(["peers", "--data-dir", other, "--json"]).1
        let identity = try #require((try JSONSerialization.jsonObject(with: Data(code.utf8)) as? [String: Any])?["identityCode"] as? String)
        #expect(try R.run(["peers", "add", "--data-dir", dir, identity]).0 == 0)
        #expect(R.wait(60) { logText().contains("trust list changed") })
        #expect(p.isRunning, "the relay kept running through it all")
    }
}

/// `relay demo`, the README's first command: five relays on virtual cables, every step checked by the demo itself.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DemoTests {
    @Test func demoShowsEveryStepAndLeavesUsableDataDirectories() throws {
        let root = R.tempDir() + "/demo"
        let (rc, out, err) = try R.run(["demo", "--dir", root, "--timeout", "120"])
        #expect(rc == 0, "demo failed: \(err)")
        for place in ["ridge repeater", "Halabja water committee", "upper valley clinic", "Said Sadiq market"] {
            #expect(out.contains("reached \(place)"))
        }
        #expect(out.contains("delivered to Halabja water committee") && out.contains("receipt back at Sargalu village"))
        #expect(out.contains("in anyone else's inbox: no"))
        #expect(out.contains("Every step worked"))
        // The folders it leaves are ordinary relay data directories.
        let inbox = try R.inbox(root + "/committee")
        #expect(inbox.contains { $0["kind"] as? String == "grievance" && ($0["text"] as? String)?.contains("upper well") == true })
        #expect(inbox.contains { $0["kind"] as? String == "alert" })
        let tail = try R.run(["queue", "tail", "--data-dir", root + "/village", "--since", "0", "--no-follow", "--json"]).1
        #expect(tail.contains("\"enqueued\"") && tail.contains("\"delivered\""))
        // Running it again in the same place is refused without touching what is there.
        let (rc2, _, err2) = try R.run(["demo", "--dir", root])
        #expect(rc2 == 73 && err2.contains("already holds a demo"))
    }
}
