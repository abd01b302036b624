import CourierStore
import CourierWire
import Testing

/// The quota and custody (issue 10, point 8): bundles held only to pass on go first; a bundle in our custody is
/// evicted only as the last resort and only for a more urgent class, never by bulk or by its own class.
@Suite struct CustodyEvictionTests {
    @Test func custodyIsEvictedLastAndOnlyForAMoreUrgentClass() throws {
        let store = try S.store(quota: 2_600)
        let elsewhere = Destination.node(ShortID(0x0c0f_fee0))
        let custodyA = try S.bundle(.text, seq: 1, size: 1_000, to: elsewhere)
        let custodyB = try S.bundle(.grievance, seq: 2, size: 1_000, to: elsewhere)
        for (i, b) in [custodyA, custodyB].enumerated() { #expect(try store.insert(b, now: S.now + Int64(i), local: false, custody: true) != .refused) }
        // A flood of the same class finds no room: refused (reported), not pushed in over a bundle in custody.
        let textFlood = try S.bundle(.text, seq: 3, size: 1_000)
        #expect(try store.insert(textFlood, now: S.now + 1, local: false, custody: false) == .refused)
        // A flood of bulk marked however: likewise.
        let minutes = try S.bundle(.minutes, seq: 4, size: 1_000)
        #expect(try store.insert(minutes, now: S.now + 2, local: false, custody: false) == .refused)
        // A small flood fits, and is the first to go when a more urgent bundle needs room; custody goes only after.
        let small = try S.bundle(.minutes, seq: 5, size: 300)
        guard case .stored = try store.insert(small, now: S.now + 3, local: false, custody: false) else {
            Issue.record("the small flood did not fit")
            return
        }
        let alert = try S.bundle(.alert, seq: 6, size: 500)
        guard case .stored(_, let evicted1) = try store.insert(alert, now: S.now + 4, local: false, custody: false) else {
            Issue.record("the alert was refused")
            return
        }
        #expect(evicted1 == [small.id], "\(evicted1)")
        let alert2 = try S.bundle(.alert, seq: 7, size: 900)
        guard case .stored(_, let evicted2) = try store.insert(alert2, now: S.now + 5, local: false, custody: false) else {
            Issue.record("the second alert was refused")
            return
        }
        // Floods first (the older alert), then the oldest bundle in custody of the least urgent class; in the feed.
        #expect(evicted2 == [alert.id, custodyA.id], "\(evicted2)")
        #expect(try store.events(after: 0).contains { $0.type == .evicted && $0.bundle == custodyA.id.description && $0.detail == "quota, was in our custody" })
        #expect(try store.bundle(custodyB.id) != nil)
    }
}
