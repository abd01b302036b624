import CourierSim
import Foundation
import Testing

/// Every packet an engine composes can be opened by its neighbours. A packet that carries a part of our announce goes
/// in announce form (SPEC 4.1), which has no ordinary sender; a bundle record in the compact form or in a run (SPEC
/// 5.3, 5.11), and a cut bundle's rest (5.12), are read with that sender. The composer chose the form from the
/// neighbour's capabilities alone, so a directed bundle that shared a packet with our periodic announce made the
/// whole packet malformed at every receiver (`invalid bundle run: outside an ordinary packet`): on regional-200
/// (seed 200) 123 such packets over the run, 143.5 s of airtime, 3 of them in the scenario cut at 1,000 s.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct AnnounceFormPacketTests {
    @Test func noPacketARelaySendsIsUnreadable() throws {
        let s = try Scenario.load(contentsOf: DrillSimTests.scenarios.appendingPathComponent("regional-200.json"))
        let sim = try DrillSimulator(scenario: try s.cut(at: 1_000))
        try sim.run()
        // The drill opens every transmission with the federation's key (`classify`): "unreadable" is a packet no
        // member can read.
        let r = sim.result()
        #expect(r.transmissions > 0)
        #expect(sim.packetsByClass[PacketClass.unreadable] == nil, "\(sim.packetsByClass)")
        #expect((sim.packetsByClass["data: text"] ?? 0) + (sim.packetsByClass["data: grievance"] ?? 0) + (sim.packetsByClass["data: minutes"] ?? 0) > 0,
                "directed data was sent: \(sim.packetsByClass)")
    }
}
