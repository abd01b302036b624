import ArgumentParser
import CourierNode
import CourierStore
import CourierWire
import Foundation

/// `relay dict`: federation compression dictionaries (SPEC 7.6), trained on this relay's own traffic and published
/// through the federation as a signed bundle.
extension Relay {
    struct Dict: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dict",
            abstract: "Federation dictionaries: train one on the texts this relay can read, list them, publish one.",
            discussion: """
                A dictionary trained on a federation's own messages compresses them better than the shipped dictionary 1. \
                Published, it travels to every relay as a signed bundle; each keeps the \(Store.dictionariesKept) most recent and tells \
                its neighbours which it holds, and a message goes compressed with one only when its destination (or, for a message \
                to a group or everyone, every neighbour) holds it.
                """,
            subcommands: [Train.self, List.self, Publish.self], defaultSubcommand: List.self)

        /// Fewer texts than this give a dictionary that helps little (and libzstd may refuse them).
        static let minimumTexts = 40

        struct Train: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Train a dictionary on the texts this relay can read (its inbox and the messages it sent that it still holds); prints its id, size and held-out compression.")
            @OptionGroup var d: DirOption
            @Option(help: "Dictionary size in bytes, 1024 to 65536 (default 16384: it travels to every relay once).") var size = 16_384
            @Flag(help: "Train on the messages that came end-to-end encrypted to this relay too. A dictionary carries pieces of its texts to every member of the federation once published: leave them out unless their writers agree.")
            var includePrivate = false

            func run() async throws {
                try await guarded {
                    guard (1_024...65_536).contains(self.size) else {
                        throw RelayError.usage("--size \(self.size): give a size in bytes from 1024 to 65536 (16384 by default)")
                    }
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let store = try dir.store()
                    let me = try dir.identity().0.nodeID.short
                    let (texts, skipped, privateLeftOut) = try store.readableTexts(includePrivate: self.includePrivate)
                    let usable = texts.filter { !$0.isEmpty }
                    let leftOut = privateLeftOut > 0 ? "; \(privateLeftOut) that came end-to-end encrypted left out (--include-private)" : ""
                    guard usable.count >= Dict.minimumTexts else {
                        throw RelayError.data("this relay can read \(usable.count) texts (its inbox and the messages it sent that it still holds\(skipped > 0 ? "; \(skipped) sent end to end cannot be read here" : "")\(leftOut)); a dictionary needs at least \(Dict.minimumTexts): train again when more have arrived")
                    }
                    // Every fifth text is held out: the ratio printed is measured on texts the dictionary never saw.
                    let train = usable.enumerated().filter { $0.offset % 5 != 4 }.map(\.element)
                    let held = usable.enumerated().filter { $0.offset % 5 == 4 }.map(\.element)
                    let bytes: [UInt8]
                    do {
                        bytes = try DictionaryTrainer.train(train, capacity: self.size)
                        try FederationDictionary.check(bytes)
                    } catch {
                        throw RelayError.data("cannot train a dictionary on these \(train.count) texts (\(train.reduce(0) { $0 + $1.count }) bytes): \(error); train again when more have arrived")
                    }
                    let existing = try store.dictionaries()
                    let version = (existing.filter { $0.origin == me }.map(\.version).max() ?? 0) + 1
                    let id = Dict.freeID(me: me, version: version, taken: Set(existing.map(\.id)))
                    let shelf = DictionaryShelf()
                    try shelf.put(id: id, bytes: bytes)
                    let withIt = BodyCompressor(shelf: shelf)
                    func ratio(_ c: BodyCompressor, _ also: [UInt8]) -> Double {
                        held.map { Double(c.compress($0, also: also).1.count) / Double($0.count) }.reduce(0, +) / Double(held.count)
                    }
                    let r = ratio(withIt, [id]), r1 = ratio(BodyCompressor(), [])
                    let now = Date().timeIntervalSince1970
                    let d = StoredDictionary(id: id, fingerprint: FederationDictionary.fingerprint(bytes), origin: me, version: version,
                                             made: Int64(now), bytes: bytes, texts: train.count, ratio: r, ratioDefault: r1)
                    let dropped = try store.saveDictionary(d, now: Int64(now))
                    let what = "dictionary \(id) version \(version) trained: \(bytes.count) B on \(train.count) texts; held-out \(held.count) texts compress to \(String(format: "%.3f", r)) of their size with it, \(String(format: "%.3f", r1)) with dictionary 1"
                    try store.dictionaryEvent(what, now: Int64(now))
                    say("dictionary \(id) (version \(version), fingerprint \(Dict.hex(d.fingerprint))): \(bytes.count) B trained on \(train.count) of the \(usable.count) texts this relay can read\(privateLeftOut > 0 ? " (\(privateLeftOut) that came end-to-end encrypted left out: --include-private)" : "")")
                    say("  held-out \(held.count) texts compress to \(String(format: "%.3f", r)) of their size with it, \(String(format: "%.3f", r1)) with dictionary 1")
                    for x in dropped { say("  dictionary \(x.id) (version \(x.version) from \(x.origin)) dropped: \(Store.dictionariesKept) are kept") }
                    say("  publish it to the federation with `relay dict publish \(id)`")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "The dictionaries this relay holds, and which neighbours hold them.")
            @OptionGroup var d: DirOption
            @Flag(help: "JSON, one object.") var json = false

            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let store = try dir.store()
                    let me = try dir.identity().0.nodeID.short
                    let held = try store.dictionaries()
                    let holders = try store.dictionaryHolders()
                    func who(_ x: StoredDictionary) -> [String] {
                        holders.filter { $0.value.contains(x.entry) }.map(\.key.description).sorted()
                    }
                    func state(_ x: StoredDictionary) -> String {
                        x.origin != me ? "received" : (x.bundle == nil ? "trained" : "published")
                    }
                    if self.json {
                        var list: [[String: Any]] = []
                        for x in held {
                            var o: [String: Any] = ["id": Int(x.id), "version": Int(x.version), "origin": x.origin.description, "size": x.bytes.count,
                                                    "fingerprint": Dict.hex(x.fingerprint), "state": state(x), "made": x.made, "heldBy": who(x)]
                            if let b = x.bundle { o["bundle"] = try CourierBundle(decoding: b).id.description }
                            if let t = x.texts { o["texts"] = t }
                            if let r = x.ratio { o["ratio"] = r }
                            if let r = x.ratioDefault { o["ratioDefault"] = r }
                            list.append(o)
                        }
                        try printJSON(["dictionaries": list, "kept": Store.dictionariesKept])
                        return
                    }
                    say("dictionary 1: shipped with Courier, held by every relay")
                    for x in held {
                        let origin = x.origin == me ? "this relay" : "\(x.origin)"
                        let measured = x.ratio.map { r in ", held-out \(String(format: "%.3f", r)) (dictionary 1: \(String(format: "%.3f", x.ratioDefault ?? .nan)))" } ?? ""
                        let by = who(x)
                        say("dictionary \(x.id): version \(x.version) from \(origin), \(x.bytes.count) B, fingerprint \(Dict.hex(x.fingerprint)), \(state(x))\(measured); neighbours holding it: \(by.isEmpty ? "none heard" : by.joined(separator: " "))")
                    }
                    if held.isEmpty { say("no federation dictionary: `relay dict train` makes one from this relay's messages") }
                }
            }
        }

        struct Publish: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Send a dictionary trained here to the whole federation as a signed bundle (the running relay floods it).")
            @OptionGroup var d: DirOption
            @Argument(help: "Its id (`relay dict list`); default: the newest trained here.") var id: UInt8?

            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let store = try dir.store()
                    let config = try dir.nodeConfig(store: store)
                    let me = config.identity.nodeID.short
                    let mine = try store.dictionaries().filter { $0.origin == me }
                    guard var x = self.id.map({ i in mine.first { $0.id == i } }) ?? mine.first else {
                        throw RelayError.usage(self.id.map { "no dictionary \($0) trained here (`relay dict list`)" } ?? "no dictionary trained here: `relay dict train` first")
                    }
                    if let b = x.bundle {
                        let id = try CourierBundle(decoding: b).id
                        throw RelayError.usage("dictionary \(x.id) was published already (bundle \(id)); train a new one to publish again")
                    }
                    var opts = BundleOptions(kind: .dictionary)
                    opts.extensions = [try DictionaryLabel(id: x.id, version: x.version).asExtension]
                    let now = Date().timeIntervalSince1970
                    let b = try BundleMaker(identity: config.identity, groups: config.groups, store: store)
                        .make(kind: .dictionary, destination: .everyone, content: x.bytes, options: opts, now: now)
                    x.bundle = b.encode()
                    try store.saveDictionary(x, now: Int64(now))
                    try store.dictionaryEvent("dictionary \(x.id) version \(x.version) published as \(b.id)", bundle: b.id, now: Int64(now))
                    say("dictionary \(x.id) (version \(x.version)) published as bundle \(b.id), \(b.encode().count) B to everyone; the running relay sends it")
                }
            }
        }

        /// An id from 2-255 not held here, starting from one that depends on the origin and version (so two relays
        /// publishing at once rarely pick the same).
        static func freeID(me: ShortID, version: UInt32, taken: Set<UInt8>) -> UInt8 {
            let start = Int((me.rawValue &+ version &* 2_654_435_761) % 254)
            for k in 0..<254 {
                let id = UInt8(2 + (start + k) % 254)
                if !taken.contains(id) { return id }
            }
            return UInt8(2 + start)
        }

        static func hex(_ v: UInt16) -> String { String(format: "%04x", v) }
    }
}
