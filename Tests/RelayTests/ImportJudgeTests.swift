import CourierWire
import Foundation
import Testing

/// `relay import` judges each bundle as a link's intake does, without building an engine (ArchiveImport): a forged
/// bundle is refused with its reason in the change feed and `relay status`, and what is delivered is receipted.
@Suite(.serialized, .timeLimit(.minutes(20))) struct ImportJudgeTests {
    func json(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func networkKey(_ dir: String) throws -> NetworkKey {
        let o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/network.json"))) as? [String: Any]
        let hex = try #require(o?["key"] as? String)
        let bytes = try #require([UInt8](hex: hex))
        return try NetworkKey(bytes: bytes)
    }

    @Test func aForgedBundleOnAStickIsRefusedInTheFeedAndStatusAndTheRestIsReceipted() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let code = (self.json(try R.run(["peers", "--data-dir", a, "--json"]).1).first?["identityCode"] as? String) ?? ""
        #expect(try R.run(["peers", "add", "--data-dir", b, code]).0 == 0)
        let (rc1, textOut, e1) = try R.run(["send", "--data-dir", a, "--to", idB, "--unknown-ok", "--no-encrypt", "The pump at the upper well is mended."])
        let (rc2, alertOut, e2) = try R.run(["send", "--data-dir", a, "--everyone", "--kind", "alert", "Flood warning: the lower bridge is closed."])
        #expect(rc1 == 0 && rc2 == 0, "\(e1) \(e2)")
        let text = textOut.trimmingCharacters(in: .whitespacesAndNewlines)
        let alert = alertOut.trimmingCharacters(in: .whitespacesAndNewlines)
        let stick = a + "/stick.cba"
        #expect(try R.run(["export", "--data-dir", a, stick]).0 == 0)

        // On the way, the text's origin signature is changed (its last byte): the archive is written again under the
        // federation's key, as a member could.
        let key = try self.networkKey(a)
        var archive = try BundleArchive(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: stick))), networkKey: key)
        var forged = 0
        archive.bundles = try archive.bundles.map { bytes in
            guard try CourierBundle(decoding: bytes).id.description == text else { return bytes }
            forged += 1
            var f = bytes
            f[f.count - 1] ^= 0x01
            return f
        }
        #expect(forged == 1)
        try Data(archive.encoded(networkKey: key)).write(to: URL(fileURLWithPath: stick))

        let (rc, out, err) = try R.run(["import", "--data-dir", b, stick])
        #expect(rc == 65, "\(out) \(err)")
        #expect(out.contains("1 delivered") && out.contains("1 refused"), "\(out)")
        #expect(out.contains("refused: \(text): origin signature does not verify"), "\(out)")
        #expect(err.contains("1 bundle was refused (see above); the rest were imported"), "\(err)")

        let feed = self.json(try R.run(["queue", "tail", "--data-dir", b, "--json", "--no-follow", "--since", "0"]).1)
        let refused = feed.filter { $0["type"] as? String == "refused" && $0["bundle"] as? String == text }
        #expect(refused.count == 1 && (refused.first?["detail"] as? String ?? "").contains("origin signature does not verify"), "\(feed)")
        let status = self.json(try R.run(["status", "--data-dir", b, "--json"]).1).first ?? [:]
        #expect((status["gaveUp"] as? [String: Any])?["refused"] as? Int == 1, "\(status)")
        let inbox = Set(try R.inbox(b).compactMap { $0["id"] as? String })
        #expect(inbox.contains(alert) && !inbox.contains(text), "\(inbox)")
        // The alert delivered is receipted to alpha: a receipt bundle queued by the import, for the running relay to send.
        let queue = self.json(try R.run(["queue", "list", "--data-dir", b, "--json"]).1)
        let receipts = queue.filter { $0["kind"] as? String == "receipt" }
        #expect(receipts.count == 1, "\(queue)")
        // Alpha's stick again: the alert is already here; the forgery is refused again (a refused bundle is not
        // remembered as seen, on a link either).
        let (rc3, out3, _) = try R.run(["import", "--data-dir", b, stick])
        #expect(rc3 == 65 && out3.contains("1 already here") && out3.contains("1 refused"), "\(out3)")
    }
}
