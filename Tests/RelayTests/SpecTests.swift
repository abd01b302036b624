import CourierLinks
import CourierWire
import Foundation
import Testing

/// What protocol/SPEC.md promises, checked on real relays: the 64-byte minimum MTU, names at small MTUs, bundles
/// of kinds this version does not know.
@Suite(.serialized, .timeLimit(.minutes(20))) struct SpecTests {
    /// Two relays on framed serial links of a small MTU: the announce is sent in parts that fit (SPEC 9.2), so
    /// they learn each other, with the name, and a message that needs fragments arrives.
    @Test(arguments: [64, 96]) func twoRelaysMeetAtASmallMTU(mtu: Int) throws {
        let dirs = try R.federation(["well", "committee"])
        let (idA, idB) = (try R.id(dirs[0]), try R.id(dirs[1]))
        let cable = try VirtualCable()
        defer { cable.stop() }
        let a = try R.start(["run", "--data-dir", dirs[0], "--link", "serial:\(cable.pathA):115200,mtu=\(mtu)"], log: dirs[0] + "/run.log")
        let b = try R.start(["run", "--data-dir", dirs[1], "--link", "serial:\(cable.pathB):115200,mtu=\(mtu)"], log: dirs[1] + "/run.log")
        defer { R.stop(a); R.stop(b) }
        var status = ""
        let heard = try R.wait(60) {
            status = try R.run(["status", "--data-dir", dirs[0]]).1
            return status.contains("neighbour \(idB) committee")
        }
        #expect(heard, "at MTU \(mtu) the well never heard the committee by name: \(status)")
        let other = try R.wait(30) { try R.run(["status", "--data-dir", dirs[1]]).1.contains("neighbour \(idA) well") }
        #expect(other, "at MTU \(mtu) the committee never heard the well by name")
        // A message that needs several fragments at this MTU.
        let text = "The pump at the upper well has been broken for nine days; the committee meets on Friday at the school."
        let (rc, sent, err) = try R.run(["send", "--data-dir", dirs[0], "--to", idB, "--kind", "grievance", text])
        #expect(rc == 0, "send: \(err)")
        let id = sent.trimmingCharacters(in: .whitespacesAndNewlines)
        let delivered = try R.wait(60) {
            try R.inbox(dirs[1]).contains { $0["id"] as? String == id && $0["text"] as? String == text }
        }
        #expect(delivered, "at MTU \(mtu) the grievance never arrived")
    }

    /// A join code whose flags name a feature this version does not know (SPEC 19.1) is refused with one line and
    /// exit 64, not joined as if the flag were absent.
    @Test func aJoinCodeFromANewerCourierIsRefused() throws {
        let root = R.tempDir()
        #expect(try R.run(["init", "--data-dir", root + "/a", "--name", "a"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", root + "/a"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let (key, _) = try JoinCode.decode(code)
        let newer = JoinCode.prefix + CheckedBase32.encode([0x02] + key.bytes)
        let (rc, _, err) = try R.run(["init", "--data-dir", root + "/b", "--join", newer])
        #expect(rc == 64, "\(err)")
        #expect(err.contains("update Courier") && err.split(separator: "\n").count == 1, "\(err)")
        #expect(!FileManager.default.fileExists(atPath: root + "/b/network.json"))
        // Read out in groups and upper case, the real code still joins.
        let spoken = stride(from: 0, to: code.count, by: 5).map { i -> String in
            let s = code.index(code.startIndex, offsetBy: i)
            return String(code[s..<code.index(s, offsetBy: min(5, code.count - i))])
        }.joined(separator: " ").uppercased()
        let (rc2, _, err2) = try R.run(["init", "--data-dir", root + "/c", "--name", "c", "--join", spoken])
        #expect(rc2 == 0, "\(err2)")
    }

    /// A bundle of a kind this version does not know (here 10, from a newer sender; 9 is a federation dictionary) addressed to this relay is
    /// delivered marked with its kind number, its content not read as text (SPEC 6.8, 6.14).
    @Test func anUnknownKindIsDeliveredUninterpreted() throws {
        let dirs = try R.federation(["clinic"])
        let net = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dirs[0] + "/network.json"))) as? [String: Any]
        let keyHex = try #require(net?["key"] as? String)
        let key = try NetworkKey(bytes: stride(from: 0, to: keyHex.count, by: 2).map {
            let i = keyHex.index(keyHex.startIndex, offsetBy: $0)
            return UInt8(keyHex[i..<keyHex.index(i, offsetBy: 2)], radix: 16)!
        })
        let newer = NodeIdentity()
        let content: [UInt8] = [0x00, 0xFF, 0x10] + Array("map tile".utf8)
        let created = CourierTime.minutes(unixSeconds: Int64(Date().timeIntervalSince1970))
        let b = try CourierBundle.make(kind: Kind(code: 10), destination: .everyone, content: content, origin: newer,
                                       created: created, sequence: 1, options: BundleOptions(kind: Kind(code: 10)),
                                       compressor: BodyCompressor())
        let file = dirs[0] + "/newer.cba"
        let archive = BundleArchive(created: created, writer: newer.nodeID, bundles: [b.encode()])
        #expect(FileManager.default.createFile(atPath: file, contents: Data(archive.encoded(networkKey: key))))
        let (rc, _, err) = try R.run(["import", "--data-dir", dirs[0], file])
        #expect(rc == 0, "import: \(err)")
        let inbox = try R.inbox(dirs[0])
        let m = try #require(inbox.first { $0["id"] as? String == b.id.description }, "not delivered: \(inbox)")
        #expect(m["kind"] as? String == "kind10")
        #expect(m["text"] == nil, "the content of an unknown kind was shown as text: \(m)")
        #expect(m["contentHex"] as? String == content.map { String(format: "%02x", $0) }.joined())
        let plain = try R.run(["inbox", "--data-dir", dirs[0]]).1
        #expect(plain.contains("kind10") && plain.contains("unknown kind 10") && plain.contains("11 bytes"), "\(plain)")
        #expect(!plain.contains("map tile"), "\(plain)")
    }
}
