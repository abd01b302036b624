import Foundation

/// One message of the sample corpus (corpus/*.jsonl): written for this project in English, Arabic, Central Kurdish
/// (Sorani, Arabic script) and Northern Kurdish (Kurmanji, Latin script).
public struct CorpusMessage: Codable, Sendable, Hashable {
    public let id: String
    public let lang: String
    public let kind: String
    public let text: String

    public var utf8: [UInt8] { Array(self.text.utf8) }

    /// The held-out split: about one message in five, chosen by a hash of the id (FNV-1a 32, modulo 5 == 0), so the
    /// split never changes when messages are added. The dictionary is never trained on these.
    public var isHeldOut: Bool { Corpus.fnv1a(self.id) % 5 == 0 }
}

public enum CorpusError: Error, CustomStringConvertible {
    case unreadable(String, String)
    case badLine(String, Int, String)
    case empty(String)

    public var description: String {
        switch self {
        case .unreadable(let p, let why): return "cannot read \(p): \(why)"
        case .badLine(let p, let n, let why): return "\(p):\(n): \(why)"
        case .empty(let p): return "no messages found in \(p) (expected *.jsonl or *.txt files)"
        }
    }
}

public enum Corpus {
    public static func fnv1a(_ s: String) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in s.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        return h
    }

    /// Loads every `*.jsonl` file (one `CorpusMessage` a line) and every `*.txt` file (one message each, kind from
    /// the file name's prefix before '-' if any) directly inside `directory`, sorted by id.
    public static func load(directory: String) throws -> [CorpusMessage] {
        let fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: directory).sorted() } catch {
            throw CorpusError.unreadable(directory, "\(error.localizedDescription)")
        }
        var out: [CorpusMessage] = []
        let decoder = JSONDecoder()
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            if name.hasSuffix(".jsonl") {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw CorpusError.unreadable(path, "not UTF-8 text")
                }
                for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
                    do { out.append(try decoder.decode(CorpusMessage.self, from: Data(line.utf8))) } catch {
                        throw CorpusError.badLine(path, i + 1, "\(error)")
                    }
                }
            } else if name.hasSuffix(".txt") {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw CorpusError.unreadable(path, "not UTF-8 text")
                }
                let stem = String(name.dropLast(4))
                let kind = stem.split(separator: "-").first.map(String.init) ?? "text"
                out.append(CorpusMessage(id: stem, lang: "?", kind: kind, text: text))
            }
        }
        guard !out.isEmpty else { throw CorpusError.empty(directory) }
        return out.sorted { $0.id < $1.id }
    }

    /// The repository's corpus folder, found from the current directory or this source file.
    public static func defaultDirectory(_ sub: String = "corpus") -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let candidates = [
            (cwd as NSString).appendingPathComponent(sub),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(sub).path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }
}
