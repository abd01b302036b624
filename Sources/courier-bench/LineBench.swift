import ArgumentParser
import CourierLinks
import CourierNode
import CourierStore
import CourierTooling
import CourierWire
import Foundation
import Logging

/// The issue-16 measurement: messages sent at once as direct messages from one relay to another (the real runtime,
/// engine, store and serial links, in process) over a tapped pseudo-terminal line, with every byte on the line
/// counted from the first message handed over until the origin has heard every delivery receipt: data packets, acks,
/// receipts, and anything else the relays say meanwhile, each frame as the serial framing puts it on the line
/// (COBS, CRC-32C, delimiters).
struct LineMeasurement {
    let messages: [CorpusMessage]
    let encrypt: Bool
    let baud: Int
    let timeout: Double
    let trace: Bool
    /// A dictionary both relays hold besides none (as a federation dictionary would be once published); nil:
    /// dictionary 1, as shipped.
    var dictionary: CompressionDictionary? = nil
    /// A federation dictionary relay A trained (as `relay dict train` does), published through the federation before
    /// the measurement (as `relay dict publish`): B takes the signed bundle in from the line and says it holds it, and
    /// A's messages to B choose it through what B said (`DictionaryChoice`), as with `relay send`.
    var publish: [UInt8]? = nil
    /// Take every frame apart (`LineBreakdown`).
    var breakdown = false

    struct Result {
        var textBytes = 0
        var lineBytes = 0, lineAB = 0, lineBA = 0
        var packetBytes = 0
        var framesAB = 0, framesBA = 0
        var delivered = 0, receipted = 0
        var seconds = 0.0
        var bundleBytes = 0
        var signed = 0, encrypted = 0
        /// Publishing: the dictionary's id, the bytes on the line until B said it holds it (not counted above), and how
        /// many of the messages A compressed with it.
        var published: UInt8? = nil
        var publishLineBytes = 0
        var publishSeconds = 0.0
        var usedPublished = 0
        var breakdown: LineBreakdown? = nil
    }

    /// Counts the receipts relay A's runtime logs (one line per bundle of A's that a receipt says arrived).
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var ids: Set<String> = []
        func add(_ id: String) { self.lock.lock(); self.ids.insert(id); self.lock.unlock() }
        var count: Int { self.lock.lock(); defer { self.lock.unlock() }; return self.ids.count }
    }

    struct ReceiptHandler: LogHandler {
        let counter: Counter
        let echo: Bool
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            if event.message.description == "receipt", let id = event.metadata?["bundle.id"] { self.counter.add("\(id)") }
            if self.echo { FileHandle.standardError.write(Data("A \(event.level) \(event.message) \(event.metadata ?? [:])\n".utf8)) }
        }
    }

    func run() async throws -> Result {
        let dir = NSTemporaryDirectory() + "courier-line-\(getpid())-\(self.encrypt ? "e2e" : "plain")"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tap: FrameTap
        do { tap = try FrameTap() } catch { throw DirewolfBench.BenchFailure(message: "\(error)") }
        defer { tap.stop() }
        let receipts = Counter()
        var logA = Logger(label: "relay-A") { _ in ReceiptHandler(counter: receipts, echo: self.trace) }
        logA.logLevel = .info
        var logB = Logger(label: "relay-B") { StreamLogHandler.standardError(label: $0) }
        logB.logLevel = self.trace ? .info : .critical
        let key = NetworkKey.random()
        // Each relay its own compressor (its own shelf of federation dictionaries).
        func compressor() -> BodyCompressor { self.dictionary.map { BodyCompressor(dictionary: $0) } ?? BodyCompressor() }
        let a = try NoisyBench.Side(name: "A", identity: NodeIdentity(), key: key, dir: dir, link: "serial:\(tap.pathA):\(self.baud)",
                                    logger: logA, compressor: compressor())
        let b = try NoisyBench.Side(name: "B", identity: NodeIdentity(), key: key, dir: dir, link: "serial:\(tap.pathB):\(self.baud)",
                                    logger: logB, compressor: compressor())
        b.start()
        a.start()
        guard await DirewolfBench.waitUntil(60, { a.knows(b) && b.knows(a) }) else {
            await a.stop(); await b.stop()
            throw DirewolfBench.BenchFailure(message: "the relays did not learn each other's keys within 60 s")
        }
        // The greeting (announces, summaries) is over once the line has been quiet for two seconds.
        var quiet = (tap.frames.count, Date())
        _ = await DirewolfBench.waitUntil(30) {
            let n = tap.frames.count
            if n != quiet.0 { quiet = (n, Date()) }
            return Date().timeIntervalSince(quiet.1) >= 2
        }
        let submitStore = try Store(path: a.dbPath, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
        let bShort = b.config.identity.nodeID.short
        var result = Result()
        let codec = COBSFrameCodec()
        if let dict = self.publish {
            // What `relay dict train` keeps and `relay dict publish` sends, in A's store; A's running relay floods it.
            let now = Date().timeIntervalSince1970
            let label = try DictionaryLabel(id: 2, version: 1)
            var d = StoredDictionary(id: label.id, fingerprint: FederationDictionary.fingerprint(dict), origin: a.config.identity.nodeID.short,
                                     version: label.version, made: Int64(now), bytes: dict)
            var opts = BundleOptions(kind: .dictionary)
            opts.extensions = [label.asExtension]
            let bundle = try BundleMaker(identity: a.config.identity, store: submitStore).make(kind: .dictionary, destination: .everyone, content: dict, options: opts, now: now)
            d.bundle = bundle.encode()
            try submitStore.saveDictionary(d, now: Int64(now))
            let f0 = tap.frames.count
            let t0 = Date()
            a.runtime.poll()
            // A failing read of relay A's store ends the wait and is named, not taken for "not yet".
            var readFailure: (any Error)?
            let held = await DirewolfBench.waitUntil(120) {
                do { return try a.store.dictionaryHolders()[bShort]?.contains(d.entry) == true } catch {
                    readFailure = error
                    return true
                }
            }
            guard held, readFailure == nil else {
                await a.stop(); await b.stop()
                throw DirewolfBench.BenchFailure(message: readFailure.map { "cannot read relay A's store: \($0)" }
                                                 ?? "relay B did not say it holds the published dictionary within 120 s")
            }
            result.publishSeconds = Date().timeIntervalSince(t0)
            var quietAgain = (tap.frames.count, Date())
            _ = await DirewolfBench.waitUntil(30) {
                let n = tap.frames.count
                if n != quietAgain.0 { quietAgain = (n, Date()) }
                return Date().timeIntervalSince(quietAgain.1) >= 2
            }
            result.published = label.id
            result.publishLineBytes = tap.frames.dropFirst(f0).filter { !$0.injected }.reduce(0) { $0 + codec.encode($1.packet).count }
        }
        let before = tap.frames.count
        // As `relay send`: bundles made and stored without an engine; A's runtime adopts them from the change feed.
        let submitter = BundleMaker(identity: a.config.identity, groups: a.config.groups, store: submitStore, compressor: compressor())
        var ids: Set<BundleID> = []
        let t0 = Date()
        for m in self.messages {
            var opts = BundleOptions(kind: .text)
            if self.encrypt {
                let known = try submitStore.peers().filter { $0.nodeID.short == bShort }
                guard known.count == 1 else { throw DirewolfBench.BenchFailure(message: "relay A does not know B's keys") }
                opts.encryptTo = known[0].keys
            }
            let id = try submitter.submit(kind: .text, destination: .node(bShort), content: m.utf8, options: opts,
                                          now: Date().timeIntervalSince1970)
            ids.insert(id)
            result.textBytes += m.utf8.count
            if let q = try submitStore.bundle(id), let bundle = try? CourierBundle(decoding: q.data) {
                result.bundleBytes += q.data.count
                if bundle.isSigned { result.signed += 1 }
                if bundle.isEncrypted { result.encrypted += 1 }
                if let p = result.published, bundle.compression.dictionary == p { result.usedPublished += 1 }
            }
        }
        a.runtime.poll()
        func delivered() -> Int { ((try? b.store.inbox(limit: 100_000)) ?? []).filter { ids.contains($0.id) }.count }
        _ = await DirewolfBench.waitUntil(self.timeout) { delivered() == ids.count && receipts.count >= ids.count }
        result.seconds = Date().timeIntervalSince(t0)
        result.delivered = delivered()
        result.receipted = receipts.count
        await a.stop()
        await b.stop()
        if self.breakdown {
            result.breakdown = LineBreakdown(
                frames: tap.frames.dropFirst(before).filter { !$0.injected }, framed: { codec.encode($0.packet).count }, key: key,
                nodes: [a.config.identity.nodeID, b.config.identity.nodeID])
        }
        for f in tap.frames.dropFirst(before) where !f.injected {
            let n = codec.encode(f.packet).count
            result.lineBytes += n
            result.packetBytes += f.packet.count
            if f.from == .a { result.lineAB += n; result.framesAB += 1 } else { result.lineBA += n; result.framesBA += 1 }
        }
        return result
    }
}
