import CourierNode
import CourierStore
import CourierWire
import Foundation
import Testing

/// Federation dictionaries in the engine (SPEC 5.10, 7.6): a bundle naming a dictionary the node lacks is kept, the
/// neighbours are asked, and it is delivered when the dictionary arrives; a request is answered with the dictionary
/// bundle; what neighbours hold decides which dictionaries a bundle made here may use.
@Suite struct DictionaryEngineTests {
    static let id: UInt8 = 9

    static func dictionary() throws -> [UInt8] {
        let villages = ["Sargalu", "Penjwen", "Garmik", "Shanakhse", "Khanke", "Qaraqosh", "Hasansham", "Zakho"]
        let samples = (0..<200).map { i in
            Array("Water committee of \(villages[i % 8]): the tanker from \(villages[(i + 3) % 8]) is \(i % 4 + 1) hours late; distribution moves to day \(i % 28 + 1).".utf8)
        }
        return try DictionaryTrainer.train(samples, capacity: 2_048)
    }

    /// `p`'s dictionary bundle (kind 9, to everyone, signed, label extension).
    static func dictionaryBundle(_ p: EngineHarness.Peer, _ bytes: [UInt8], at now: Double) throws -> CourierBundle {
        p.sequence += 1
        var o = BundleOptions(kind: .dictionary)
        o.extensions = [try DictionaryLabel(id: Self.id, version: 1).asExtension]
        return try CourierBundle.make(kind: .dictionary, destination: .everyone, content: bytes, origin: p.identity,
                                      created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: p.sequence, options: o, compressor: BodyCompressor())
    }

    /// A text from `p` to `to`, compressed with the dictionary (signed).
    static func text(_ p: EngineHarness.Peer, to: ShortID, _ text: String, dictionary: [UInt8], at now: Double) throws -> CourierBundle {
        p.sequence += 1
        let shelf = DictionaryShelf()
        try shelf.put(id: Self.id, bytes: dictionary)
        var o = BundleOptions(kind: .text, sign: true)
        o.dictionaries = [Self.id]
        return try CourierBundle.make(kind: .text, destination: .node(to), content: Array(text.utf8), origin: p.identity,
                                      created: CourierTime.minutes(unixSeconds: Int64(now)), sequence: p.sequence, options: o,
                                      compressor: BodyCompressor(shelf: shelf))
    }

    static func dictionaryRecords(_ o: EngineHarness.Out) -> [DictionariesRecord] {
        o.records.compactMap { if case .dictionaries(let d) = $0 { d } else { nil } }
    }

    @Test func aBundleNamingAMissingDictionaryIsKeptAskedForAndDeliveredWhenItArrives() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let dict = try Self.dictionary()
        let message = "Water committee of Zakho: the tanker from Garmik is 2 hours late; distribution moves to day 4."
        let t = try Self.text(p, to: h.me.nodeID.short, message, dictionary: dict, at: h.now)
        #expect(t.compression == .zstdDictionary(Self.id))
        let first = h.receive(from: p, [.bundle(BundleRecord(nextHop: h.me.nodeID.short, transfer: 1, bundle: t.encode()))])
        #expect(first.delivered.isEmpty)
        #expect(first.events.contains { if case .waiting(let i, let why) = $0 { i == t.id && why.contains("dictionary 9") } else { false } })
        // Kept, so the hop is acknowledged (the sender need not send it again) ...
        #expect(first.acks.contains { $0.target == p.short })
        // ... and the neighbours are asked for dictionary 9 (any fingerprint).
        #expect(Self.dictionaryRecords(first).contains { $0.isRequest && $0.entries == [DictionariesRecord.Entry(id: Self.id, fingerprint: 0)] })
        let waiting = try h.store.waiting()
        #expect(waiting.count == 1 && waiting[0].reason.contains("compressed with dictionary 9, which this relay lacks"))

        // The dictionary bundle arrives (flooded): kept, and the text is read and delivered.
        let d = try Self.dictionaryBundle(p, dict, at: h.now)
        let second = h.receive(from: p, [.bundle(BundleRecord(bundle: d.encode()))])
        let after = second.delivered.isEmpty ? h.run(for: 2) : second
        #expect(after.delivered.contains { $0.id == t.id && $0.text == message }, "\(after.delivered)")
        #expect(try h.store.waiting().isEmpty)
        #expect(try h.store.dictionaries().map(\.id) == [Self.id])
        // The neighbours hear that this node holds it now.
        let told = Self.dictionaryRecords(second) + Self.dictionaryRecords(after)
        #expect(told.contains { !$0.isRequest && $0.entries == [DictionariesRecord.Entry(id: Self.id, fingerprint: FederationDictionary.fingerprint(dict))] })
    }

    @Test func aDictionaryBundleThatIsNoDictionaryIsRefusedInTheFeedAndNotPassedOn() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        _ = h.addPeer()
        let bad = try Self.dictionaryBundle(p, Array(repeating: 0x41, count: 600), at: h.now)
        let out = h.receive(from: p, [.bundle(BundleRecord(bundle: bad.encode()))])
        let later = h.run(for: 30)
        #expect(try h.store.bundle(bad.id) == nil, "not kept to pass on")
        #expect(try h.store.dictionaries().isEmpty)
        let refused = try h.store.events(after: 0).filter { $0.type == .refused && $0.bundle == bad.id.description }
        #expect(refused.count == 1 && (refused[0].detail ?? "").contains("not a zstd dictionary"), "\(refused)")
        #expect((out.records + later.records).allSatisfy { if case .dictionaries = $0 { false } else { true } }, "nothing held, nothing told")
    }

    @Test func aRequestIsAnsweredWithTheDictionaryBundle() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let q = h.addPeer()
        let dict = try Self.dictionary()
        let d = try Self.dictionaryBundle(p, dict, at: h.now)
        _ = h.receive(from: p, [.bundle(BundleRecord(bundle: d.encode()))])
        _ = h.run(for: 60)  // its own flood goes out and is done
        let asked = h.receive(from: q, [.dictionaries(DictionariesRecord(isRequest: true, entries: [.init(id: Self.id, fingerprint: 0)]))])
        let out = h.run(for: 10)
        let sent = asked.fragments + out.fragments
        #expect(!sent.isEmpty && sent.allSatisfy { $0.count == sent[0].count }, "the dictionary bundle goes out again")
        #expect((asked.events + out.events).contains { if case .dictionary(let what) = $0 { what.contains("asked for by \(q.short)") } else { false } })
    }

    @Test func aBundleMadeHereUsesOnlyWhatItsDestinationHolds() throws {
        let h = try EngineHarness()
        let p = h.addPeer()
        let q = h.addPeer()
        let dict = try Self.dictionary()
        _ = h.receive(from: p, [.bundle(BundleRecord(bundle: try Self.dictionaryBundle(p, dict, at: h.now).encode()))])
        let fp = FederationDictionary.fingerprint(dict)
        let shelf = DictionaryShelf()
        func choice(_ d: Destination) throws -> [UInt8] {
            try DictionaryChoice.candidates(kind: .text, destination: d, me: h.me.nodeID.short, store: h.store, shelf: shelf, now: h.now)
        }
        #expect(try choice(.node(p.short)).isEmpty, "p has not said what it holds")
        _ = h.receive(from: p, [.dictionaries(DictionariesRecord(isRequest: false, entries: [.init(id: Self.id, fingerprint: fp)]))])
        // A different dictionary under the same id is not the same dictionary.
        _ = h.receive(from: q, [.dictionaries(DictionariesRecord(isRequest: false, entries: [.init(id: Self.id, fingerprint: fp ^ 1)]))])
        #expect(try choice(.node(p.short)) == [Self.id])
        #expect(try choice(.node(q.short)).isEmpty)
        #expect(try choice(.everyone).isEmpty, "q, a neighbour, does not hold it")
        _ = h.receive(from: q, [.dictionaries(DictionariesRecord(isRequest: false, entries: [.init(id: Self.id, fingerprint: fp)]))])
        #expect(try choice(.everyone) == [Self.id])
        #expect(try DictionaryChoice.candidates(kind: .receipt, destination: .node(p.short), me: h.me.nodeID.short, store: h.store, shelf: shelf, now: h.now).isEmpty,
                "receipts stay readable by every node")
        // The engine's own text to p goes compressed with it.
        let (id, _) = try h.node.submit(kind: .text, destination: .node(p.short), content: Array("Water committee of Zakho: the tanker from Garmik is 3 hours late; distribution moves to day 5.".utf8), now: h.now)
        let made = try CourierBundle(decoding: try #require(try h.store.bundle(id)).data)
        #expect(made.compression == .zstdDictionary(Self.id))
    }
}
