import CourierNode
import CourierWire
import Testing

/// The table of SPEC 3.7: which key seals and which keys open, before a switch, after it, in the grace and after
/// the grace, with a replaced key retired or not.
@Suite struct KeyRotationTests {
    let k = try! NetworkKey(bytes: Array(repeating: 1, count: 32))
    let n = try! NetworkKey(bytes: Array(repeating: 2, count: 32))
    let p = try! NetworkKey(bytes: Array(repeating: 3, count: 32))
    let g = KeyRotation.replacedKeyAcceptedFor

    @Test func theTableOfSection3_7() {
        #expect(KeyRotation().keys(current: k, at: 0) == (k, [k]))
        let r = KeyRotation(next: n, switchAt: 1_000)
        #expect(r.keys(current: k, at: 999) == (k, [k, n]))
        #expect(r.keys(current: k, at: 1_000) == (n, [n, k]))
        #expect(r.keys(current: k, at: 1_000 + g - 1) == (n, [n, k]))
        #expect(r.keys(current: k, at: 1_000 + g) == (n, [n]))
        let settled = KeyRotation(previous: k, previousUntil: 1_000 + g)
        #expect(settled.keys(current: n, at: 1_000) == (n, [n, k]))
        #expect(settled.keys(current: n, at: 1_000 + g) == (n, [n]))
        // A second change scheduled while the first one's grace runs: three keys open.
        let both = KeyRotation(next: p, switchAt: 2_000, previous: k, previousUntil: 1_000 + g)
        #expect(both.keys(current: n, at: 1_500) == (n, [n, p, k]))
        #expect(both.keys(current: n, at: 2_000) == (p, [p, n, k]))
    }

    @Test func packetsSealedUnderAnyAcceptedKeyOpen() throws {
        let id = NodeIdentity()
        let records: [Record] = [.unknown(type: 11, flags: 0, body: [1, 2, 3])]
        let opener = PacketOpener(networkKeys: [n, k])
        for key in [k, n] {
            let packet = PacketSealer(networkKey: key, sender: id.nodeID).seal(records, counter: 7)
            #expect(try opener.open(packet, candidates: { _ in [id.nodeID] }).header.counter == 7)
            let announce = PacketSealer(networkKey: key, sender: id.nodeID).seal(records, counter: 8, announceSalt: 5)
            #expect(try opener.open(announce, candidates: { _ in [] }).header.counter == 8)
        }
        let removed = PacketSealer(networkKey: p, sender: id.nodeID).seal(records, counter: 9)
        #expect(throws: WireError.authenticationFailed) { try opener.open(removed, candidates: { _ in [id.nodeID] }) }
    }
}
