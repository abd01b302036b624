import ArgumentParser
import CourierStore
import CourierTooling
import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Durable submissions per second, scheduling latency at 100,000 queued, size per bundle, peak memory.")

    @Option(help: "Bundles queued for the latency, size and memory figures.") var bundles = 100_000
    @Option(help: "Single-transaction submissions to time.") var single = 500
    @Option(help: "Bundles a batch.") var batch = 100
    @Option(help: "Folder for the database (default: a new temporary folder, removed afterwards).") var dir: String?

    func run() throws {
        let folder = self.dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("courier-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if self.dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let path = folder + "/bench.db"
        var config = Store.Configuration()
        config.quotaBytes = 1 << 40
        let store = try Store(path: path, configuration: config)
        let texts = (try? Corpus.load(directory: Corpus.defaultDirectory()))?.map(\.utf8).filter { $0.count <= 400 }
            ?? [Array("Water distribution moves to Thursday 7:00 at the east well.".utf8)]
        let origins = (0..<16).map { _ in NodeIdentity() }
        let kinds: [Kind] = [.alert, .aidRequest, .aidOffer, .grievance, .minutes, .text]
        let compressor = BodyCompressor()
        let now = Int64(Date().timeIntervalSince1970)
        var seq: UInt32 = 0
        func make(_ n: Int) throws -> [CourierBundle] {
            try (0..<n).map { _ in
                seq += 1
                let kind = kinds[Int(seq) % kinds.count]
                return try CourierBundle.make(
                    kind: kind, destination: .everyone, content: texts[Int(seq) % texts.count],
                    origin: origins[Int(seq) % origins.count], created: CourierTime.minutes(unixSeconds: now),
                    sequence: seq, options: BundleOptions(kind: kind, sign: false), compressor: compressor)
            }
        }
        print("Courier store benchmark: SQLite WAL, synchronous=FULL (each commit fsynced), database in \(folder)")

        // 1. Durable submissions, one transaction each.
        let singles = try make(self.single)
        var t = Date()
        for b in singles { try store.insert(b, now: now, local: true, custody: true) }
        let singleRate = Double(self.single) / Date().timeIntervalSince(t)
        print(String(format: "  durable submissions, one per transaction:   %8.0f /s", singleRate))

        // 1b. What a relay now writes for every packet it accepts: the sender's replay windows (SPEC 4.8), kept
        // so a packet captured before a restart is a replay after it.
        var window = ReplayWindow()
        let sender = origins[0].nodeID
        t = Date()
        for c in UInt32(1)...UInt32(self.single) {
            _ = window.check(c)
            try store.saveReplayWindow(window, for: sender)
        }
        let windowRate = Double(self.single) / Date().timeIntervalSince(t)
        print(String(format: "  replay-window saves (one per packet received): %5.0f /s", windowRate))

        // 2. Batched, up to the target queue size.
        var batchTime = 0.0
        var inserted = self.single
        while inserted < self.bundles {
            let n = min(self.batch, self.bundles - inserted)
            let bs = try make(n)
            t = Date()
            _ = try store.insert(bs, now: now, local: false, custody: true)
            batchTime += Date().timeIntervalSince(t)
            inserted += n
        }
        let batchRate = Double(inserted - self.single) / batchTime
        print(String(format: "  durable submissions, %d per transaction:   %8.0f /s   (target >= 5,000)", self.batch, batchRate))

        // 3. Scheduling query latency at this size.
        let neighbour = NodeIdentity().nodeID
        for b in try store.schedule(for: nil, now: now, limit: 200) {
            try store.recordSent(b.id, to: neighbour, transfer: 1, fragments: 1, indices: [0], nextRetry: now + 600, now: now)
        }
        var lat: [Double] = []
        for _ in 0..<1_000 {
            t = Date()
            let r = try store.schedule(for: neighbour, now: now, limit: 16)
            lat.append(Date().timeIntervalSince(t) * 1_000)
            precondition(r.count == 16)
        }
        lat.sort()
        print(String(format: "  scheduling query (next 16 for a neighbour, 200 already sent to it), %d queued:", try store.count()))
        print(String(format: "      median %.3f ms, p99 %.3f ms, max %.3f ms   (target < 1 ms)", lat[lat.count / 2], lat[lat.count * 99 / 100], lat.last!))

        // 4. Size per bundle, WAL folded in.
        _ = try store.integrityCheck()
        let files = [path, path + "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }
        let bytes = files.reduce(0, +)
        let payload = try store.snapshot().total.bytes
        print(String(format: "  database size: %.1f MB for %d bundles = %.0f B a bundle (encoded bundles average %.0f B)",
                     Double(bytes) / 1e6, inserted, Double(bytes) / Double(inserted), Double(payload) / Double(inserted)))

        // 5. Peak memory of this process.
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "  peak memory (max RSS) with %d queued: %.1f MB   (target < 50 MB)", inserted, Double(usage.ru_maxrss) / 1024))
    }
}
