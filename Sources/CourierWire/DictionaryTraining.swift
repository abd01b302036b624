import CZstd

/// Why a dictionary could not be trained.
public struct DictionaryTrainingError: Error, CustomStringConvertible {
    public let description: String
}

/// Trains a zstd dictionary (RFC 8878 §5: magic, dictionary id, entropy tables, content) from sample messages with
/// libzstd's default trainer (`ZDICT_trainFromBuffer`). The same samples, in the same order, and the same libzstd
/// give the same bytes.
public enum DictionaryTrainer {
    public static func train(_ samples: [[UInt8]], capacity: Int) throws(DictionaryTrainingError) -> [UInt8] {
        let usable = samples.filter { !$0.isEmpty }
        guard usable.count >= 8 else {
            throw DictionaryTrainingError(description: "\(usable.count) messages: a dictionary needs at least 8 (better hundreds)")
        }
        let joined = usable.flatMap { $0 }
        let sizes = usable.map { $0.count }
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { o in
            joined.withUnsafeBytes { j in
                sizes.withUnsafeBufferPointer { s in
                    ZDICT_trainFromBuffer(o.baseAddress, capacity, j.baseAddress, s.baseAddress, UInt32(s.count))
                }
            }
        }
        if ZDICT_isError(n) != 0 {
            throw DictionaryTrainingError(description: "libzstd: \(String(cString: ZDICT_getErrorName(n))) (\(usable.count) messages, \(joined.count) bytes)")
        }
        return Array(out.prefix(n))
    }
}
