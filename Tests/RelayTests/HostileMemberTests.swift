import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A hostile member (issue 10, points 3 and 8): a node holding the federation's network key forges bundles claiming
/// other origins and priorities (`courier-dev forge`, see `Forger`) and writes them on a real pty line to real
/// `relay` processes. Origins must be proven by their signatures, forged receipts must release nothing, priority
/// from the network is bounded, custody is not evicted by bulk, and the inbox is bounded without losing unread
/// messages.
@Suite(.serialized, .timeLimit(.minutes(20))) struct HostileMemberTests {
    func json(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func send(_ dir: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (rc, out, err) = try R.run(["send", "--data-dir", dir] + args)
        #expect(rc == 0, "send \(args.prefix(4)): \(err)", sourceLocation: sourceLocation)
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func status(_ dir: String) throws -> [String: Any] {
        try self.json(try R.run(["status", "--data-dir", dir, "--json"]).1).first ?? [:]
    }

    /// `relay status --json` as text for a failed expectation's message, or why it could not be read.
    func statusText(_ dir: String) -> String {
        do { return "\(try self.status(dir))" } catch { return "relay status failed: \(error)" }
    }

    func gaveUp(_ dir: String, _ key: String) throws -> Int {
        ((try self.status(dir))["gaveUp"] as? [String: Any])?[key] as? Int ?? 0
    }

    func feed(_ dir: String) throws -> [[String: Any]] {
        self.json(try R.run(["queue", "tail", "--data-dir", dir, "--json", "--no-follow", "--since", "0"]).1)
    }

    func identityCode(_ dir: String) throws -> String {
        (try self.json(try R.run(["peers", "--data-dir", dir, "--json"]).1).first?["identityCode"] as? String) ?? ""
    }

    /// Whether the running relay's first link is up (its status file says so), within 30 s.
    func linkUp(_ dir: String) -> Bool {
        R.wait(30) {
            let live = (try? self.status(dir))?["live"] as? [String: Any]
            return ((live?["links"] as? [[String: Any]])?.first?["up"] as? Bool) == true
        }
    }

    func random(_ n: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
        return String((0..<n).map { _ in letters.randomElement()! })
    }

    // MARK: Point 3

    /// With `trust = network`: unsigned alerts and receipts claiming alpha are refused (logged, counted, not flooded),
    /// a text signed with another key is refused, an unsigned text is delivered but shown as not proven, alpha's real
    /// message is shown proven, and an alert signed for an origin nobody has heard of is kept (not flooded, not
    /// delivered) while its keys are asked for.
    @Test func forgedOriginsAreRefusedOrShownUnprovenAndUnknownOriginsWaitForKeys() throws {
        let dirs = try R.federation(["alpha", "bravo", "mallory"])
        let (a, b, m) = (dirs[0], dirs[1], dirs[2])
        let (idA, idB) = (try R.id(a), try R.id(b))
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        let real = try self.send(a, ["--to", idB, "--unknown-ok", "the real alpha"])
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == real } }, "alpha's message never arrived")

        // Mallory, a member, transmits on the same line (toward bravo) as alpha.
        func forge(_ args: [String], _ text: String) throws -> [String] {
            try Forger.forge(["--member", m, "--line", cable.pathA, "--origin", idA] + args + [text])
        }
        let alert = try forge(["--kind", "alert", "--to", "everyone"], "EVACUATE (forged)")
        let receipt = try forge(["--kind", "receipt", "--to", idA, "--receipt-for", real], "")
        let failure = try forge(["--kind", "failure", "--to", idA], "")
        let badSignature = try forge(["--kind", "text", "--to", idB, "--next-hop", idB, "--sign", "member"], "signed by mallory")
        let unsignedText = try forge(["--kind", "text", "--to", idB, "--next-hop", idB], "unsigned, claims alpha")
        let neverHeard = try Forger.forge(["--member", m, "--line", cable.pathA, "--origin", "0badf00d", "--sign", "member",
                                           "--kind", "alert", "--to", "everyone", "alert from nobody"])
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == unsignedText.first } }, "the unsigned text never arrived")
        #expect(try R.wait(30) { try self.gaveUp(b, "refused") >= 4 }, "refusals: \(self.statusText(b))")

        let inbox = try R.inbox(b)
        let ids = Set(inbox.compactMap { $0["id"] as? String })
        for forged in alert + receipt + failure + badSignature + neverHeard {
            #expect(!ids.contains(forged), "forged \(forged) delivered: \(inbox)")
        }
        #expect(inbox.first { $0["id"] as? String == real }?["proven"] as? Bool == true, "\(inbox)")
        #expect(inbox.first { $0["id"] as? String == unsignedText.first }?["proven"] as? Bool == false, "\(inbox)")
        let human = try R.run(["inbox", "--data-dir", b]).1
        #expect(human.contains("[origin not proven] unsigned, claims alpha") && !human.contains("[origin not proven] the real alpha"), "\(human)")
        let shown = try R.run(["inbox", "show", "--data-dir", b, real]).1
        #expect(shown.contains("proven: its origin signature verified"), "\(shown)")

        // Refused with the reason, counted apart as unsigned; neither forged alert is queued to be flooded on.
        let st = try self.status(b)
        #expect((st["unsignedRefused"] as? Int ?? 0) >= 3, "\(st)")
        let feed = try self.feed(b)
        let refusedWhy = feed.filter { $0["type"] as? String == "refused" }.compactMap { $0["detail"] as? String }
        #expect(refusedWhy.contains { $0.contains("unsigned alert: its kind must be origin-signed") }, "\(refusedWhy)")
        #expect(refusedWhy.contains { $0.contains("origin signature does not verify") }, "\(refusedWhy)")
        let queued = try R.queuedIDs(b)
        #expect(!queued.contains(alert[0]) && !queued.contains(neverHeard[0]), "\(queued)")
        // The alert from a never-heard origin waits for its keys, which bravo asks for (a key request to 0badf00d).
        let waiting = (st["waiting"] as? [[String: Any]]) ?? []
        #expect(waiting.contains { $0["id"] as? String == neverHeard[0] }, "\(st)")
        #expect(try R.wait(20) { try self.json(try R.run(["queue", "list", "--data-dir", b, "--json"]).1).contains { $0["to"] as? String == "node:0badf00d" } },
                "no key request to 0badf00d")
        #expect(R.text(b + "/run.log").contains("its kind must be origin-signed"), "not logged")
    }

    /// A forged receipt (unsigned, or signed with the forger's key) claiming the destination must not make the
    /// sender delete its queued messages; the real destination, once it comes, gets both.
    @Test func forgedReceiptsReleaseNothing() throws {
        let dirs = try R.federation(["alpha", "bravo", "mallory"])
        let (a, b, m) = (dirs[0], dirs[1], dirs[2])
        let idB = try R.id(b)
        #expect(try R.run(["peers", "add", "--data-dir", a, try self.identityCode(b)]).0 == 0)
        let msgs = [try self.send(a, ["--to", idB, "first"]), try self.send(a, ["--to", idB, "second"])]
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        defer { R.stop(ra) }
        let idA = try R.id(a)
        // Toward alpha: receipts "from bravo" for both messages, unsigned and then signed by mallory.
        #expect(self.linkUp(a), "alpha's link never came up")
        try Forger.forge(["--member", m, "--line", cable.pathB, "--origin", idB, "--kind", "receipt", "--to", idA,
                          "--receipt-for", msgs.joined(separator: ",")])
        try Forger.forge(["--member", m, "--line", cable.pathB, "--origin", idB, "--kind", "receipt", "--to", idA, "--sign", "member",
                          "--receipt-for", msgs.joined(separator: ",")])
        #expect(try R.wait(30) { try self.gaveUp(a, "refused") >= 2 }, "\(self.statusText(a))")
        #expect(try R.queuedIDs(a).isSuperset(of: msgs), "a forged receipt released a queued message")
        #expect(!R.text(a + "/run.log").contains("receipt from"), "a forged receipt was shown")
        // The real bravo comes: both arrive, and its real receipt releases them.
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(rb) }
        #expect(try R.wait(90) { Set(try R.inbox(b).compactMap { $0["id"] as? String }).isSuperset(of: msgs) }, "not delivered")
        #expect(try R.wait(90) { try R.queuedIDs(a).isDisjoint(with: msgs) }, "the real receipt did not release them")
    }

    /// A failure notice signed by its (proven) origin whose content is not whole entries (SPEC 6.8: malformed) is
    /// not delivered and records no failure: alpha gives it up as unreadable, with the reason in the feed, counted in
    /// `relay status`. A lenient decoder delivered it, an empty "NOT delivered: " line in the inbox.
    @Test func aMalformedFailureNoticeIsGivenUpOnAndReported() throws {
        let dirs = try R.federation(["alpha", "mallory"])
        let (a, m) = (dirs[0], dirs[1])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        defer { R.stop(ra) }
        let idA = try R.id(a)
        #expect(self.linkUp(a), "alpha's link never came up")
        // "forged" as content: reason 0x66, then an id cut short inside its created minutes.
        let notice = try Forger.forge(["--member", m, "--line", cable.pathB, "--origin", m, "--sign", "origin", "--kind", "failure",
                                       "--to", idA, "--next-hop", idA, "forged"])
        #expect(try R.wait(30) { try self.gaveUp(a, "unreadable") >= 1 }, "\(self.statusText(a))")
        let feed = try self.feed(a)
        let why = feed.filter { $0["type"] as? String == "gave-up" && $0["bundle"] as? String == notice.first }.compactMap { $0["detail"] as? String }
        #expect(why == ["unreadable: malformed: input ends inside failure notice entry 1 id.created"], "\(feed)")
        let inbox = try R.inbox(a)
        #expect(inbox.isEmpty, "delivered: \(inbox)")
        #expect(((try self.status(a))["failureNotices"] as? Int ?? 0) == 0, "no failure recorded")
        // One an older version delivered (written into the inbox table as it did): `relay inbox` says it is
        // malformed, rather than showing fewer entries (or none) in silence.
        let origin = try #require(UInt32(try R.id(m), radix: 16))
        let (rc, _, err) = try R.exec("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], timeout=30)
            c.execute("INSERT INTO inbox (origin, created, sequence, kind, dest_type, dest, content, received) VALUES (?, 1541999, 1, 8, 0, 0, ?, 1796000000)",
                      (int(sys.argv[2]), b"forged"))
            c.commit()
            """, a + "/courier.db", String(origin)])
        #expect(rc == 0, "\(err)")
        let lines = try R.inbox(a).compactMap { $0["text"] as? String }
        #expect(lines == ["NOT delivered: (malformed failure notice: input ends inside failure notice entry 1 id.created)"], "\(lines)")
    }

    /// `trust = peers` means proven: an unsigned text claiming a trusted member is refused; one signed with the
    /// member's real key is delivered and shown proven.
    @Test func trustPeersAcceptsOnlyProvenOrigins() throws {
        let dirs = try R.federation(["alpha", "bravo", "mallory"])
        let (a, b, m) = (dirs[0], dirs[1], dirs[2])
        let (idA, idB) = (try R.id(a), try R.id(b))
        #expect(try R.run(["peers", "add", "--data-dir", b, try self.identityCode(a)]).0 == 0)
        #expect(try R.run(["peers", "add", "--data-dir", b, try self.identityCode(m)]).0 == 0)
        let conf = R.text(b + "/relay.conf") + "\ntrust = peers\n"
        try conf.write(toFile: b + "/relay.conf", atomically: true, encoding: .utf8)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(rb) }
        #expect(self.linkUp(b), "bravo's link never came up")
        let unsigned = try Forger.forge(["--member", m, "--line", cable.pathA, "--origin", idA, "--kind", "text", "--to", idB,
                                         "--next-hop", idB, "unsigned from a trusted member"])
        let proven = try Forger.forge(["--member", m, "--line", cable.pathA, "--origin", a, "--sign", "origin", "--kind", "text",
                                       "--to", idB, "--next-hop", idB, "signed by alpha"])
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == proven[0] } }, "the signed text never arrived")
        #expect(try R.wait(20) { try self.gaveUp(b, "refused") >= 1 })
        let inbox = try R.inbox(b)
        #expect(!inbox.contains { $0["id"] as? String == unsigned[0] }, "\(inbox)")
        #expect(inbox.first { $0["id"] as? String == proven[0] }?["proven"] as? Bool == true, "\(inbox)")
        let why = try self.feed(b).filter { $0["type"] as? String == "refused" }.compactMap { $0["detail"] as? String }
        #expect(why.contains { $0.contains("trust = peers accepts only bundles whose origin signature proves them") }, "\(why)")
    }

    // MARK: Point 8

    /// A 1 MB queue full of alerts (floods) and grievances in custody; a member then floods "minutes" marked urgent.
    /// They are queued as normal at best (never urgent), evict no alert and no bundle in custody, and are refused
    /// (reported) when there is no room.
    @Test func priorityFromTheNetworkIsBoundedAndCustodyIsNotEvictedByBulk() throws {
        let dirs = try R.federation(["alpha", "bravo", "mallory"])
        let (a, b, m) = (dirs[0], dirs[1], dirs[2])
        try (R.text(b + "/relay.conf") + "\nquota-mb = 1\n").write(toFile: b + "/relay.conf", atomically: true, encoding: .utf8)
        #expect(try R.run(["peers", "add", "--data-dir", b, try self.identityCode(a)]).0 == 0)
        // Alpha's 10 alerts and 10 grievances for a node out of range (~47 KB each after compression), carried to
        // bravo on a stick: bravo holds the alerts to flood and the grievances in its custody.
        var kept: [String] = []
        for i in 0..<10 { kept.append(try self.send(a, ["--everyone", "--kind", "alert", "alert \(i) " + self.random(62_000)])) }
        for i in 0..<10 { kept.append(try self.send(a, ["--to", "0c0ffee0", "--unknown-ok", "--kind", "grievance", "grievance \(i) " + self.random(62_000)])) }
        let stick = a + "/stick.cba"
        #expect(try R.run(["export", "--data-dir", a, stick]).0 == 0)
        let (irc, iout, ierr) = try R.run(["import", "--data-dir", b, stick])
        #expect(irc == 0, "\(iout) \(ierr)")
        #expect(try R.queuedIDs(b).isSuperset(of: kept), "not all imported")

        let cable = try VirtualCable()
        defer { cable.stop() }
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(rb) }
        #expect(self.linkUp(b), "bravo's link never came up")
        // 60 minutes of ~3 KB, each claiming to be urgent, signed by their (proven) origin mallory.
        let minutes = try Forger.forge(["--member", m, "--line", cable.pathA, "--origin", m, "--sign", "origin", "--kind", "minutes",
                                        "--to", "everyone", "--priority", "urgent", "--count", "60", "--size", "3000",
                                        "--bytes-per-second", "40000"])
        #expect(minutes.count == 60)
        let settled = R.wait(90) {
            let seen = Set((try? self.feed(b))?.filter { ["enqueued", "refused"].contains($0["type"] as? String ?? "") }.compactMap { $0["bundle"] as? String } ?? [])
            return seen.isSuperset(of: minutes)
        }
        #expect(settled, "bravo did not take in or refuse every forged bundle")
        let queued = try R.queuedIDs(b)
        let lost = kept.filter { !queued.contains($0) }
        #expect(lost.isEmpty, "\(lost.count) of \(kept.count) alerts and grievances in custody evicted by bulk marked urgent")
        let feed = try self.feed(b)
        let enqueued = feed.filter { $0["type"] as? String == "enqueued" && minutes.contains($0["bundle"] as? String ?? "") }
        #expect(!enqueued.isEmpty && enqueued.allSatisfy { ($0["priority"] as? Int ?? 0) >= 2 }, "\(enqueued.prefix(3))")
        #expect(enqueued.allSatisfy { ($0["detail"] as? String ?? "").contains("queued as normal (its header claims urgent)") }, "\(enqueued.prefix(2))")
        // The queue did fill: the minutes pushed out older minutes (same class, held only to pass on), or were refused.
        let pushedOut = feed.filter { ["refused", "evicted"].contains($0["type"] as? String ?? "") && minutes.contains($0["bundle"] as? String ?? "") }
        #expect(!pushedOut.isEmpty, "the queue was never full: the test shows nothing")
        let evicted = feed.filter { $0["type"] as? String == "evicted" }.compactMap { $0["bundle"] as? String }
        #expect(evicted.allSatisfy { minutes.contains($0) }, "evicted: \(evicted.filter { !minutes.contains($0) })")
    }

    /// The inbox is bounded (`inbox-mb`): full of unread messages, a new one is refused, its origin gets a failure
    /// notice (kind 8, refused) and status says so; once read, the oldest read messages make room.
    @Test func theInboxIsBoundedAndNeverDropsUnreadMessages() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        try (R.text(b + "/relay.conf") + "\ninbox-mb = 1\n").write(toFile: b + "/relay.conf", atomically: true, encoding: .utf8)
        let idB = try R.id(b)
        #expect(try R.run(["peers", "add", "--data-dir", a, try self.identityCode(b)]).0 == 0)
        #expect(try R.run(["peers", "add", "--data-dir", b, try self.identityCode(a)]).0 == 0)
        var sent: [String] = []
        for i in 0..<18 { sent.append(try self.send(a, ["--to", idB, "--no-encrypt", "letter \(i) " + self.random(62_000)])) }
        let stick = a + "/stick.cba"
        #expect(try R.run(["export", "--data-dir", a, stick]).0 == 0)
        _ = try R.run(["import", "--data-dir", b, stick])
        // Alpha's own copies are taken out (the stick carried them), so the line below carries only the notices.
        for id in sent { #expect(try R.run(["queue", "cancel", "--data-dir", a, id]).0 == 0) }
        let inbox = Set(try R.inbox(b).compactMap { $0["id"] as? String })
        #expect(inbox.count == 16, "inbox holds \(inbox.count)")
        let st = try self.status(b)
        let box = (st["inbox"] as? [String: Any]) ?? [:]
        #expect(box["refusedFull"] as? Int == 2 && box["limit"] as? Int == 1_048_576, "\(st)")
        let human = try R.run(["status", "--data-dir", b]).1
        #expect(human.contains("FULL: new messages are refused") && human.contains("refused for a full inbox: 2"), "\(human)")
        // Their origin hears of it: bravo and alpha meet, the failure notices reach alpha.
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        #expect(try R.wait(90) { (try self.status(a))["failureNotices"] as? Int ?? 0 >= 2 }, "alpha never heard: \(self.statusText(a))")
        // Read, the oldest make room for a new one as large; nothing unread was removed.
        _ = try R.run(["inbox", "--data-dir", b, "--mark-read"])
        let more = try self.send(a, ["--to", idB, "--no-encrypt", "after reading " + self.random(62_000)])
        #expect(try R.wait(90) { try R.inbox(b).contains { $0["id"] as? String == more } }, "not delivered after reading")
        let after = (try self.status(b)["inbox"] as? [String: Any]) ?? [:]
        #expect(after["readRemoved"] as? Int == 1 && after["unread"] as? Int == 1, "\(after)")
        #expect(try R.inbox(b).count == 16, "the inbox holds 15 read messages and the new one")
    }
}
