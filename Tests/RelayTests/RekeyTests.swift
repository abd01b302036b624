import CourierLinks
import Foundation
import Testing

/// Changing the federation's network key to remove a member (issue 10, "how to revoke one"; SPEC 3.7), as
/// operators do it: alpha runs `relay rekey new`, hands the printed line to bravo (who stays) and not to charlie
/// (who is removed); both running relays switch at the moment; after `relay rekey retire` charlie can neither
/// send into the federation nor read it, while alpha and bravo go on. Real relay processes on pty cables.
@Suite(.serialized, .timeLimit(.minutes(20))) struct RekeyTests {
    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send \(args): \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func status(_ dir: String) throws -> [String: Any] {
        let out = try R.run(["status", "--data-dir", dir, "--json"]).1
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    /// Packets refused for failed authentication on the running relay's link whose name contains `path`.
    func authFailures(_ dir: String, link path: String) throws -> Int {
        let links = ((try self.status(dir)["live"] as? [String: Any])?["links"] as? [[String: Any]]) ?? []
        return links.filter { (($0["name"] as? String) ?? "").contains(path) }.compactMap { $0["authFailures"] as? Int }.reduce(0, +)
    }

    @Test func aRemovedMemberIsCutOffAndTheOthersGoOn() throws {
        let dirs = try R.federation(["alpha", "bravo", "charlie"])
        let (a, b, c) = (dirs[0], dirs[1], dirs[2])
        let (idA, idB) = (try R.id(a), try R.id(b))
        let ab = try VirtualCable(), ac = try VirtualCable()
        defer { ab.stop(); ac.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(ab.pathA):115200", "--link", "serial:\(ac.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(ab.pathB):115200"], log: b + "/run.log")
        let rc = try R.start(["run", "--data-dir", c, "--link", "serial:\(ac.pathB):115200"], log: c + "/run.log")
        defer { R.stop(ra); R.stop(rb); R.stop(rc) }

        // Before: everyone hears everyone.
        let before = try self.send(c, ["--to", idA, "--unknown-ok", "charlie, before the change"])
        #expect(try R.wait(90) { try R.inbox(a).contains { $0["id"] as? String == before } }, "charlie's message never reached alpha")

        // alpha makes the new key; the switch 15 s from now.
        let at = ISO8601DateFormatter().string(from: Date().addingTimeInterval(15))
        let (rcNew, made, errNew) = try R.run(["rekey", "new", "--data-dir", a, "--at", at])
        #expect(rcNew == 0, "\(errNew)")
        let line = try #require(made.split(separator: "\n").first { $0.contains("relay rekey add ") }, "\(made)")
        let words = line.split(separator: " ").map(String.init)
        let code = try #require(words.first { $0.hasPrefix("courier1-") }, "\(line)")
        #expect(words.suffix(2) == ["--at", at], "\(line)")
        #expect(made.contains("the running relay (pid"), "\(made)")
        // bravo runs the line it was handed; charlie never gets it.
        let (rcAdd, added, errAdd) = try R.run(["rekey", "add", "--data-dir", b, code, "--at", at])
        #expect(rcAdd == 0 && added.contains("switches to it at \(at)"), "\(added) \(errAdd)")
        let next = try #require((try self.status(b)["networkKeyNext"] as? [String: Any])?["key"] as? String)

        // At the moment both running relays switch, and say so.
        #expect(try R.wait(60) { [a, b].allSatisfy { R.text($0 + "/run.log").contains("network keys: sending under \(next)") } },
                "\(R.text(a + "/run.log").suffix(1500))")
        let (keyA, keyB) = (try self.status(a)["networkKey"] as? String, try self.status(b)["networkKey"] as? String)
        #expect(keyA == next && keyB == next)
        for d in [a, b] {
            let (rcRetire, retired, errRetire) = try R.run(["rekey", "retire", "--data-dir", d])
            #expect(rcRetire == 0 && retired.contains("retired"), "\(retired) \(errRetire)")
        }
        #expect(try R.wait(30) { (try self.status(a)["networkKeysAccepted"] as? [String]) == [next] })

        // After: alpha and bravo go on under the new key.
        let after = try self.send(b, ["--to", idA, "bravo, after the change"])
        #expect(try R.wait(90) { try R.inbox(a).contains { $0["id"] as? String == after } }, "bravo's message never reached alpha after the change")
        // charlie is cut off both ways: its packets fail authentication at alpha and alpha's at charlie.
        let failsAtA = try self.authFailures(a, link: ac.pathA)
        let cutOff = try self.send(c, ["--to", idA, "--unknown-ok", "charlie, after the change"])
        let unread = try self.send(a, ["--to", try R.id(c), "alpha, after the change"])
        let refusedBoth = try R.wait(90) { try self.authFailures(a, link: ac.pathA) > failsAtA && self.authFailures(c, link: ac.pathB) > 0 }
        #expect(refusedBoth, "alpha \((try? self.authFailures(a, link: ac.pathA)) ?? -1), charlie \((try? self.authFailures(c, link: ac.pathB)) ?? -1)")
        #expect(try !R.inbox(a).contains { $0["id"] as? String == cutOff }, "a removed member's message was delivered")
        #expect(try R.queuedIDs(c).contains(cutOff), "charlie's message should stay queued at charlie")
        #expect(try !R.inbox(c).contains { $0["id"] as? String == unread }, "a removed member read a message sent after the change")
        _ = idB
    }

    @Test func theFilesSettleAfterTheMomentAndInviteGivesTheNewKey() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let (rcNew, made, errNew) = try R.run(["rekey", "new", "--data-dir", a, "--in", "0"])
        #expect(rcNew == 0, "\(errNew)")
        #expect(made.contains("no relay is running on"), "\(made)")
        let code = try #require(made.split(separator: " ").map(String.init).first { $0.hasPrefix("courier1-") })
        // The moment has passed: `relay invite` hands out the new key, and a relay started now settles the files.
        #expect(try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines) == code)
        let (rcShow, shown, _) = try R.run(["rekey", "show", "--data-dir", a])
        #expect(rcShow == 0 && shown.contains("still accepting the replaced key"), "\(shown)")
        let (rcRetire, _, errRetire) = try R.run(["rekey", "retire", "--data-dir", a])
        #expect(rcRetire == 0, "\(errRetire)")
        let network = R.text(a + "/network.json")
        #expect(try R.run(["rekey", "show", "--data-dir", a]).1.split(separator: "\n").count == 1)

        // Mistakes a person makes get one line and change nothing.
        let (rcBad, _, errBad) = try R.run(["rekey", "add", "--data-dir", b, "courier1-notacode", "--at", "2030-01-01T00:00:00Z"])
        #expect(rcBad == 64 || rcBad == 65, "\(errBad)")
        #expect(errBad.split(separator: "\n").count == 1, "\(errBad)")
        let (rcNoAt, _, errNoAt) = try R.run(["rekey", "add", "--data-dir", b, code])
        #expect(rcNoAt == 64 && errNoAt.contains("--at"), "\(errNoAt)")
        let (rcWhen, _, errWhen) = try R.run(["rekey", "add", "--data-dir", b, code, "--at", "tomorrow"])
        #expect(rcWhen == 64 && errWhen.contains("2026-12-31T18:00:00Z"), "\(errWhen)")
        let openCode = try R.run(["invite", "--data-dir", try R.federation(["elsewhere"], open: true)[0]]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let (rcOpen, _, errOpen) = try R.run(["rekey", "add", "--data-dir", b, openCode, "--in", "1"])
        #expect(rcOpen == 65 && errOpen.contains("open"), "\(errOpen)")
        #expect(!FileManager.default.fileExists(atPath: b + "/rekey.json"))
        #expect(R.text(a + "/network.json") == network)
    }
}

/// MQTT topics follow the network key (SPEC 3.7, 18.7): at the moment of a key change a running gateway moves to
/// the new key's topic, so it still reaches a gateway restarted after the change (which starts on the new topic);
/// a gateway left on the retired key is no longer even subscribed to. A real mosquitto broker on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(20))) struct RekeyOverMQTTTests {
    @Test(.enabled(if: TestBroker.binary != nil, "needs mosquitto")) func aRunningGatewayFollowsTheNewKeysTopic() throws {
        let broker = try TestBroker()
        defer { broker.stop() }
        let link = "mqtt:127.0.0.1:\(broker.port)"
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let ra = try R.start(["run", "--data-dir", a, "--link", link], log: a + "/run.log")
        defer { R.stop(ra) }
        var rb = try R.start(["run", "--data-dir", b, "--link", link], log: b + "/run.log")
        let before = try R.run(["send", "--data-dir", a, "--to", idB, "--unknown-ok", "before"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == before } }, "never delivered before the change")

        let at = ISO8601DateFormatter().string(from: Date().addingTimeInterval(8))
        let made = try R.run(["rekey", "new", "--data-dir", a, "--at", at]).1
        let code = try #require(made.split(separator: " ").map(String.init).first { $0.hasPrefix("courier1-") }, "\(made)")
        #expect(try R.run(["rekey", "add", "--data-dir", b, code, "--at", at]).0 == 0)
        let shown = try JSONSerialization.jsonObject(with: Data(try R.run(["rekey", "show", "--data-dir", a, "--json"]).1.utf8)) as? [String: Any]
        let next = try #require((shown?["next"] as? [String: Any])?["key"] as? String, "\(String(describing: shown))")
        #expect(try R.wait(60) { R.text(a + "/run.log").contains("network keys: sending under \(next), accepting \(next)") }, "\(R.text(a + "/run.log").suffix(1500))")
        #expect(R.text(a + "/run.log").contains("link follows the network keys"), "\(R.text(a + "/run.log").suffix(1500))")
        for d in [a, b] { #expect(try R.run(["rekey", "retire", "--data-dir", d]).0 == 0) }

        // bravo restarts: it starts on the new key's topic; alpha, running since before the change, follows it.
        R.stop(rb)
        rb = try R.start(["run", "--data-dir", b, "--link", link], log: b + "/run2.log")
        defer { R.stop(rb) }
        let after = try R.run(["send", "--data-dir", a, "--to", idB, "after"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == after } },
                "alpha never reached bravo after the change: \(R.text(a + "/run.log").suffix(2000))")
    }
}
