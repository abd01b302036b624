import CourierLinks
import CourierWire
import Foundation
import Testing

/// Issue 16, fewer bytes: a direct message end-to-end encrypted to its recipient goes unsigned (its end-to-end tag
/// proves the origin to the recipient, SPEC 6.12), 64 bytes less on the air. Real `relay` processes made with
/// init / invite / init --join, real SQLite files, `VirtualCable`s (two real ptys each) between them.
@Suite(.serialized, .timeLimit(.minutes(20))) struct FewerBytesTests {
    func identityCode(_ dir: String) throws -> String {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try #require(o["identityCode"] as? String)
    }

    func feed(_ dir: String) throws -> [[String: Any]] {
        let out = try R.run(["queue", "tail", "--data-dir", dir, "--json", "--since", "0", "--no-follow"]).1
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The encoded bundle `id` as queued in a relay's database (read with Python's sqlite3 from the real file).
    func queuedBundle(_ dir: String, _ id: String) throws -> [UInt8] {
        let out = try R.exec("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
            for (d,) in c.execute("SELECT hex(data) FROM bundle WHERE printf('%08x.%d.%d', origin, created, sequence) = ?", (sys.argv[2],)): print(d)
            """, dir + "/courier.db", id]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require([UInt8](hex: out.lowercased()), "bundle \(id) not queued in \(dir)")
    }

    @Test func aDirectMessageGoesUnsignedAndItsTagProvesItsOriginThroughTrustPeersRelays() throws {
        let dirs = try R.federation(["alpha", "middle", "bravo"])
        let (alpha, middle, bravo) = (dirs[0], dirs[1], dirs[2])
        // Keys by hand (identity codes); the middle relay and bravo accept only trusted, proven origins.
        for (to, of) in [(alpha, bravo), (bravo, alpha), (middle, alpha), (middle, bravo)] {
            #expect(try R.run(["peers", "add", "--data-dir", to, try self.identityCode(of)]).0 == 0)
        }
        for d in [middle, bravo] {
            let conf = d + "/relay.conf"
            try (R.text(conf) + "\ntrust = peers\n").write(toFile: conf, atomically: true, encoding: .utf8)
        }
        let text = "The pump at the upper well is fixed. Water again from 6:00 tomorrow, two jerrycans a family until Friday."
        let (rc, out, err) = try R.run(["send", "--data-dir", alpha, "--to", try R.id(bravo), "--kind", "text", text])
        #expect(rc == 0, "\(err)")
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines)
        // What alpha made: end-to-end encrypted (E, 0x04 of byte 1) and not signed (S, 0x08): no 64-byte signature.
        let bundle = try self.queuedBundle(alpha, id)
        #expect(bundle.count > 2 && bundle[1] & 0x04 != 0, "not end-to-end encrypted: \(bundle.hex)")
        #expect(bundle.count > 2 && bundle[1] & 0x08 == 0, "signed (64 bytes more): \(bundle.hex)")
        #expect(bundle.count < text.utf8.count + 16 + 24, "\(bundle.count) B for \(text.utf8.count) B of text")

        // alpha - middle - bravo: the middle relay (trust = peers) carries it, bravo reads it as proven.
        let cables = try (0..<2).map { _ in try VirtualCable() }
        defer { cables.forEach { $0.stop() } }
        let ra = try R.start(["run", "--data-dir", alpha, "--link", "serial:\(cables[0].pathA):115200"], log: alpha + "/run.log")
        let rm = try R.start(["run", "--data-dir", middle, "--link", "serial:\(cables[0].pathB):115200",
                              "--link", "serial:\(cables[1].pathA):115200"], log: middle + "/run.log")
        let rb = try R.start(["run", "--data-dir", bravo, "--link", "serial:\(cables[1].pathB):115200"], log: bravo + "/run.log")
        defer { R.stop(ra); R.stop(rm); R.stop(rb) }
        let arrived = try R.wait(120) { try R.inbox(bravo).contains { $0["id"] as? String == id } }
        let middleFeed = try self.feed(middle).map { "\($0["type"] ?? "") \($0["detail"] ?? "")" }
        #expect(arrived, "never delivered; middle's feed: \(middleFeed); bravo's log: \(R.text(bravo + "/run.log").suffix(1500))")
        let m = try #require(try R.inbox(bravo).first { $0["id"] as? String == id })
        #expect(m["text"] as? String == text && m["encrypted"] as? Bool == true && m["proven"] as? Bool == true, "\(m)")
        #expect(!(try self.feed(middle).contains { $0["type"] as? String == "refused" }), "middle refused: \(middleFeed)")
        #expect(try R.inbox(middle).isEmpty, "the middle relay cannot read it")
    }

    @Test func sendSignSignsAnEndToEndMessageForOlderTrustPeersNodes() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (alpha, bravo) = (dirs[0], dirs[1])
        #expect(try R.run(["peers", "add", "--data-dir", alpha, try self.identityCode(bravo)]).0 == 0)
        let (rc, out, err) = try R.run(["send", "--data-dir", alpha, "--to", try R.id(bravo), "--sign", "Signed for the old valley relay."])
        #expect(rc == 0, "\(err)")
        let bundle = try self.queuedBundle(alpha, out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(bundle.count > 66 && bundle[1] & 0x0C == 0x0C, "not signed and end-to-end encrypted: \(bundle.hex)")
    }
}
