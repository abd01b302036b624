import CourierLinks
import CourierWire
import Foundation
import Testing

/// Federation dictionaries (issue 16 point 2, SPEC 5.10 and 7.6) with real `relay` processes: `relay dict train`
/// on the texts a relay can read, `relay dict publish` through the federation, neighbours telling what they hold,
/// the next message compressed with it, and a relay that lacks it keeping a message until it has it.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DictionaryTests {
    func identityCode(_ dir: String) throws -> String {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try #require(o["identityCode"] as? String)
    }

    func dictionaries(_ dir: String) throws -> [[String: Any]] {
        let out = try R.run(["dict", "list", "--data-dir", dir, "--json"]).1
        let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return o?["dictionaries"] as? [[String: Any]] ?? []
    }

    func feed(_ dir: String) throws -> [[String: Any]] {
        let out = try R.run(["queue", "tail", "--data-dir", dir, "--json", "--since", "0", "--no-follow"]).1
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The bundle `id` as queued in a relay's database (read with Python's sqlite3 from the real file).
    func queuedBundle(_ dir: String, _ id: String) throws -> CourierBundle {
        let out = try R.exec("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
            for (d,) in c.execute("SELECT hex(data) FROM bundle WHERE printf('%08x.%d.%d', origin, created, sequence) = ?", (sys.argv[2],)): print(d)
            """, dir + "/courier.db", id]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let bytes = try #require([UInt8](hex: out.lowercased()), "bundle \(id) not queued in \(dir)")
        return try CourierBundle(decoding: bytes)
    }

    /// A water committee's notices: names and phrases recur, details change (what a federation's own traffic is like).
    static func notice(_ i: Int) -> String {
        let villages = ["Sargalu", "Penjwen", "Garmik", "Shanakhse", "Khanke", "Qaraqosh", "Hasansham", "Zakho"]
        let goods = ["flour", "kerosene", "blankets", "water tanks", "bread", "baby milk", "antivenom"]
        return "Water committee of \(villages[i % 8]): distribution of \(goods[(i * 3) % 7]) moves to day \(i % 28 + 1) at \(7 + i % 5):00. Bring your ration card; the tanker from \(villages[(i + 3) % 8]) is \(i % 4 + 1) hours late."
    }

    @Test func aPublishedDictionaryIsUsedBetweenRelaysThatHoldItAndARelayThatLacksItKeepsAsksAndDelivers() throws {
        let dirs = try R.federation(["alpha", "bravo", "charlie"])
        let (alpha, bravo, charlie) = (dirs[0], dirs[1], dirs[2])
        for (to, of) in [(alpha, bravo), (alpha, charlie), (bravo, alpha), (bravo, charlie), (charlie, alpha), (charlie, bravo)] {
            #expect(try R.run(["peers", "add", "--data-dir", to, try self.identityCode(of)]).0 == 0)
        }
        let (a, b) = (try R.id(alpha), try R.id(bravo))
        for d in [bravo, charlie] {
            let conf = d + "/relay.conf"
            try (R.text(conf) + "\ngroup = water-committee\n").write(toFile: conf, atomically: true, encoding: .utf8)
        }

        // Nothing to train on yet: refused, saying how many texts it has and needs.
        let (rc0, _, err0) = try R.run(["dict", "train", "--data-dir", alpha])
        #expect(rc0 == 65, "\(err0)")
        #expect(err0.contains("can read 0 texts") && err0.contains("at least 40") && R.count("\n", in: err0) == 1, "\(err0)")

        // Sixty notices in alpha's inbox (sent to itself), then a dictionary trained on them.
        for i in 0..<60 { #expect(try R.run(["send", "--data-dir", alpha, "--to", a, Self.notice(i)]).0 == 0) }
        let (rc1, out1, err1) = try R.run(["dict", "train", "--data-dir", alpha, "--size", "4096"])
        #expect(rc1 == 0, "\(err1)")
        #expect(out1.contains("trained on 48 of the 60 texts") && out1.contains("held-out 12 texts compress to"), "\(out1)")
        let trained = try #require(try self.dictionaries(alpha).first)
        let id = try #require(trained["id"] as? Int)
        #expect(trained["state"] as? String == "trained")
        #expect((trained["ratio"] as? Double ?? 1) < (trained["ratioDefault"] as? Double ?? 0), "\(trained)")
        let (rc2, out2, err2) = try R.run(["dict", "publish", "--data-dir", alpha])
        #expect(rc2 == 0 && out2.contains("dictionary \(id) (version 1) published"), "\(out2) \(err2)")

        // alpha and bravo on one line, through a tap that can hold alpha's frames back (so what alpha queued is
        // still in its store to look at, not already taken by bravo); charlie, to go behind bravo, is not running yet.
        let tap = try FrameTap()
        let cable = try VirtualCable()
        defer {
            tap.stop()
            cable.stop()
        }
        let ra = try R.start(["run", "--data-dir", alpha, "--link", "serial:\(tap.pathA):115200"], log: alpha + "/run.log")
        let rb = try R.start(["run", "--data-dir", bravo, "--link", "serial:\(tap.pathB):115200",
                              "--link", "serial:\(cable.pathA):115200"], log: bravo + "/run.log")
        var rc: Process? = nil
        defer {
            R.stop(ra)
            R.stop(rb)
            if let rc { R.stop(rc) }
        }
        // bravo takes the dictionary in (signed by alpha), and alpha hears that bravo holds it.
        let held = try R.wait(90) {
            try self.dictionaries(bravo).contains { $0["id"] as? Int == id && $0["state"] as? String == "received" }
                && (try self.dictionaries(alpha).first { $0["id"] as? Int == id }?["heldBy"] as? [String] ?? []).contains(b)
        }
        #expect(held, "bravo: \(String(describing: try? self.dictionaries(bravo))); alpha: \(String(describing: try? self.dictionaries(alpha))); bravo's log: \(R.text(bravo + "/run.log").suffix(1500))")

        // alpha's next message to bravo names the dictionary and is smaller than with dictionary 1.
        let text = Self.notice(1_000)
        tap.setPassing(false, from: .a)
        let (rc3, out3, err3) = try R.run(["send", "--data-dir", alpha, "--to", b, text])
        #expect(rc3 == 0, "\(err3)")
        let direct = out3.trimmingCharacters(in: .whitespacesAndNewlines)
        let made = try self.queuedBundle(alpha, direct)
        // bravo said it reads bare blocks (flag B with its dictionaries, SPEC 5.10), so the direct message goes bare
        // (SPEC 7.2), naming the dictionary.
        #expect(made.compression == .zstdBlock(UInt8(id)) && made.isEncrypted, "\(made.compression)")
        let withDefault = BodyCompressor().compress(Array(text.utf8)).1.count
        #expect(made.body.count - 16 < withDefault, "\(made.body.count - 16) B of compressed text with dictionary \(id), \(withDefault) B with dictionary 1")
        tap.setPassing(true, from: .a)
        #expect(try R.wait(60) { try R.inbox(bravo).contains { $0["id"] as? String == direct && $0["text"] as? String == text } },
                "bravo's inbox: \(String(describing: try? R.inbox(bravo)))")

        // An alert to the water committee (bravo and charlie are members): every neighbour of alpha (bravo) holds the
        // dictionary, so it is used (the text is like those it was trained on, so it gives the smallest body).
        let alertText = "ALERT " + Self.notice(2_000)
        tap.setPassing(false, from: .a)
        let (rc4, out4, err4) = try R.run(["send", "--data-dir", alpha, "--group", "water-committee", "--kind", "alert", alertText])
        #expect(rc4 == 0, "\(err4)")
        let alert = out4.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try self.queuedBundle(alpha, alert).compression == .zstdDictionary(UInt8(id)))
        tap.setPassing(true, from: .a)
        #expect(try R.wait(60) { try R.inbox(bravo).contains { $0["id"] as? String == alert } })

        // charlie has not met the federation since: the alert reaches it on a stick, without the dictionary. It is
        // kept unread and shown as waiting for the dictionary.
        let stick = charlie + "/../stick.cba"
        let (rc5, _, err5) = try R.run(["export", "--data-dir", bravo, "--group", "water-committee", stick])
        #expect(rc5 == 0, "\(err5)")
        let (rc6, out6, err6) = try R.run(["import", "--data-dir", charlie, stick])
        #expect(rc6 == 0 && out6.contains("1 bundles"), "\(out6) \(err6)")
        #expect(!(try R.inbox(charlie).contains { $0["id"] as? String == alert }))
        let status = try R.run(["status", "--data-dir", charlie]).1
        #expect(status.contains("waiting for a dictionary (kept unread, asked the neighbours for it): 1")
                && status.contains("\(alert) alert from \(a)") && status.contains("compressed with dictionary \(id), which this relay lacks"), "\(status)")
        let kept = try self.feed(charlie).filter { $0["type"] as? String == "waiting" && $0["bundle"] as? String == alert }
        #expect(kept.contains { ($0["detail"] as? String ?? "").contains("compressed with dictionary \(id), which this relay lacks") },
                "charlie's feed: \(((try? self.feed(charlie)) ?? []).map { "\($0["type"] ?? "") \($0["bundle"] ?? "") \($0["detail"] ?? "")" })")

        // Started behind bravo, it asks its neighbours for the dictionary, bravo sends it, and the alert is delivered.
        rc = try R.start(["run", "--data-dir", charlie, "--link", "serial:\(cable.pathB):115200"], log: charlie + "/run.log")
        let delivered = try R.wait(120) { try R.inbox(charlie).contains { $0["id"] as? String == alert && $0["text"] as? String == alertText } }
        #expect(delivered, "charlie's log: \(R.text(charlie + "/run.log").suffix(2000))")
        let log = R.text(charlie + "/run.log")
        #expect(log.contains("asking the neighbours for dictionary \(id)") && log.contains("dictionary \(id) version 1 from \(a) received and kept"),
                "charlie's log: \(log.suffix(2000))")
        let charlieID = try R.id(charlie)
        #expect(try R.wait(30) { R.text(bravo + "/run.log").contains("dictionary \(id) asked for by \(charlieID)") },
                "bravo's log: \(R.text(bravo + "/run.log").suffix(1500))")
        #expect(!(try R.run(["status", "--data-dir", charlie]).1.contains("waiting for a dictionary")))
        #expect(try self.dictionaries(charlie).contains { $0["id"] as? Int == id })
    }

    @Test func trainRefusesABadSizeAndPublishRefusesWhatIsNotThere() throws {
        let dirs = try R.federation(["alpha"])
        let (rc, _, err) = try R.run(["dict", "train", "--data-dir", dirs[0], "--size", "100"])
        #expect(rc == 64 && err.contains("--size 100") && R.count("\n", in: err) == 1, "\(err)")
        let (rc2, _, err2) = try R.run(["dict", "publish", "--data-dir", dirs[0]])
        #expect(rc2 == 64 && err2.contains("no dictionary trained here"), "\(err2)")
        let (rc3, out3, _) = try R.run(["dict", "list", "--data-dir", dirs[0]])
        #expect(rc3 == 0 && out3.contains("dictionary 1: shipped with Courier"), "\(out3)")
    }
}
