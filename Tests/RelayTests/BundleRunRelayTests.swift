import CourierLinks
import CourierWire
import Foundation
import Testing

/// Issue 16, fewer bytes: a relay's own messages waiting for one neighbour go several to a record (bundle runs, SPEC
/// 5.11) and come back acknowledged in ranges (5.5, flag W), between relays that both announce capability bit 4.
/// Real `relay` processes made with init / invite / init --join, real SQLite files, a `FrameTap` (two real ptys and a
/// wiretap) between them; the frames are opened with the federation's key, as an insider would.
@Suite(.serialized, .timeLimit(.minutes(20))) struct BundleRunRelayTests {
    func identityCode(_ dir: String) throws -> String {
        let out = try R.run(["peers", "--data-dir", dir, "--json"]).1
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try #require(o["identityCode"] as? String)
    }

    @Test func messagesWaitingForOneNeighbourGoInRunsAndAreAcknowledgedInRanges() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (alpha, bravo) = (dirs[0], dirs[1])
        #expect(try R.run(["peers", "add", "--data-dir", alpha, try self.identityCode(bravo)]).0 == 0)
        let b = try R.id(bravo)
        // Eight short messages queued while alpha runs no link: they wait, then go at once when bravo is heard.
        var ids: [String] = []
        for i in 0..<8 {
            let (rc, out, err) = try R.run(["send", "--data-dir", alpha, "--to", b, "Sack \(i) of seed for the lower fields, at the mill."])
            #expect(rc == 0, "\(err)")
            ids.append(out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let tap = try FrameTap()
        defer { tap.stop() }
        let ra = try R.start(["run", "--data-dir", alpha, "--link", "serial:\(tap.pathA):115200"], log: alpha + "/run.log")
        let rb = try R.start(["run", "--data-dir", bravo, "--link", "serial:\(tap.pathB):115200"], log: bravo + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        let arrived = try R.wait(120) { Set(try R.inbox(bravo).compactMap { $0["id"] as? String }).isSuperset(of: ids) }
        #expect(arrived, "bravo's inbox: \(String(describing: try? R.inbox(bravo))); alpha's log: \(R.text(alpha + "/run.log").suffix(1500))")
        let m = try R.inbox(bravo).first { $0["id"] as? String == ids[3] }
        #expect(m?["text"] as? String == "Sack 3 of seed for the lower fields, at the mill." && m?["encrypted"] as? Bool == true, "\(String(describing: m))")
        // What crossed the line, opened with the federation's key.
        let (ma, mb) = (try Member(alpha), try Member(bravo))
        let opener = PacketOpener(networkKey: ma.key)
        let known = [ma.identity.nodeID, mb.identity.nodeID]
        func records(_ side: FrameTap.Side) -> [[Record]] {
            tap.frames(from: side).compactMap { f in try? opener.open(f.packet, candidates: { s in known.filter { $0.short == s } }).records }
        }
        let fromAlpha = records(.a)
        let own = fromAlpha.map { $0.compactMap { r -> BundleRecord? in if case .bundle(let x) = r, x.nextHop == mb.identity.nodeID.short { x } else { nil } } }
        // A bundle cut across two packets (5.12) crosses as a head and a rest.
        let rests = fromAlpha.flatMap { $0 }.filter { if case .piece(let x) = $0 { !x.isHead } else { false } }.count
        #expect(own.flatMap { $0 }.count + rests >= ids.count, "\(own.map(\.count)) bundles a packet, \(rests) cut")
        // Decoded from runs (record type 8): several in one packet.
        #expect(own.flatMap { $0 }.allSatisfy { $0.inRun }, "not every bundle went in a run")
        #expect(own.contains { $0.count >= 2 }, "no packet carried two of them: \(own.map(\.count))")
        // bravo acknowledges every one of them, in the ranges form.
        let transfers = Set(own.flatMap { $0 }.compactMap(\.transfer))
        func acks() -> [AckRecord] {
            records(.b).flatMap { $0 }.compactMap { r -> AckRecord? in if case .ack(let a) = r, a.target == ma.identity.nodeID.short { a } else { nil } }
        }
        let acked = try R.wait(30) { Set(acks().flatMap { $0.entries.map(\.transfer) }).isSuperset(of: transfers) }
        #expect(acked, "acks: \(acks()); transfers \(transfers.sorted())")
        #expect(!acks().isEmpty && acks().allSatisfy { $0.isRangesForm }, "acks: \(acks())")
    }
}
