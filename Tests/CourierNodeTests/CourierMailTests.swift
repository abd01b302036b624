import CourierSim
import CourierStore
import Foundation
import Testing

/// A courier carries directed mail (issue 13 point 2): a message to one relay, from a village a partition cut off,
/// goes into the courier relay's custody at one village, rides with it, and is handed on at the other.
@Suite(.serialized, .timeLimit(.minutes(20))) struct CourierMailTests {
    /// Two villages of three relays in a chain, joined by one link (a3 – b1) until a partition cuts them apart at
    /// 600 s. Before the cut b3 wrote to a1 (so the relays of both villages know a route to b3: in village a through
    /// a3 and the link now gone). At 900 s a1 writes to b3: custody goes to a3, which holds it (its next hop b1 is
    /// silent). From 1800 s a courier walks through both villages, 900 s at each of a2, a3, b1, b2.
    ///
    ///     a1 ── a2 ── a3 ─╳─ b1 ── b2 ── b3          (courier: a2, a3, b1, b2)
    static let json = """
        {"name": "courier-mail", "seed": 8, "duration": 7200,
         "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
         "nodes": [{"id": "a1", "x": 0, "y": 0}, {"id": "a2", "x": 2000, "y": 0}, {"id": "a3", "x": 4000, "y": 0},
                   {"id": "b1", "x": 30000, "y": 0}, {"id": "b2", "x": 32000, "y": 0}, {"id": "b3", "x": 34000, "y": 0}],
         "links": [{"a": "a1", "b": "a2"}, {"a": "a2", "b": "a3"}, {"a": "a3", "b": "b1"}, {"a": "b1", "b": "b2"},
                   {"a": "b2", "b": "b3"}],
         "traffic": [{"at": 120, "from": "b3", "to": "a1", "kind": "text", "bytes": 60},
                     {"at": 900, "from": "a1", "to": "b3", "kind": "text", "bytes": 60}],
         "events": [{"at": 600, "type": "partition", "groups": [["a1", "a2", "a3"], ["b1", "b2", "b3"]]},
                    {"at": 1800, "type": "courier", "path": ["a2", "a3", "b1", "b2"], "dwell": 900}]}
        """

    /// Every relay's change-feed entries about `id`, one line each (what a failing expectation shows).
    static func story(_ sim: DrillSimulator, _ id: String) throws -> String {
        var lines: [String] = []
        for (i, store) in sim.stores.enumerated() {
            for e in try store.events(after: 0, limit: 100_000) where e.bundle == id {
                lines.append("\(Double(e.at) - DrillSimulator.epoch) \(sim.names[i]) \(e.type.rawValue) \(e.neighbour ?? "") \(e.detail ?? "")")
            }
        }
        return lines.sorted { Double($0.split(separator: " ")[0])! < Double($1.split(separator: " ")[0])! }.joined(separator: "\n")
    }

    @Test func aDirectMessageFromACutOffVillageReachesItsDestinationByCourier() throws {
        let sim = try DrillSimulator(scenario: try Scenario.decode(Data(Self.json.utf8)))
        try sim.run()
        let r = sim.result()
        #expect(r.couriers == 1 && r.sent == 2)
        let b3 = 5, courier = 6
        #expect(sim.names[courier] == "courier-1")
        let before = try #require(sim.deliveredAt[.init(message: 0, recipient: 0)], "b3 to a1 before the cut")
        let s0 = try Self.story(sim, try #require(sim.bundleOf[0]).description)
        #expect(before < 600, "\(s0)")
        let id = try #require(sim.bundleOf[1])
        let story = try Self.story(sim, id.description)
        let at = try #require(sim.deliveredAt[.init(message: 1, recipient: b3)], "a1 to b3 arrives by courier: \(r.delivered) of \(r.sent)\n\(story)")
        #expect(at >= 3_600 && at < 4_500, "once the courier is at b1 (3600 to 4500 s): \(at)\n\(story)")
        // The courier relay took custody of a copy at a3 (which keeps its own: it has no route), carried it, and handed
        // it to b1, which took custody and passed it on to b3; the receipt from b3 then took the courier's copy away.
        let feed = try sim.stores[courier].events(after: 0, limit: 100_000).filter { $0.bundle == id.description }
        func short(_ i: Int) -> String { sim.identities[i].nodeID.short.description }
        func seconds(_ e: StoreEvent) -> Double { Double(e.at) - DrillSimulator.epoch }
        let taken = try #require(feed.first { $0.type == .custodyTaken }, "\(story)")
        #expect(taken.neighbour == short(2) && seconds(taken) >= 2_700 && seconds(taken) < 3_600, "from a3: \(taken)")
        #expect(feed.contains { $0.type == .acknowledged && $0.neighbour == short(3) && seconds($0) >= 3_600 }, "b1 acknowledged it: \(story)")
        let atB1 = try sim.stores[3].events(after: 0, limit: 100_000).filter { $0.bundle == id.description }
        #expect(atB1.contains { $0.type == .custodyTaken && $0.neighbour == short(courier) }, "b1 took custody from the courier: \(story)")
        #expect(feed.contains { $0.type == .removed && ($0.detail ?? "").contains("receipt from \(short(b3))") }, "the receipt released the courier's copy: \(story)")
        #expect(try sim.stores[courier].bundle(id) == nil, "nothing left with the courier")
        #expect(r.gaveUp.isEmpty, "\(r.gaveUp)")
    }
}
