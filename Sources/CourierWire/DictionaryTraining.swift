import CZstd
import Synchronization

/// Why a dictionary could not be trained.
public struct DictionaryTrainingError: Error, CustomStringConvertible {
    public let description: String
}

/// Trains a zstd dictionary (RFC 8878 §5: magic, dictionary id, entropy tables, content) from sample messages with
/// libzstd's COVER trainer, its segment size k and d-mer size d chosen by libzstd's own search
/// (`ZDICT_optimizeTrainFromBuffer_cover`: d in {6, 8}, k in 50-2000, each candidate scored by compressing the samples
/// at Courier's level), single-threaded. The same samples, in the same order, and the same libzstd give the same bytes.
///
/// Why COVER and not `ZDICT_trainFromBuffer` (fastCover with its defaults, used until session 9): on one federation's
/// 500 messages (78 KB) and another 120 of it, a 16 KiB dictionary brought the 120 to 8,356 B of content (the smaller
/// of it and dictionary 1, per message) instead of 8,837 B, and 110 of the 120 chose it instead of 89 (README,
/// "With a federation's own dictionary"). It costs more CPU once per `relay dict train` (seconds on 100 KB of texts).
public enum DictionaryTrainer {
    /// One training at a time in a process: libzstd 1.5.4's COVER trainer (Debian 12) sorts through a global context
    /// (`g_coverCtx` in cover.c, for want of a reentrant qsort), so two trainings at once on two threads corrupt each
    /// other's sort and give other bytes (seen: the same samples twice gave different dictionaries when another test
    /// trained at the same time).
    private static let libzstdTrainer = Mutex(())

    public static func train(_ samples: [[UInt8]], capacity: Int) throws(DictionaryTrainingError) -> [UInt8] {
        let (joined, sizes) = try Self.joined(samples)
        var params = ZDICT_cover_params_t()
        params.nbThreads = 1
        params.splitPoint = 1.0  // every sample trains and scores: a relay's few hundred texts are too few to split
        params.zParams.compressionLevel = Int32(Zstd.level)
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { o in
            joined.withUnsafeBytes { j in
                sizes.withUnsafeBufferPointer { s in
                    Self.libzstdTrainer.withLock { _ in
                        ZDICT_optimizeTrainFromBuffer_cover(o.baseAddress, capacity, j.baseAddress, s.baseAddress, UInt32(s.count), &params)
                    }
                }
            }
        }
        return try Self.trained(out, n, messages: sizes.count, bytes: joined.count)
    }

    /// libzstd's default trainer (`ZDICT_trainFromBuffer`: fastCover, d = 8, its k searched at level 3), what
    /// `train` was until session 9: kept so that tests and benchmarks can show what COVER gains over it.
    public static func trainWithLibzstdDefaults(_ samples: [[UInt8]], capacity: Int) throws(DictionaryTrainingError) -> [UInt8] {
        let (joined, sizes) = try Self.joined(samples)
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { o in
            joined.withUnsafeBytes { j in
                sizes.withUnsafeBufferPointer { s in
                    Self.libzstdTrainer.withLock { _ in
                        ZDICT_trainFromBuffer(o.baseAddress, capacity, j.baseAddress, s.baseAddress, UInt32(s.count))
                    }
                }
            }
        }
        return try Self.trained(out, n, messages: sizes.count, bytes: joined.count)
    }

    /// The non-empty samples end to end, and their sizes, as libzstd's trainers take them (at least 8).
    private static func joined(_ samples: [[UInt8]]) throws(DictionaryTrainingError) -> ([UInt8], [Int]) {
        let usable = samples.filter { !$0.isEmpty }
        guard usable.count >= 8 else {
            throw DictionaryTrainingError(description: "\(usable.count) messages: a dictionary needs at least 8 (better hundreds)")
        }
        return (usable.flatMap { $0 }, usable.map { $0.count })
    }

    /// A trainer's result: the dictionary's `n` bytes of `out`, or libzstd's error named.
    private static func trained(_ out: [UInt8], _ n: Int, messages: Int, bytes: Int) throws(DictionaryTrainingError) -> [UInt8] {
        if ZDICT_isError(n) != 0 {
            throw DictionaryTrainingError(description: "libzstd: \(String(cString: ZDICT_getErrorName(n))) (\(messages) messages, \(bytes) bytes)")
        }
        return Array(out.prefix(n))
    }
}
