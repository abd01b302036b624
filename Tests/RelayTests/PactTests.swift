import CourierLinks
import CourierWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mutual-aid pacts (issue 17): real `relay` processes on real ptys (`VirtualCable`), a federation made with
/// `init`, `invite` and `init --join` only.
///
/// 8 minutes a test: the triangle runs four relays past a 54 s deadline; alone it takes about 62 s, on the loaded
/// 2-core CI box with every other suite at once up to 230 s.
@Suite(.serialized, .timeLimit(.minutes(20))) struct PactTests {
    func json(_ args: [String]) throws -> [String: Any]? {
        let (rc, out, _) = try R.run(args)
        guard rc == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
    }

    func history(_ dir: String, pact: String = "river") throws -> [String: Any]? { try self.json(["pact", "history", pact, "--data-dir", dir, "--json"]) }

    /// The history as canonical text, to compare members' ledgers byte for byte.
    func canonical(_ dir: String, pact: String = "river") throws -> String? {
        guard let h = try self.history(dir, pact: pact) else { return nil }
        return String(decoding: try JSONSerialization.data(withJSONObject: h, options: [.sortedKeys]), as: UTF8.self)
    }

    func knownNodes(_ dir: String) throws -> Set<String> {
        guard let o = try self.json(["peers", "--data-dir", dir, "--json"]) else { return [] }
        return Set(((o["peers"] as? [[String: Any]]) ?? []).compactMap { $0["node"] as? String })
    }

    func feed(_ dir: String) throws -> [[String: Any]] {
        let out = try R.run(["queue", "tail", "--data-dir", dir, "--json", "--since", "0", "--no-follow"]).1
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func pledges(_ h: [String: Any]?) -> [String: [String: Any]] {
        let q = ((h?["requests"] as? [[String: Any]]) ?? []).first
        var out: [String: [String: Any]] = [:]
        for p in (q?["pledges"] as? [[String: Any]]) ?? [] { if let n = p["node"] as? String { out[n] = p } }
        return out
    }

    func escalated(_ h: [String: Any]?) -> Bool { (((h?["requests"] as? [[String: Any]]) ?? []).first?["escalated"] as? Bool) == true }

    /// A triangle of trust (north, east, south: three assemblies, each cabled to the other two) and a fourth relay
    /// (far, cabled to north). All four make a pact; north asks for aid while south is offline; east and far pledge
    /// in time; at the deadline north escalates by itself; south returns, receives the request, the pledges and the
    /// escalation, pledges late; every member's ledger is the same.
    @Test func pactTriangleWithAnOfflineMember() throws {
        let dirs = try R.federation(["north", "east", "south", "far"])
        let (north, east, south, far) = (dirs[0], dirs[1], dirs[2], dirs[3])
        let ids = try dirs.map(R.id)
        let ne = try VirtualCable(), es = try VirtualCable(), sn = try VirtualCable(), nf = try VirtualCable()
        defer { for c in [ne, es, sn, nf] { c.stop() } }
        func serial(_ p: String) -> [String] { ["--link", "serial:\(p):115200"] }
        let southArgs = ["run", "--data-dir", south] + serial(es.pathB) + serial(sn.pathA)
        var relays = [
            try R.start(["run", "--data-dir", north] + serial(ne.pathA) + serial(sn.pathB) + serial(nf.pathA), log: north + "/run.log"),
            try R.start(["run", "--data-dir", east] + serial(ne.pathB) + serial(es.pathA), log: east + "/run.log"),
            try R.start(southArgs, log: south + "/run.log"),
            try R.start(["run", "--data-dir", far] + serial(nf.pathB), log: far + "/run.log"),
        ]
        defer { for p in relays { R.stop(p) } }

        // Every relay learns every other's keys through the federation (signed pact records are read only then).
        let keys = try R.wait(150) { try dirs.enumerated().allSatisfy { i, d in try Set(ids.enumerated().filter { $0.offset != i }.map(\.element)).isSubset(of: self.knownNodes(d)) } }
        #expect(keys, "keys did not reach every relay")

        // The pact: north makes it, naming the others; each accepts with its own signed record.
        let (rc, out, err) = try R.run(["pact", "create", "river", "--data-dir", north, "--member", ids[1], ids[2], ids[3],
                                        "--respond-within", "0.015", "--pledge", "WATER: 500 l a day"])
        #expect(rc == 0, "pact create: \(err)")
        let pactID = out.split(separator: "\n").last.map(String.init) ?? ""
        #expect(pactID.hasPrefix(ids[0] + "."), "pact create printed \(out)")
        for (d, pledge) in [(east, "FOOD: 20 sacks of flour"), (south, "FUEL: 100 l diesel"), (far, "REFUGE: 30 beds")] {
            let arrived = try R.wait(90) { try R.run(["pact", "show", "river", "--data-dir", d]).0 == 0 }
            #expect(arrived, "the pact never reached \(d)")
            let (jrc, _, jerr) = try R.run(["pact", "join", "river", "--data-dir", d, "--pledge", pledge])
            #expect(jrc == 0, "pact join at \(d): \(jerr)")
        }
        func allJoined(_ d: String) throws -> Bool {
            ((try self.history(d)?["members"] as? [[String: Any]]) ?? []).filter { ($0["joined"] as? Bool) == true }.count == 4
        }
        let joined = try R.wait(90) { try dirs.allSatisfy(allJoined) }
        #expect(joined, "not every relay saw all four members join")

        // South goes offline; north asks for aid under the pact.
        R.stop(relays[2])
        let (arc, aout, aerr) = try R.run(["send", "--data-dir", north, "--kind", "aid", "--pact", "river", "The east quarter needs 200 litres of water tonight."])
        #expect(arc == 0, "send --pact: \(aerr)")
        let request = aout.trimmingCharacters(in: .whitespacesAndNewlines)

        // East answers with a plain offer, far with `pact answer`: both in time.
        for d in [east, far] {
            let got = try R.wait(40) { try R.inbox(d).contains { $0["id"] as? String == request } }
            #expect(got, "the request did not reach \(d)")
            let status = try R.run(["status", "--data-dir", d]).1
            #expect(status.contains("OBLIGATION"), "status at \(d) shows no obligation: \(status)")
        }
        let (orc, _, oerr) = try R.run(["send", "--data-dir", east, "--kind", "offer", "--reference", request, "--to", ids[0], "Two tanks of 100 l by 20:00."])
        #expect(orc == 0, "offer: \(oerr)")
        let (prc, _, perr) = try R.run(["pact", "answer", request, "--data-dir", far, "A cart with 50 l now."])
        #expect(prc == 0, "pact answer: \(perr)")
        let tallied = try R.wait(40) {
            let p = self.pledges(try self.history(north))
            return p[ids[1]]?["in_time"] as? Bool == true && p[ids[3]]?["in_time"] as? Bool == true
        }
        let northNow = try self.history(north)
        #expect(tallied, "north did not tally both pledges in time: \(String(describing: northNow))")

        // The water from east arrived: north confirms it, for every member's ledger.
        let (crc, _, cerr) = try R.run(["pact", "confirm", request, ids[1], "--data-dir", north])
        #expect(crc == 0, "pact confirm: \(cerr)")

        // The deadline passes: north escalates on its own, naming south.
        let escalatedAtNorth = try R.wait(120) { self.escalated(try self.history(north)) }
        #expect(escalatedAtNorth, "north never escalated")
        let northLog = R.text(north + "/run.log")
        #expect(northLog.contains("no pledge yet from \(ids[2])"), "north gave no reminder before the deadline")
        let details = try self.feed(north).compactMap { $0["type"] as? String == "pact" ? $0["detail"] as? String : nil }
        #expect(details.contains { $0.hasPrefix("reminder:") } && details.contains { $0.hasPrefix("escalated:") }, "north's feed: \(details)")
        let farAlert = try R.wait(40) { try R.inbox(far).contains { $0["kind"] as? String == "alert" && ($0["text"] as? String ?? "").contains(ids[2]) } }
        #expect(farAlert, "the escalation alert did not reach far")

        // South returns: the request, the pledges and the escalation reach it; it pledges late.
        relays[2] = try R.start(southArgs, log: south + "/run2.log")
        let southSees = try R.wait(90) {
            let h = try self.history(south)
            return self.escalated(h) && self.pledges(h)[ids[3]] != nil
        }
        let southNow = try self.history(south)
        #expect(southSees, "south did not get the escalation and pledges: \(String(describing: southNow))")
        let southAlert = try R.inbox(south).contains { $0["kind"] as? String == "alert" && ($0["text"] as? String ?? "").contains(ids[2]) }
        #expect(southAlert, "the escalation is not in south's inbox")
        let (lrc, _, lerr) = try R.run(["pact", "answer", request, "--data-dir", south, "Diesel for the pump, tomorrow."])
        #expect(lrc == 0, "late answer: \(lerr)")

        // Every member's ledger the same: east and far in time, south late, escalated.
        let same = try R.wait(90) {
            let all = try dirs.map { try self.canonical($0) }
            let h = try self.history(east)
            return all[0] != nil && Set(all).count == 1 && self.pledges(h)[ids[2]]?["answer"] as? String == "late"
        }
        let ledgers = try dirs.map { try self.canonical($0) }
        #expect(same, "ledgers differ: \(ledgers)")
        let h = try self.history(far)
        let p = self.pledges(h)
        #expect(p[ids[1]]?["answer"] as? String == "in time" && p[ids[3]]?["answer"] as? String == "in time")
        #expect(p[ids[1]]?["delivered"] as? Bool == true && p[ids[3]]?["delivered"] as? Bool == false, "deliveries confirmed: \(p)")
        #expect(p[ids[2]]?["answer"] as? String == "late" && p[ids[2]]?["in_time"] as? Bool == false)
        #expect(self.escalated(h))
        let csv = try R.run(["pact", "history", "river", "--data-dir", east, "--csv"]).1
        #expect(csv.split(separator: "\n").count == 4, "csv: \(csv)")
    }

    /// `relay demo` shows a pact: made, joined by two members, an aid request answered by both in time; the
    /// folders it leaves hold the same ledger at every member.
    @Test func demoShowsAPact() throws {
        let root = R.tempDir() + "/demo"
        let (rc, out, err) = try R.run(["demo", "--dir", root, "--timeout", "120", "--baud", "115200"])
        #expect(rc == 0, "demo failed: \(err)")
        #expect(out.contains("make a mutual-aid pact") && out.contains("the village's ledger"), "\(out)")
        #expect(R.count(": in time, ", in: out) == 2, "\(out)")
        let ledgers = try ["village", "committee", "clinic"].map { try self.canonical(root + "/" + $0, pact: "river-towns") }
        #expect(ledgers[0] != nil && Set(ledgers).count == 1, "\(ledgers)")
        let p = self.pledges(try self.history(root + "/clinic", pact: "river-towns"))
        #expect(p.count == 2 && p.values.allSatisfy { $0["in_time"] as? Bool == true }, "\(p)")
    }

    /// A pact record that must not count is left out of the ledger, logged, in the change feed and `relay status`:
    /// a join signed by a node the pact does not name, and an unsigned join claiming a member (a hostile member
    /// writes both with `courier-dev forge` on the line).
    @Test func recordsThatDoNotCountAreLeftOutAndReported() throws {
        let dirs = try R.federation(["home", "member", "outsider"])
        let (home, member, outsider) = (dirs[0], dirs[1], dirs[2])
        let cable = try VirtualCable()
        defer { cable.stop() }
        let relay = try R.start(["run", "--data-dir", home, "--link", "serial:\(cable.pathA):115200"], log: home + "/run.log")
        defer { R.stop(relay) }
        // The member's announce and a signed text make it known at home.
        try Forger.forge(["--member", member, "--origin", member, "--sign", "origin", "--line", cable.pathB, "Hello from the member."])
        let memberID = try R.id(member)
        let known = try R.wait(30) { try R.inbox(home).contains { $0["from"] as? String == memberID } }
        #expect(known, "the member's text never arrived")
        let (rc, out, err) = try R.run(["pact", "create", "river", "--data-dir", home, "--member", memberID, "--respond-within", "1", "--pledge", "WATER"])
        #expect(rc == 0, "\(err)")
        let pact = try #require(BundleID(out.split(separator: "\n").last.map(String.init) ?? ""))
        let join = try PactRecord(pact: pact, body: .join(pledge: "nothing")).encode().hex
        try Forger.forge(["--member", outsider, "--origin", outsider, "--sign", "origin", "--line", cable.pathB, "--extension", "4:\(join)",
                      "The outsider joins river."])
        try Forger.forge(["--member", outsider, "--origin", memberID, "--sign", "none", "--line", cable.pathB, "--extension", "4:\(join)",
                      "An unsigned join claiming the member."])
        let reported = try R.wait(30) {
            try R.run(["queue", "tail", "--data-dir", home, "--since", "0", "--no-follow"]).1.components(separatedBy: "left out of the ledger").count - 1 == 2
        }
        let feed = try R.run(["queue", "tail", "--data-dir", home, "--since", "0", "--no-follow"]).1
        #expect(reported, "\(feed)")
        #expect(feed.contains("is not a member of pact river") && feed.contains("its origin signature was not verified here"), "\(feed)")
        #expect(R.text(home + "/run.log").contains("pact record left out of the ledger"))
        #expect(try R.run(["status", "--data-dir", home]).1.contains("pact records left out of the ledger: 2"))
        let members = (try self.json(["pact", "show", "river", "--data-dir", home, "--json"])?["members"] as? [[String: Any]]) ?? []
        #expect(members.filter { $0["joined"] as? Bool == true }.count == 1, "only the creator has joined: \(members)")
    }

    /// Bad input to `relay pact`: one line, exit 64, nothing made.
    @Test func unknownPactNamesAreRefused() throws {
        let dirs = try R.federation(["solo", "other"])
        for args in [["pact", "history", "nosuch"], ["pact", "join", "nosuch", "--pledge", "x"],
                     ["send", "--kind", "aid", "--pact", "nosuch", "help"]] {
            let (rc, out, err) = try R.run(args + ["--data-dir", dirs[0]])
            #expect(rc == 64 && out.isEmpty, "\(args): \(rc) \(out)")
            #expect(err.split(separator: "\n").count == 1 && err.contains("no pact 'nosuch' is known here"), "\(args): \(err)")
        }
        let (rc, _, err) = try R.run(["pact", "create", "river", "--data-dir", dirs[0], "--member", "0badc0de", "--respond-within", "1", "--pledge", "x"])
        #expect(rc == 64 && err.contains("no node 0badc0de is known here"), "\(err)")
        let (rc2, _, err2) = try R.run(["pact", "create", "river", "--data-dir", dirs[0], "--member", "0badc0de", "--respond-within", "0", "--pledge", "x"])
        #expect(rc2 == 64 && err2.contains("--respond-within"), "\(err2)")
    }
}
