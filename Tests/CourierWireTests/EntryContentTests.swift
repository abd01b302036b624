import CourierWire
import Testing

/// Receipt and failure notice content (SPEC 6.8) is decoded whole or not at all: content that does not parse as whole
/// entries is malformed, a typed error naming the entry and field, never a prefix of the entries in silence.
@Suite struct EntryContentTests {
    static let ids: [BundleID] = [
        try! BundleID(origin: ShortID(0xaabb_ccdd), created: 1_523_041, sequence: 0),
        try! BundleID(origin: ShortID(0x0102_0304), created: 16_777_215, sequence: 300),
        try! BundleID(origin: ShortID(0xc2f4_d854), created: 7, sequence: 4_294_967_295),
    ]

    @Test func wholeContentRoundTrips() throws {
        #expect(try ReceiptContent.decode(ReceiptContent.encode(Self.ids)) == Self.ids)
        let entries: [(id: BundleID, reason: FailureReason)] = [(Self.ids[0], .expired), (Self.ids[1], .outOfHops), (Self.ids[2], .unreadable)]
        let decoded = try FailureContent.decode(FailureContent.encode(entries))
        #expect(decoded.map(\.id) == entries.map(\.id))
        #expect(decoded.map(\.reason) == entries.map(\.reason))
    }

    @Test func emptyContentHasNoEntries() throws {
        #expect(try ReceiptContent.decode([]).isEmpty)
        #expect(try FailureContent.decode([]).isEmpty)
    }

    /// Every cut of valid content decodes exactly when it falls between entries, and is an error otherwise.
    @Test func everyCutInsideAnEntryIsMalformed() throws {
        let receipt = ReceiptContent.encode(Self.ids)
        let receiptEnds = Set((0...Self.ids.count).map { ReceiptContent.encode(Array(Self.ids.prefix($0))).count })
        for n in 0...receipt.count {
            let cut = Array(receipt.prefix(n))
            if receiptEnds.contains(n) {
                #expect(try ReceiptContent.decode(cut).count == receiptEnds.sorted().firstIndex(of: n)!)
            } else {
                #expect(throws: WireError.self, "receipt cut at \(n)") { try ReceiptContent.decode(cut) }
            }
        }
        let entries = Self.ids.map { (id: $0, reason: FailureReason.evicted) }
        let notice = FailureContent.encode(entries)
        let noticeEnds = Set((0...entries.count).map { FailureContent.encode(Array(entries.prefix($0))).count })
        for n in 0...notice.count {
            let cut = Array(notice.prefix(n))
            if noticeEnds.contains(n) {
                #expect(try FailureContent.decode(cut).count == noticeEnds.sorted().firstIndex(of: n)!)
            } else {
                #expect(throws: WireError.self, "notice cut at \(n)") { try FailureContent.decode(cut) }
            }
        }
    }

    @Test func theErrorNamesTheEntryAndField() throws {
        let one = ReceiptContent.encode([Self.ids[0]])
        // A whole entry, then one byte more (a trailing byte is the start of an entry cut short).
        #expect(throws: WireError.truncated(field: "receipt entry 2 origin")) { try ReceiptContent.decode(one + [0xaa]) }
        #expect(throws: WireError.truncated(field: "receipt entry 1 created")) { try ReceiptContent.decode(Array(one.prefix(5))) }
        // A sequence varint not in its shortest form (0 written as 80 00).
        #expect(throws: WireError.invalidVarint(field: "receipt entry 1 sequence")) {
            try ReceiptContent.decode(Array(one.dropLast()) + [0x80, 0x00])
        }
        let notice = FailureContent.encode([(Self.ids[0], .refused)])
        #expect(throws: WireError.truncated(field: "failure notice entry 1 id.origin")) { try FailureContent.decode([3]) }
        #expect(throws: WireError.truncated(field: "failure notice entry 2 id.created")) { try FailureContent.decode(notice + Array(notice.prefix(7))) }
        do {
            _ = try FailureContent.decode(notice + Array(notice.prefix(7)))
            Issue.record("decoded")
        } catch {
            #expect("\(error)" == "input ends inside failure notice entry 2 id.created")
        }
    }

    /// SPEC 6.8: a reason this node does not know (from a newer relay) is not malformed; it is shown as "reason N".
    @Test func anUnknownReasonIsKept() throws {
        let content = FailureContent.encode([(Self.ids[0], .other(9)), (Self.ids[1], .other(0)), (Self.ids[2], .expired)])
        let decoded = try FailureContent.decode(content)
        #expect(decoded.map(\.reason) == [.other(9), .other(0), .expired])
        #expect(decoded.map(\.reason.description) == ["reason 9", "reason 0", "expired"])
        #expect(FailureContent.encode(decoded) == content)
    }
}
