import CourierNode
import CourierStore
import CourierWire
import Testing

/// Judging and taking in a bundle without an engine (`BundleJudge` over a `KeyBook`, `ArchiveImport` over the store):
/// what `relay import` does. No `Node` is built in these tests.
@Suite struct ArchiveImportTests {
    let now = 1_790_000_000.0

    func store() throws -> Store {
        var sc = Store.Configuration()
        sc.inMemory = true
        return try Store(path: ":memory:", configuration: sc)
    }

    func bundle(_ kind: Kind, from origin: NodeIdentity, to d: Destination, _ text: String, sequence: UInt32) throws -> CourierBundle {
        var options = BundleOptions(kind: kind)
        options.sign = true
        return try CourierBundle.make(kind: kind, destination: d, content: Array(text.utf8), origin: origin,
                                      created: CourierTime.minutes(unixSeconds: Int64(self.now)), sequence: sequence,
                                      options: options, compressor: BodyCompressor())
    }

    /// The bundle with the last byte of its origin signature changed: it still decodes, and claims the same origin.
    func forged(_ b: CourierBundle) throws -> [UInt8] {
        var bytes = b.encode()
        bytes[bytes.count - 1] ^= 0x01
        let decoded = try CourierBundle(decoding: bytes)
        #expect(decoded.id == b.id && decoded.isSigned)
        return bytes
    }

    @Test func aForgedSignatureIsRefusedByTheJudgeAndAnUnknownOriginWaitsForKeys() throws {
        let me = NodeIdentity(), origin = NodeIdentity()
        let alert = try self.bundle(.alert, from: origin, to: .everyone, "Flood warning: the lower bridge is closed.", sequence: 1)
        let knowing = BundleJudge(identity: me, groups: [], trust: .open, openMode: false,
                                  book: KeyBook(identity: me, trust: .open, peers: [origin.publicKeys]))
        #expect(knowing.judge(alert) == .proven)
        let forgery = try CourierBundle(decoding: try self.forged(alert))
        #expect(knowing.judge(forgery) == .refused("\(alert.id): origin signature does not verify"))
        #expect(knowing.distrust(forgery) != nil)
        // Without the origin's keys nothing can be proven either way: kept until they come (SPEC 9.1).
        let ignorant = BundleJudge(identity: me, groups: [], trust: .open, openMode: false,
                                   book: KeyBook(identity: me, trust: .open, peers: []))
        #expect(ignorant.judge(forgery) == .keysUnknown)
        // A trust list without the origin refuses it whatever its signature.
        let listed = BundleJudge(identity: me, groups: [], trust: .members([me.publicKeys]), openMode: false,
                                 book: KeyBook(identity: me, trust: .open, peers: [origin.publicKeys]))
        #expect(listed.judge(alert) == .refused("\(alert.id): origin is not a federation member"))
    }

    @Test func anImportRefusesAForgedBundleInTheFeedAndReceiptsWhatItDelivers() throws {
        let store = try self.store()
        let me = NodeIdentity(), origin = NodeIdentity()
        try store.rememberKeys(origin.publicKeys, name: "ridge")
        var intake = try ArchiveImport(config: NodeConfig(identity: me, networkKey: NetworkKey.random(), name: "valley"), store: store)
        let text = try self.bundle(.text, from: origin, to: .node(me.nodeID.short), "The pump is mended.", sequence: 1)
        let alert = try self.bundle(.alert, from: origin, to: .everyone, "Flood warning: the lower bridge is closed.", sequence: 2)
        let other = try self.bundle(.text, from: origin, to: .node(me.nodeID.short), "Bring the vaccine box.", sequence: 3)

        guard case .rejected(let why) = intake.take(try self.forged(text), now: self.now) else {
            Issue.record("a forged bundle was taken in")
            return
        }
        #expect(why.contains("origin signature does not verify"))
        #expect(intake.take(alert.encode(), now: self.now) == .delivered)
        #expect(intake.take(other.encode(), now: self.now) == .delivered)
        // The same archive again: nothing changes.
        #expect(intake.take(alert.encode(), now: self.now) == .duplicate)
        #expect(intake.finish(now: self.now) == 1)

        let feed = try store.events(after: 0)
        let refused = feed.filter { $0.type == .refused && $0.bundle == text.id.description }
        #expect(refused.count == 1 && refused.first?.detail?.contains("origin signature does not verify") == true, "\(feed)")
        #expect(refused.first?.neighbour == ArchiveImport.source)
        #expect(try store.inboxMessage(text.id) == nil)
        #expect(try store.inboxMessage(alert.id) != nil && store.inboxMessage(other.id) != nil)
        // Its origin is told of the refusal (a failure notice), and gets one receipt for both bundles delivered.
        let notices = try store.held(kind: .failure, origin: me.nodeID.short)
        #expect(notices.map(\.destination) == [.node(origin.nodeID.short)])
        let receipts = try store.held(kind: .receipt, origin: me.nodeID.short)
        #expect(receipts.map(\.destination) == [.node(origin.nodeID.short)])
        let first = try #require(receipts.first)
        let queued = try #require(try store.bundle(first.id))
        let receipt = try CourierBundle(decoding: queued.data)
        #expect(Set(try ReceiptContent.decode(try receipt.content(compressor: BodyCompressor()))) == [alert.id, other.id])
    }

    /// `relay import` judges a receipt or failure notice as the engine does (SPEC 6.8): one that is not whole entries
    /// is given up on as unreadable (the feed, `relay status`), not delivered, and none of its entries recorded.
    @Test func anImportGivesUpOnAMalformedFailureNoticeOrReceipt() throws {
        let store = try self.store()
        let me = NodeIdentity(), origin = NodeIdentity()
        try store.rememberKeys(origin.publicKeys, name: "ridge")
        var intake = try ArchiveImport(config: NodeConfig(identity: me, networkKey: NetworkKey.random(), name: "valley"), store: store)
        let mine = try BundleID(origin: me.nodeID.short, created: 1_523_041, sequence: 4)
        func made(_ kind: Kind, _ content: [UInt8], sequence: UInt32) throws -> CourierBundle {
            try CourierBundle.make(kind: kind, destination: .node(me.nodeID.short), content: content, origin: origin,
                                   created: CourierTime.minutes(unixSeconds: Int64(self.now)), sequence: sequence,
                                   options: BundleOptions(kind: kind), compressor: BodyCompressor())
        }
        let whole = FailureContent.encode([(mine, .expired)])
        let notice = try made(.failure, whole + whole.prefix(3), sequence: 1)
        let receipt = try made(.receipt, ReceiptContent.encode([mine]) + [0x01], sequence: 2)
        #expect(intake.take(notice.encode(), now: self.now) == .rejected("unreadable: malformed: input ends inside failure notice entry 2 id.origin"))
        #expect(intake.take(receipt.encode(), now: self.now) == .rejected("unreadable: malformed: input ends inside receipt entry 2 origin"))
        let gaveUp = try store.events(after: 0).filter { $0.type == .gaveUp }.compactMap(\.bundle)
        #expect(gaveUp == [notice.id.description, receipt.id.description])
        #expect(try store.snapshot().unreadableTotal == 2)
        #expect(try store.snapshot().failedTotal == 0, "no entry of the notice recorded")
        #expect(try store.inbox().isEmpty)
        #expect(intake.problems.isEmpty, "\(intake.problems)")
    }
}
