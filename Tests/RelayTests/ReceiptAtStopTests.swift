import CourierLinks
import Foundation
import Testing

/// A relay stopped by its service manager right after a delivery still tells the origin (issue 10, nothing lost in
/// silence): the receipt, still being aggregated in memory when SIGTERM came, is stored at the stop and goes out at
/// the next start. Real relay processes on a pty cable.
@Suite(.serialized, .timeLimit(.minutes(20))) struct ReceiptAtStopTests {
    func outboxState(_ dir: String, _ id: String) throws -> String? {
        let out = try R.run(["outbox", "--data-dir", dir, "--json"]).1
        for line in out.split(separator: "\n") {
            if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["id"] as? String == id {
                return o["state"] as? String
            }
        }
        return nil
    }

    @Test func aReceiptWaitingWhenTheRelayStopsGoesOutAtTheNextStart() throws {
        let dirs = try R.federation(["alpha", "bravo"])
        let (a, b) = (dirs[0], dirs[1])
        let idB = try R.id(b)
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        defer { R.stop(ra) }
        var rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        let (rc, out, err) = try R.run(["send", "--data-dir", a, "--to", idB, "--unknown-ok", "Water committee meets at noon."])
        #expect(rc == 0, "\(err)")
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.inbox(b).contains { $0["id"] as? String == id } }, "never delivered")
        // Stopped at once, well inside the receipt's aggregation time (60 s).
        R.stop(rb)
        #expect(try self.outboxState(a, id) != "delivered", "the receipt went out before the stop; the test proves nothing")
        rb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run2.log")
        defer { R.stop(rb) }
        var state: String?
        let receipted = try R.wait(60) {
            state = try self.outboxState(a, id)
            return state == "delivered"
        }
        #expect(receipted, "alpha's outbox says \(state ?? "nothing") for \(id)")
    }
}
