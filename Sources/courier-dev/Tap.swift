import ArgumentParser
import CourierLinks
import CourierWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `courier-dev tap`: a wiretap between two relays on framed-serial links (SPEC 18.1). It opens two pseudo-terminals,
/// prints their paths, passes every frame between them and records it; it can also send again frames recorded
/// earlier (a replay, as an outsider who recorded the channel would) as if one side had sent them.
struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "Sit between two relays (serial links on two ptys): record every frame, and replay recorded frames.",
        discussion: """
            Prints `a PATH` and `b PATH`: run one relay with --link serial:PATH_A:115200, the other on PATH_B. Runs until \
            SIGINT or SIGTERM (or --seconds), then writes what it saw to --record as JSON lines \
            ({"from":"a","at":UNIX,"injected":false,"packet":"HEX"}). --replay FILE sends the frames FILE recorded \
            from side --from (again as that side) once --after seconds have passed.
            """)

    @Option(help: "Write the frames seen to this file (JSON lines) when the tap stops.") var record: String?
    @Option(help: "Frames recorded earlier (JSON lines, as --record writes them) to send again.") var replay: String?
    @Option(help: "Which side's recorded frames --replay sends, as that side: a or b.") var from: String = "b"
    @Option(help: "Seconds after the start to send the --replay frames.") var after: Double = 5
    @Option(help: "Stop after this many seconds (default: at SIGINT or SIGTERM).") var seconds: Double?

    struct Line: Codable {
        var from: String
        var at: Double
        var injected: Bool
        var packet: String
    }

    func validate() throws {
        guard FrameTap.Side(rawValue: self.from) != nil else { throw ValidationError("--from \(self.from): use a or b") }
        if let s = self.seconds, !(s.isFinite && s > 0) { throw ValidationError("--seconds \(s): give a number of seconds above 0") }
        guard self.after.isFinite, self.after >= 0 else { throw ValidationError("--after \(self.after): give seconds, 0 or more") }
    }

    func run() throws {
        let side = FrameTap.Side(rawValue: self.from)!
        var replayFrames: [[UInt8]] = []
        if let path = self.replay {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw ValidationError("cannot read \(path): \(error.localizedDescription)")
            }
            for (n, raw) in text.split(separator: "\n").enumerated() {
                guard let l = try? JSONDecoder().decode(Line.self, from: Data(raw.utf8)), let p = [UInt8](hex: l.packet) else {
                    throw ValidationError("\(path) line \(n + 1): not a frame line as --record writes them")
                }
                if l.from == side.rawValue && !l.injected { replayFrames.append(p) }
            }
        }
        let tap = try FrameTap()
        defer { tap.stop() }
        // Unbuffered: a script reading the paths gets them at once.
        FileHandle.standardOutput.write(Data("a \(tap.pathA)\nb \(tap.pathB)\n".utf8))
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGINT, SIGTERM].map { s in
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { stop.signal() }
            src.resume()
            return src
        }
        let start = DispatchTime.now()
        let end = self.seconds.map { start + $0 } ?? .distantFuture
        if !replayFrames.isEmpty, stop.wait(timeout: min(end, start + self.after)) == .timedOut {
            for p in replayFrames { tap.inject(p, from: side) }
            FileHandle.standardError.write(Data("tap: sent \(replayFrames.count) recorded frames again as side \(side.rawValue)\n".utf8))
            _ = stop.wait(timeout: end)
        } else if replayFrames.isEmpty {
            _ = stop.wait(timeout: end)
        }
        sources.forEach { $0.cancel() }
        let frames = tap.frames
        FileHandle.standardError.write(Data("tap: \(frames.count) frames (\(tap.frames(from: .a).count) from a, \(tap.frames(from: .b).count) from b), \(tap.damaged) damaged\n".utf8))
        if let path = self.record {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            var out = Data()
            for f in frames {
                out += try enc.encode(Line(from: f.from.rawValue, at: f.at, injected: f.injected, packet: f.packet.hex))
                out += Data("\n".utf8)
            }
            do { try out.write(to: URL(fileURLWithPath: path)) } catch {
                throw ValidationError("cannot write \(path): \(error.localizedDescription)")
            }
        }
    }
}
