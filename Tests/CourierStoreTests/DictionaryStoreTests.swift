import CourierStore
import CourierWire
import Foundation
import Testing

/// The store's federation dictionaries (migration v7-dictionaries): the newest `Store.dictionariesKept` kept across a
/// reopen, each dropped one in the change feed; what neighbours hold replaced per neighbour; the texts a relay can
/// train on.
@Suite struct DictionaryStoreTests {
    static func dictionary(_ id: UInt8, made: Int64) -> StoredDictionary {
        let bytes = [0x37, 0xa4, 0x30, 0xec] + (0..<300).map { UInt8(truncatingIfNeeded: Int($0) &* Int(id)) }
        return StoredDictionary(id: id, fingerprint: FederationDictionary.fingerprint(bytes), origin: ShortID(0x0102_0304), version: UInt32(id),
                                made: made, bytes: bytes)
    }

    @Test func theNewestFewAreKeptAndEachDroppedOneIsInTheFeed() throws {
        let path = S.tempDir() + "/courier.db"
        let store = try S.store(path: path)
        for i in 0..<Store.dictionariesKept {
            #expect(try store.saveDictionary(Self.dictionary(UInt8(2 + i), made: S.now + Int64(i)), now: S.now).isEmpty)
        }
        let dropped = try store.saveDictionary(Self.dictionary(40, made: S.now + 100), now: S.now + 100)
        #expect(dropped.map(\.id) == [2], "the oldest goes")
        let events = try store.events(after: 0).filter { $0.type == .dictionary }
        #expect(events.count == 1 && (events[0].detail ?? "").contains("dictionary 2 (version 2 from 01020304) dropped"), "\(events)")
        // The same id again replaces it (and keeps the count).
        var again = Self.dictionary(40, made: S.now + 200)
        again.bundle = [1, 2, 3]
        #expect(try store.saveDictionary(again, now: S.now + 200).isEmpty)
        let reopened = try S.store(path: path)
        let held = try reopened.dictionaries()
        #expect(held.map(\.id) == [40, 5, 4, 3], "newest first")
        #expect(held[0].bundle == [1, 2, 3] && held[0].bytes == Self.dictionary(40, made: 0).bytes)
    }

    @Test func whatANeighbourHoldsReplacesWhatItSaidBefore() throws {
        let store = try S.store()
        let n = ShortID(0xaabb_ccdd)
        try store.setDictionaryHolder(n, holds: [.init(id: 7, fingerprint: 1), .init(id: 9, fingerprint: 2)], now: S.now)
        try store.setDictionaryHolder(ShortID(1), holds: [.init(id: 7, fingerprint: 1)], now: S.now)
        try store.setDictionaryHolder(n, holds: [.init(id: 9, fingerprint: 3)], now: S.now + 1)
        let h = try store.dictionaryHolders()
        #expect(h[n] == [.init(id: 9, fingerprint: 3)] && h[ShortID(1)] == [.init(id: 7, fingerprint: 1)])
        try store.setDictionaryHolder(n, holds: [], now: S.now + 2)
        #expect(try store.dictionaryHolders()[n] == nil, "holding none")
    }

    @Test func theTextsToTrainOnAreTheInboxAndWhatWasSentUnencrypted() throws {
        let store = try S.store()
        let me = S.origins[0], other = S.origins[1]
        func make(_ text: String, from: NodeIdentity, to: Destination, seq: UInt32, encryptTo: NodePublicKeys? = nil) throws -> CourierBundle {
            var o = BundleOptions(kind: .text)
            o.encryptTo = encryptTo
            return try CourierBundle.make(kind: .text, destination: to, content: Array(text.utf8), origin: from, created: S.nowMinutes,
                                          sequence: seq, options: o, compressor: S.compressor)
        }
        let received = try make("water at the upper well from six", from: other, to: .node(me.nodeID.short), seq: 1)
        _ = try store.deliver(received, content: Array("water at the upper well from six".utf8), now: S.now)
        let secret = try make("my grandmother's address", from: other, to: .node(me.nodeID.short), seq: 2, encryptTo: me.publicKeys)
        _ = try store.deliver(secret, content: Array("my grandmother's address".utf8), now: S.now)
        try store.insert(try make("bread at the school on Friday", from: me, to: .everyone, seq: 1), now: S.now, local: true, custody: true)
        try store.insert(try make("for your eyes only", from: me, to: .node(other.nodeID.short), seq: 2, encryptTo: other.publicKeys),
                         now: S.now, local: true, custody: true)
        // Sent to everyone and delivered here too: counted once.
        let both = try make("meeting moved to Sunday", from: me, to: .everyone, seq: 3)
        try store.insert(both, now: S.now, local: true, custody: true)
        _ = try store.deliver(both, content: Array("meeting moved to Sunday".utf8), now: S.now)
        let (texts, skipped, privateLeftOut) = try store.readableTexts()
        #expect(Set(texts.map { String(decoding: $0, as: UTF8.self) }) == ["water at the upper well from six", "bread at the school on Friday", "meeting moved to Sunday"])
        #expect(texts.count == 3 && skipped == 1, "the end-to-end one cannot be read by its sender here")
        #expect(privateLeftOut == 1, "what came end-to-end encrypted is left out: a published dictionary shows pieces of its texts")
        let all = try store.readableTexts(includePrivate: true)
        #expect(all.texts.count == 4 && all.privateLeftOut == 0)
    }
}
