import CourierSim
import Foundation
import Testing

/// The drill simulator: real engines over the shared radio channel on a virtual clock (`DrillSimulator`).
@Suite(.serialized, .timeLimit(.minutes(20))) struct DrillSimTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    func run(_ s: Scenario) throws -> DrillResult {
        let sim = try DrillSimulator(scenario: s)
        try sim.run()
        return sim.result()
    }

    func scenario(_ json: String) throws -> Scenario { try Scenario.decode(Data(json.utf8)) }

    /// The triangle of trust: north is cut off from 1800 s to 3000 s while messages cross the partition; after the
    /// heal they arrive, and the recovery time says how long that took.
    @Test func aPartitionAndItsHealGiveARecoveryFigure() throws {
        let s = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("triangle-of-trust.json"))
        let r = try self.run(s)
        let partition = try #require(r.disruptions.first { $0.kind == "partition" })
        #expect(partition.start == 1_800 && partition.end == 3_000 && partition.restored)
        #expect(partition.queued > 0, "messages to and from north were held during the partition")
        let recovery = try #require(partition.recovery, "95% of what was held arrived after the heal")
        #expect(recovery > 0 && recovery < 3_000)
        #expect(partition.deliveredAfter * 100 >= partition.queued * 95)
        #expect(r.disruptions.count == 2 && r.disruptions[1].kind == "down" && r.disruptions[1].label == "down: east-1")
        #expect(r.recoveryFigures.count == 2)
        // Everything but perhaps copies of the three ~2 KB minutes flooded to all 11 others 300 s before the end.
        #expect(r.delivered >= r.sent - 33, "the triangle delivers everything sent in time: \(r.delivered)/\(r.sent)")
        #expect(r.transmissions > 0 && r.airtime > 0)
        let aid = try #require(r.aid.first)
        #expect(aid.from == "east-3" && aid.offers.count == 2)
        #expect(aid.offers.allSatisfy { $0.arrivedAt != nil && $0.inTime }, "\(aid.offers)")
    }

    /// Six relays that all hear each other, all sending alerts in the same second.
    func crowd(seed: Int, carrierSense: String = "none") throws -> Scenario {
        let nodes = (0..<6).map { #"{"id": "n\#($0)", "x": \#(Double($0) * 150), "y": 0}"# }.joined(separator: ",")
        let traffic = (0..<6).map { #"{"at": 120, "from": "n\#($0)", "to": "everyone", "kind": "alert", "bytes": 90}"# }.joined(separator: ",")
        return try self.scenario("""
            {"name": "crowd", "seed": \(seed), "duration": 1800,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "carrier_sense": "\(carrierSense)"},
             "nodes": [\(nodes)], "traffic": [\(traffic)]}
            """)
    }

    /// Without listen-before-talk the crowd's packets overlap at the receivers and are lost to collisions; with
    /// RNode's, far fewer are.
    @Test func aCrowdedChannelWithoutCarrierSenseCollides() throws {
        let r = try self.run(try self.crowd(seed: 5))
        #expect(r.collisions > 0, "simultaneous alerts collide")
        #expect(r.delivered > 0)
        let lbt = try self.run(try self.crowd(seed: 5, carrierSense: "rnode"))
        #expect(lbt.collisions * 2 < r.collisions, "listen-before-talk: \(lbt.collisions) collisions against \(r.collisions)")
        #expect(lbt.delivered >= r.delivered, "\(lbt.delivered) against \(r.delivered) of 30")
    }

    /// Two relays that hear each other send at the same moment without listening first: each is transmitting
    /// while the other's packet arrives, so neither receives it (half-duplex); the message still gets through later.
    @Test func aRelayThatTransmitsHearsNothing() throws {
        let s = try self.scenario("""
            {"name": "pair", "seed": 9, "duration": 900,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "carrier_sense": "none"},
             "nodes": [{"id": "a", "x": 0, "y": 0}, {"id": "b", "x": 500, "y": 0}],
             "traffic": [{"at": 100, "from": "a", "to": "b", "kind": "text", "bytes": 60},
                         {"at": 100, "from": "b", "to": "a", "kind": "text", "bytes": 60}]}
            """)
        let r = try self.run(s)
        #expect(r.lostHalfDuplex > 0, "both sent at once: each missed the other's packet")
        #expect(r.collisions == 0, "two relays: nothing else on the air to collide with")
        #expect(r.delivered == 2)
    }

    /// Two villages out of each other's range; someone carries a relay from one to the other. A message to everyone
    /// from the first village reaches the second only after the courier got there.
    @Test func aCourierCarriesMessagesBetweenVillagesThatNeverHearEachOther() throws {
        let s = try self.scenario("""
            {"name": "courier", "seed": 4, "duration": 3600,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [{"id": "a1", "x": 0, "y": 0}, {"id": "a2", "x": 300, "y": 0},
                       {"id": "b1", "x": 60000, "y": 0}, {"id": "b2", "x": 60300, "y": 0}],
             "traffic": [{"at": 100, "from": "a1", "to": "everyone", "kind": "text", "bytes": 80}],
             "events": [{"at": 600, "type": "courier", "path": ["a2", "b1"], "dwell": 900}]}
            """)
        let r = try self.run(s)
        #expect(r.couriers == 1)
        #expect(r.delivered == 3, "a2 at once, b1 and b2 by courier: \(r.delivered)")
        let times = r.deliveryTimes
        try #require(times.count == 3)
        #expect(times[0] < 600, "a2 hears a1")
        #expect(times[1] >= 1_500 && times[2] >= 1_500, "the second village only once the courier reached b1 at 1500 s: \(times)")
    }

    /// The same file gives the same figures, packet for packet; another seed gives other ones.
    @Test func theSameScenarioGivesTheSameResult() throws {
        // The triangle's first hour (its partition and heal).
        var s = try Scenario.load(contentsOf: Self.scenarios.appendingPathComponent("triangle-of-trust.json"))
        s.duration = 3_600
        s.traffic = s.traffic.filter { $0.at <= 3_600 }
        s.events = s.events.filter { $0.at <= 3_600 }
        let a = try self.run(s)
        let b = try self.run(s)
        #expect(a == b)
        #expect(a.transmissions > 0 && a.delivered > 0 && a.collisions > 0)
        let crowd = try self.crowd(seed: 5)
        let c = try self.run(crowd)
        #expect(c == (try self.run(crowd)))
        let d = try self.run(try self.crowd(seed: 6))
        #expect(c.deliveryTimes != d.deliveryTimes, "another seed, another run")
    }

    /// Six relays 4 km apart along a valley (each hears only its neighbours), an alert from one end.
    func chain() throws -> Scenario {
        let nodes = (0..<6).map { #"{"id": "v\#($0)", "x": \#(Double($0) * 4_000), "y": 0}"# }.joined(separator: ",")
        return try self.scenario("""
            {"name": "chain", "seed": 2, "duration": 900,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes)], "traffic": [{"at": 120, "from": "v0", "to": "everyone", "kind": "alert", "bytes": 90}]}
            """)
    }

    /// Strategies side by side: naive flooding carries the alert down the whole chain; Meshtastic's managed flooding
    /// stops after three rebroadcasts (hop limit 3), so the fifth relay away never gets it; the engine delivers it.
    @Test func managedFloodingStopsAtItsHopLimit() throws {
        let s = try self.chain()
        let naive = try FloodSimulator(scenario: s, strategy: .naive)
        try naive.run()
        let managed = try FloodSimulator(scenario: s, strategy: .managed)
        try managed.run()
        #expect(naive.summary().delivered == 5, "\(naive.summary())")
        #expect(naive.summary().transmissions == 6, "each relay once")
        let m = managed.summary()
        #expect(m.delivered == 4 && m.transmissions == 4, "the origin and three rebroadcasts reach v1...v4: \(m)")
        #expect(managed.deliveredAt[.init(message: 0, recipient: 5)] == nil)
        let engine = try self.run(s)
        #expect(engine.delivered == 5)
    }

    /// Where everyone hears everyone, managed flooding's cancellation leaves one rebroadcast: hearing it, the
    /// others drop theirs. Naive flooding sends one packet per relay.
    @Test func aHeardRebroadcastCancelsOnesOwn() throws {
        let nodes = (0..<6).map { #"{"id": "n\#($0)", "x": \#(Double($0) * 150), "y": 0}"# }.joined(separator: ",")
        let s = try self.scenario("""
            {"name": "clique", "seed": 3, "duration": 300,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes)], "traffic": [{"at": 10, "from": "n0", "to": "everyone", "kind": "alert", "bytes": 90}]}
            """)
        let naive = try FloodSimulator(scenario: s, strategy: .naive)
        try naive.run()
        let managed = try FloodSimulator(scenario: s, strategy: .managed)
        try managed.run()
        #expect(naive.summary().transmissions == 6 && naive.summary().delivered == 5)
        #expect(managed.summary().transmissions == 2 && managed.summary().delivered == 5, "\(managed.summary())")
    }

    /// The floor under the comparison: along a chain every relay but the last must send (5 packets for 5 relays);
    /// in a clique the origin's one packet reaches all; a relay nobody hears is not counted as reachable.
    @Test func theAlertFloorIsTheLeastPlannedBroadcast() throws {
        let chain = try #require(try AlertFloor.alerts(in: self.chain()).first)
        #expect(chain.from == "v0" && chain.at == 120 && chain.reachable == 5 && chain.transmissions == 5, "\(chain)")
        let one = try FloodSimulator(scenario: self.chain(), strategy: .naive)
        try one.run()
        #expect(abs(chain.airtime - one.summary().airtime * 5 / 6) < 1e-9, "five of naive flooding's six packets")
        let nodes = (0..<6).map { #"{"id": "n\#($0)", "x": \#(Double($0) * 150), "y": 0}"# }.joined(separator: ",")
        let clique = try self.scenario("""
            {"name": "clique", "seed": 3, "duration": 300,
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes), {"id": "far", "x": 90000, "y": 0}],
             "traffic": [{"at": 10, "from": "n0", "to": "everyone", "kind": "alert", "bytes": 90},
                         {"at": 20, "from": "n1", "to": "n2", "kind": "text", "bytes": 90}]}
            """)
        let floors = try AlertFloor.alerts(in: clique)
        #expect(floors.count == 1 && floors[0].transmissions == 1 && floors[0].reachable == 5, "\(floors)")
    }
}
