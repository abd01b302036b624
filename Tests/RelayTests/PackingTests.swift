import CourierLinks
import Foundation
import Testing

/// Issue 10 point 6: bundles whose records come within 1-2 bytes of the MTU, and bundles over ~18 KB, were queued
/// with exit 0 and never sent. Two real relays on a virtual cable (serial, default MTU 255, 115200 baud).
@Suite(.serialized, .timeLimit(.minutes(20))) struct BoundarySizeTests {
    /// A text of `n` random printable characters (the same prefix for every length, from one seed).
    static let pool: [Character] = {
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-()'")
        return (0..<65_000).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return alphabet[Int(x % UInt64(alphabet.count))]
        }
    }()
    static func text(_ n: Int, offset: Int) -> String { String(Self.pool[offset..<(offset + n)]) }

    func send(_ dir: String, _ dest: [String], _ text: String) throws -> String {
        let file = dir + "/msg.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let (rc, out, err) = try R.run(["send", "--data-dir", dir, "--unknown-ok", "--file", file] + dest)
        #expect(rc == 0, "send: \(err)")
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func sizes(_ dir: String) throws -> [String: Int] {
        let out = try R.run(["queue", "list", "--data-dir", dir, "--json"]).1
        var s: [String: Int] = [:]
        for line in out.split(separator: "\n") {
            if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let id = o["id"] as? String,
               let n = o["size"] as? Int { s[id] = n }
        }
        return s
    }

    /// Texts whose bundles are exactly `targets` bytes, found by sending candidates from a scratch member of the
    /// same federation (same header, same compression; a fresh one each round, so sequence numbers stay one byte).
    func texts(for targets: [Int], dest: [String], code: String) throws -> [Int: String] {
        var found: [Int: String] = [:]
        var guess = Dictionary(uniqueKeysWithValues: targets.map { ($0, max(1, $0 - 20)) })
        for _ in 0..<6 where found.count < targets.count {
            let scratch = R.tempDir() + "/scratch"
            #expect(try R.run(["init", "--data-dir", scratch, "--name", "scratch", "--join", code]).0 == 0)
            var ids: [String: (Int, Int)] = [:]
            for t in targets where found[t] == nil {
                // A few lengths around the guess: compression can step over an exact size.
                for d in [0, -1, 1] {
                    let n = max(1, guess[t]! + d)
                    ids[try self.send(scratch, dest, Self.text(n, offset: t % 97))] = (t, n)
                }
            }
            let sizes = try self.sizes(scratch)
            let before = guess
            for (id, (t, n)) in ids {
                guard let s = sizes[id] else { continue }
                if s == t { found[t] = Self.text(n, offset: t % 97) }
                // Off by k bytes at the guess: move by k (at least 2, past the neighbours just tried).
                if n == before[t]! { guess[t] = max(1, n + (t - s == 0 ? 0 : (t - s > 0 ? max(2, t - s) : min(-2, t - s)))) }
            }
        }
        #expect(found.count == targets.count, "no text makes bundles of \(Set(targets).subtracting(found.keys).sorted()) B")
        return found
    }

    @Test func bundlesAtTheMTUBoundariesAndLargeOnesAllArrive() throws {
        let root = R.tempDir()
        let (a, b) = (root + "/alpha", root + "/bravo")
        #expect(try R.run(["init", "--data-dir", a, "--name", "alpha"]).0 == 0)
        let code = try R.run(["invite", "--data-dir", a]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.run(["init", "--data-dir", b, "--name", "bravo", "--join", code]).0 == 0)
        let bid = try R.run(["id", "--data-dir", b]).1.trimmingCharacters(in: .whitespacesAndNewlines)

        // Bundle sizes (bytes on the air after compression) that were never sent at MTU 255: directed whole bundles
        // of 223-224 B, flooded 228-229 B, two and three fragments filling their packets; then large bundles.
        let directed = try self.texts(for: [223, 224, 443, 444, 663, 664, 665], dest: ["--to", bid], code: code)
        let flooded = try self.texts(for: [228, 229, 443, 663, 664, 665], dest: ["--everyone"], code: code)
        var sent: [String: (String, String)] = [:]  // id: (what, text)
        for (size, t) in directed { sent[try self.send(a, ["--to", bid], t)] = ("directed \(size) B", t) }
        for (size, t) in flooded { sent[try self.send(a, ["--everyone"], t)] = ("flooded \(size) B", t) }
        for n in [28_000, 65_000] {
            sent[try self.send(a, ["--to", bid], Self.text(n, offset: 0))] = ("directed text of \(n) B", Self.text(n, offset: 0))
        }
        sent[try self.send(a, ["--everyone"], Self.text(28_000, offset: 0))] = ("flooded text of 28000 B", Self.text(28_000, offset: 0))
        let large = try self.sizes(a).filter { sent[$0.key]?.1.count ?? 0 > 20_000 }.values.sorted()
        #expect(large.count == 3 && large[0] > 18_432 && large[2] > 45_000, "large bundles: \(large)")

        let cable = try VirtualCable()
        defer { cable.stop() }
        let pa = try R.start(["run", "--data-dir", a, "--link", "serial:\(cable.pathA):115200"], log: a + "/run.log")
        let pb = try R.start(["run", "--data-dir", b, "--link", "serial:\(cable.pathB):115200"], log: b + "/run.log")
        defer { R.stop(pa); R.stop(pb) }
        let all = try R.wait(180) { Set(sent.keys).isSubset(of: Set(try R.inbox(b).compactMap { $0["id"] as? String })) }
        let got = Dictionary(try R.inbox(b).compactMap { m in (m["id"] as? String).map { ($0, m["text"] as? String ?? "") } }) { x, _ in x }
        let missing = sent.filter { got[$0.key] == nil }.map(\.value.0).sorted()
        #expect(all, "never arrived: \(missing)")
        for (id, (what, t)) in sent where got[id] != nil { #expect(got[id] == t, "\(what) arrived changed") }
    }
}
