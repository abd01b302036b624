import CourierLinks
import CourierWire
import Foundation
import Testing

/// Issue 16, fewer bytes: between relays that both announce capability bit 5, a bundle that does not fit whole in
/// what is left of a packet is cut: its head fills the packet, its rest begins the next one (SPEC 5.12). Real `relay`
/// processes made with init / invite / init --join, real SQLite files, a `FrameTap` (two real ptys and a wiretap);
/// the frames are opened with the federation's key, as an insider would.
@Suite(.serialized, .timeLimit(.minutes(20))) struct CutBundleRelayTests {
    @Test func aBundleCutAcrossTwoPacketsArrivesWholeAndPacketsAreFull() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (alpha, bravo) = (dirs[0], dirs[1])
        let out = try R.run(["peers", "--data-dir", bravo, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(try R.run(["peers", "add", "--data-dir", alpha, try #require(o["identityCode"] as? String)]).0 == 0)
        let b = try R.id(bravo)
        var ids: [String: String] = [:]
        for i in 0..<8 {
            let text = "Sack \(i) of seed for the lower fields is at the mill" + String(repeating: ", and sack \(i + 10)", count: i) + "."
            let (rc, out, err) = try R.run(["send", "--data-dir", alpha, "--to", b, text])
            #expect(rc == 0, "\(err)")
            ids[out.trimmingCharacters(in: .whitespacesAndNewlines)] = text
        }
        let tap = try FrameTap()
        defer { tap.stop() }
        let ra = try R.start(["run", "--data-dir", alpha, "--link", "serial:\(tap.pathA):115200"], log: alpha + "/run.log")
        let rb = try R.start(["run", "--data-dir", bravo, "--link", "serial:\(tap.pathB):115200"], log: bravo + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        let arrived = try R.wait(120) { Set(try R.inbox(bravo).compactMap { $0["id"] as? String }).isSuperset(of: ids.keys) }
        #expect(arrived, "bravo's inbox: \(String(describing: try? R.inbox(bravo))); alpha's log: \(R.text(alpha + "/run.log").suffix(1500))")
        for m in try R.inbox(bravo) {
            guard let id = m["id"] as? String, let text = ids[id] else { continue }
            #expect(m["text"] as? String == text && m["encrypted"] as? Bool == true, "\(m)")
        }
        let (ma, mb) = (try Member(alpha), try Member(bravo))
        let opener = PacketOpener(networkKey: ma.key)
        let known = [ma.identity.nodeID, mb.identity.nodeID]
        let fromAlpha = tap.frames(from: .a).compactMap { f in try? opener.open(f.packet, candidates: { s in known.filter { $0.short == s } }).records }
        let pieces = fromAlpha.flatMap { $0 }.compactMap { r -> RunPiece? in if case .piece(let x) = r, x.nextHop == mb.identity.nodeID.short { x } else { nil } }
        let heads = pieces.filter(\.isHead)
        #expect(!heads.isEmpty, "no bundle was cut: \(zip(tap.frames(from: .a), fromAlpha).map { f, rs in "\(f.packet.count) B: " + rs.map { "\($0)".prefix(40) }.joined(separator: " | ") })")
        // Every head's rest crossed, and the two make one of the messages.
        for h in heads {
            let rest = try #require(pieces.first { !$0.isHead && $0.transfer == h.transfer }, "no rest for transfer \(h.transfer)")
            let bundle = try CourierBundle(decoding: try RunPiece.join(head: h, rest: rest, origin: ma.identity.nodeID.short))
            #expect(ids[bundle.id.description] != nil, "\(bundle.id) is not one of the messages sent")
        }
        // A packet with a head is full: nothing more would fit.
        for f in tap.frames(from: .a) {
            guard let r = try? opener.open(f.packet, candidates: { s in known.filter { $0.short == s } }).records,
                  r.contains(where: { if case .piece(let x) = $0 { x.isHead } else { false } }) else { continue }
            #expect(f.packet.count >= 250, "a packet with a head has \(f.packet.count) B of 255")
        }
        #expect(!R.text(bravo + "/run.log").contains("without its head"), "\(R.text(bravo + "/run.log").suffix(1500))")
    }
}
