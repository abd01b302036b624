import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What waits and what was sent, as an operator sees it (issue 12, points 1, 5 and 6): `relay queue list` and
/// `cancel`, `relay outbox` through to a receipt, `relay inbox show`, and what `relay send` refuses. Real `relay`
/// processes joined by a `VirtualCable` (two real ptys), federations made with init / invite / init --join.
@Suite(.serialized, .timeLimit(.minutes(20))) struct QueueTests {
    func json(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    /// `relay send ARGS`: refused with exit 64 and one line on stderr that contains every `needle`.
    func refused(_ dir: String, _ args: [String], _ needles: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args, stdin: stdin)
        #expect(rc == 64 && out.isEmpty, "send \(args): exit \(rc), out \(out), err \(err)", sourceLocation: sourceLocation)
        #expect(self.lines(err).count == 1, "send \(args): not one line: \(err)", sourceLocation: sourceLocation)
        for n in needles { #expect(err.contains(n), "send \(args): '\(n)' missing in: \(err)", sourceLocation: sourceLocation) }
    }

    @Test func sendRefusesWhatTheReadmeRulesOut() throws {
        let dirs = try R.federation(["well", "committee", "school"])
        let (a, b, c) = (dirs[0], dirs[1], dirs[2])
        let (idA, idB, idC) = (try R.id(a), try R.id(b), try R.id(c))
        func code(_ dir: String) throws -> String {
            let o = self.json(try R.run(["peers", "--data-dir", dir, "--json"]).1).first ?? [:]
            return try #require(o["identityCode"] as? String)
        }
        // An id nobody here has heard of: refused, listing the known nodes; queued with --unknown-ok.
        try self.refused(a, ["--to", idB, "hello"], ["no node \(idB) is known here", "known nodes: \(idA) (this relay)", "--unknown-ok"])
        let (rc1, out1, err1) = try R.run(["send", "--data-dir", a, "--to", idB, "--unknown-ok", "hello"])
        #expect(rc1 == 0 && out1.hasPrefix(idA + "."), "\(err1)")
        // By name, once the node is known by name; a name two nodes have is refused with both.
        #expect(try R.run(["peers", "add", "--data-dir", a, "--name", "committee", try code(b)]).0 == 0)
        let (rc2, out2, err2) = try R.run(["send", "--data-dir", a, "--to", "committee", "--kind", "grievance", "The pump is broken."])
        #expect(rc2 == 0 && out2.hasPrefix(idA + "."), "\(err2)")
        let byName = self.json(try R.run(["queue", "list", "--data-dir", a, "--json"]).1)
            .first { $0["id"] as? String == out2.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(byName?["to"] as? String == "node:\(idB)" && byName?["toName"] as? String == "committee (\(idB))", "\(String(describing: byName))")
        try self.refused(a, ["--to", "nobody", "hello"], ["'nobody'", "known nodes:", "\(idB) (committee)"])
        #expect(try R.run(["peers", "add", "--data-dir", a, "--name", "Committee", try code(c)]).0 == 0)
        try self.refused(a, ["--to", "committee", "hello"], ["fits 2 nodes", "\(idB) (committee)", "\(idC) (Committee)", "give the id"])

        // What the README rules out.
        try self.refused(a, ["--to", idB, "--kind", "alert", "Flood"], ["an alert goes to everyone or a group"])
        try self.refused(a, ["--everyone", "--kind", "offer", "Flour"], ["--reference REQUEST-ID"])
        try self.refused(a, ["--everyone", "--kind", "offer", "--reference", "0badc0de.1.1", "Flour"], ["no aid request 0badc0de.1.1 is known here"])
        let textID = out2.trimmingCharacters(in: .whitespacesAndNewlines)
        try self.refused(a, ["--to", idB, "--kind", "offer", "--reference", textID, "Flour"], ["\(textID) is a grievance, not an aid request"])
        try self.refused(a, ["--everyone", "--respond-by", "2", "Water"], ["--respond-by is for aid requests"])
        try self.refused(a, ["--everyone", "--kind", "grievance", "--reference", textID, "x"], ["--reference is for offers"])
        let file = a + "/note.txt"
        try "From a file\n".write(toFile: file, atomically: true, encoding: .utf8)
        try self.refused(a, ["--everyone", "--file", file, "and text"], ["TEXT or with --file, not both"])
        try self.refused(a, ["--everyone", "--lifetime", "0", "x"], ["--lifetime 0", "at most 8760"])
        try self.refused(a, ["--everyone", "--lifetime", "96360", "x"], ["--lifetime 96360", "at most 8760"])   // 11 years
        try self.refused(a, ["--everyone", "--lifetime", "1e12", "x"], ["--lifetime 1000000000000"])           // no overflow trap
        try self.refused(a, ["--everyone", "--lifetime=-3", "x"], ["--lifetime -3"])
        try self.refused(a, ["--everyone", "--kind", "aid", "--respond-by", "1e12", "x"], ["--respond-by 1000000000000", "at most 72"])
        try self.refused(a, ["--everyone", "--kind", "aid", "--respond-by", "100", "x"], ["at most 72", "--lifetime"])
        let (rc3, _, err3) = try R.run(["send", "--data-dir", a, "--everyone", "--kind", "aid", "--lifetime", "240", "--respond-by", "100", "x"])
        #expect(rc3 == 0, "\(err3)")
        // From standard input: the single trailing newline is not part of the message.
        let (rc4, _, err4) = try R.run(["send", "--data-dir", a, "--everyone", "-"], stdin: "\n")
        #expect(rc4 == 64 && err4.contains("the message is empty"), "\(err4)")
    }

    @Test func outboxQueueAndInboxBetweenTwoRelays() throws {
        let dirs = try R.federation(["well", "committee"])
        let (a, b) = (dirs[0], dirs[1])
        let (idA, idB) = (try R.id(a), try R.id(b))
        func send(_ dir: String, _ args: [String], stdin: String? = nil) throws -> String {
            let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args, stdin: stdin)
            #expect(rc == 0, "send \(args): \(err)")
            return out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func outbox(_ id: String) throws -> [String: Any] {
            self.json(try R.run(["outbox", "--data-dir", a, "--json"]).1).first { $0["id"] as? String == id } ?? [:]
        }
        func queued(_ dir: String) throws -> [[String: Any]] { self.json(try R.run(["queue", "list", "--data-dir", dir, "--json"]).1) }

        // Before the relays run: queued, and the queue says why it waits.
        let first = try send(a, ["--to", idB, "--unknown-ok", "--kind", "grievance", "The pump at the upper well is broken."])
        #expect(try outbox(first)["state"] as? String == "queued")
        let q0 = try queued(a).first { $0["id"] as? String == first } ?? [:]
        #expect(q0["waiting"] as? String == "not-running" && q0["custody"] as? Bool == true && q0["attempts"] as? Int == 0
                && q0["kind"] as? String == "grievance" && (q0["size"] as? Int ?? 0) > 0, "\(q0)")
        // Cancel: out of the queue, in the feed as removed, in the outbox as cancelled; an unknown id is refused.
        let stray = try send(a, ["--to", "0badc0de", "--unknown-ok", "meant for someone else"])
        let (rc1, out1, _) = try R.run(["queue", "cancel", "--data-dir", a, stray])
        #expect(rc1 == 0 && out1.contains("cancelled \(stray)"))
        #expect(try !queued(a).contains { $0["id"] as? String == stray })
        let feed = self.json(try R.run(["queue", "tail", "--data-dir", a, "--json", "--since", "0", "--no-follow"]).1)
        #expect(feed.contains { $0["type"] as? String == "removed" && $0["bundle"] as? String == stray && $0["detail"] as? String == "cancelled by the operator" })
        #expect(try outbox(stray)["state"] as? String == "cancelled")
        let (rc2, _, err2) = try R.run(["queue", "cancel", "--data-dir", a, stray])
        #expect(rc2 == 64 && self.lines(err2).count == 1 && err2.contains("no bundle \(stray) is queued here"), "\(err2)")

        // The committee reads the first one from a USB stick: its receipt waits in its queue for the well.
        let stick = a + "/stick.cba"
        #expect(try R.run(["export", "--data-dir", a, "--to", idB, stick]).0 == 0)
        #expect(try R.run(["import", "--data-dir", b, stick]).0 == 0)

        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        #expect(try R.wait(60) { try R.run(["status", "--data-dir", a]).1.contains("neighbour \(idB) committee") }, "the well never heard the committee")

        // Delivered with a receipt: the outbox says so; the receipt is not an inbox message.
        var o1: [String: Any] = [:]
        let receipted = try R.wait(60) {
            o1 = try outbox(first)
            return o1["state"] as? String == "delivered"
        }
        #expect(receipted && (o1["receiptsFrom"] as? [String]) == [idB] && (o1["detail"] as? String)?.contains("receipt from committee (\(idB))") == true, "\(o1)")
        let inboxA = try R.inbox(a)
        #expect(inboxA.isEmpty, "a receipt listed as a message: \(inboxA)")
        #expect(try R.run(["inbox", "--data-dir", a]).1 == "inbox empty\n")

        // By name, from a file with a trailing newline: custody passes to the committee, then its receipt comes.
        let long = "The committee meets on Friday at the school.\nAgenda: the pump, the rota for the east quarter, " +
            String(repeating: "and the diesel for the generator, ", count: 4) + "and any other business."
        let file = a + "/minutes.txt"
        try (long + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let second = try send(a, ["--to", "committee", "--kind", "minutes", "--file", file])
        var o2: [String: Any] = [:]
        let passed = try R.wait(60) {
            o2 = try outbox(second)
            return ["custody-passed", "delivered"].contains(o2["state"] as? String ?? "")
        }
        #expect(passed && o2["toName"] as? String == "committee (\(idB))", "\(o2)")

        // A broadcast: sent to the neighbour, kept for others; in quiet mode the queue says that is why it waits.
        let bulletin = try send(a, ["--everyone", "--kind", "text", "Market day moved to Thursday."])
        var ob: [String: Any] = [:]
        let sent = try R.wait(60) { ob = try outbox(bulletin); return ob["state"] as? String == "sent" }
        #expect(sent, "\(ob)")
        #expect(try R.wait(30) { try queued(a).first { $0["id"] as? String == bulletin }?["waiting"] as? String == "held-for-others" })
        #expect(try R.run(["quiet", "on", "--data-dir", a]).0 == 0)
        let quiet = try send(a, ["--everyone", "Quiet now."])
        #expect(try R.wait(10) { try queued(a).first { $0["id"] as? String == quiet }?["waiting"] as? String == "quiet-mode" })
        // Cancelled after the running relay took it up (its transfer waits in memory behind quiet mode): nothing of
        // it leaves; a later message gets through alone.
        let big = (0..<1_500).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let dropped = try send(a, ["--to", idB, big])
        let sentAt = Date().timeIntervalSince1970
        func statusUpdated() throws -> Double {
            let s = (try? JSONSerialization.jsonObject(with: Data(try R.run(["status", "--data-dir", a, "--json"]).1.utf8))) as? [String: Any]
            return ((s?["live"] as? [String: Any])?["updated"] as? Double) ?? 0
        }
        #expect(try R.wait(10) { try statusUpdated() > sentAt + 0.2 }, "the running relay never polled the database")
        #expect(try R.run(["queue", "cancel", "--data-dir", a, dropped]).0 == 0)
        let cancelledAt = Date().timeIntervalSince1970
        #expect(try R.wait(10) { try statusUpdated() > cancelledAt + 0.2 }, "the running relay never read the cancel")
        #expect(try R.run(["quiet", "off", "--data-dir", a]).0 == 0)
        let after = try send(a, ["--to", idB, "After the cancelled one."])
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == after } })
        #expect(try !R.inbox(b).contains { $0["id"] as? String == dropped }, "a cancelled message was still sent")
        // No route: a node nobody heard, while the relay runs.
        let lost = try send(a, ["--to", "0badc0de", "--unknown-ok", "Anyone?"])
        var ql: [String: Any] = [:]
        #expect(try R.wait(10) { ql = try queued(a).first { $0["id"] as? String == lost } ?? [:]; return ql["waiting"] as? String == "no-route" }, "\(ql)")
        let text = try R.run(["queue", "list", "--data-dir", a]).1
        #expect(text.contains(lost) && text.contains("no route to 0badc0de"), "\(text)")

        // The committee's inbox: names, a marker where a line is cut, the whole message with `inbox show`.
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == second } })
        let m = try #require(try R.inbox(b).first { $0["id"] as? String == second })
        #expect(m["text"] as? String == long && m["fromName"] as? String == "well", "the file's trailing newline is dropped: \(m)")
        let list = try R.run(["inbox", "--data-dir", b]).1
        let line = try #require(self.lines(list).first { $0.contains("minutes") })
        #expect(line.contains("from well (\(idA))") && line.contains("The committee meets on Friday at the school.… [whole: relay inbox show \(second)]"), "\(line)")
        let (rc3, shown, err3) = try R.run(["inbox", "show", "--data-dir", b, second])
        #expect(rc3 == 0 && shown.contains("from:     well (\(idA))") && shown.hasSuffix("\n\(long)\n"), "\(shown) \(err3)")
        let (rc4, _, err4) = try R.run(["inbox", "show", "--data-dir", b, "0badc0de.1.1"])
        #expect(rc4 == 64 && self.lines(err4).count == 1 && err4.contains("no message 0badc0de.1.1"), "\(err4)")
        let local = try R.run(["inbox", "--data-dir", b, "--local-time"]).1
        #expect(self.lines(local).contains { $0.contains("minutes") && $0.range(of: #"\d\d:\d\d"#, options: .regularExpression) != nil }, "\(local)")

        // An aid request: the hint under it is a command that works as printed.
        let request = try send(b, ["--everyone", "--kind", "aid", "--respond-by", "6", "We need 20 sacks of flour."])
        #expect(try R.wait(60) { try R.inbox(a).contains { $0["id"] as? String == request } })
        let hint = try #require(self.lines(try R.run(["inbox", "--data-dir", a]).1).first { $0.contains("answer with: relay send") })
        let command = String(try #require(hint.components(separatedBy: "answer with: relay ").last?.dropLast()))
        // Split as a shell would: words, and the one quoted placeholder.
        let parts = command.components(separatedBy: "\"")
        let words = parts[0].split(separator: " ").map(String.init) + [parts[1]]
        #expect(words == ["send", "--to", idB, "--kind", "offer", "--reference", request, "what you can give"], "\(hint)")
        let (rc5, offer, err5) = try R.run([words[0], "--data-dir", a] + words.dropFirst())
        #expect(rc5 == 0, "the hint's command failed: \(err5)")
        let offerID = offer.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == offerID && $0["reference"] as? String == request } })

        // Duty cycle: reloaded with a budget of 3.6 ms an hour, which one packet uses up; then a message to the
        // committee, a neighbour, waits for airtime.
        try "duty-cycle = 0.0001\n".write(toFile: a + "/relay.conf", atomically: true, encoding: .utf8)
        kill(ra.processIdentifier, SIGHUP)
        #expect(try R.wait(20) { R.text(a + "/run.log").contains("configuration applied") })
        _ = try send(a, ["--everyone", "Uses up the airtime."])
        func exhausted() throws -> Bool {
            let s = (try? JSONSerialization.jsonObject(with: Data(try R.run(["status", "--data-dir", a, "--json"]).1.utf8))) as? [String: Any]
            let links = (s?["live"] as? [String: Any])?["links"] as? [[String: Any]] ?? []
            return links.contains { l in (l["airtimeBudget"] as? Double).map { ($0 > 0) && (l["airtimeUsed"] as? Double ?? 0) >= $0 } ?? false }
        }
        #expect(try R.wait(30, exhausted), "the well never used up its airtime")
        let held = try send(a, ["--to", idB, "Held back by the duty cycle."])
        var qd: [String: Any] = [:]
        #expect(try R.wait(20) { qd = try queued(a).first { $0["id"] as? String == held } ?? [:]; return qd["waiting"] as? String == "duty-cycle" }, "\(qd)")
        #expect(qd["nextHop"] as? String == idB && (qd["why"] as? String)?.contains("has used its") == true, "\(qd)")
    }
}
