import ArgumentParser
import CourierNode
import CourierWire
import Foundation

// Changing the federation's network key (SPEC 3.7): to remove a member (its relay was captured, or it left), and
// as routine (each lunar month, as the assemblies renew their pacts). One relay makes the new key and a moment to
// switch; its operator hands the printed line to every member that stays, in person or in an end-to-end message;
// every relay holding it switches at that moment and still accepts the old key for a week, or until
// `relay rekey retire`. A member that never got the line is cut off from then on.

extension DataDir {
    var rotationFile: String { self.path + "/rekey.json" }

    /// rekey.json: the scheduled key and its moment, and the key a finished change replaced and until when it is
    /// still accepted (Unix seconds). Kept beside network.json, outside the database.
    struct RotationFile: Codable {
        var next: String?
        var switchAt: Double?
        var previous: String?
        var previousUntil: Double?
        /// CRC-32C of the other fields (8 hex digits), as identity.json and network.json carry: a damaged digit of a
        /// key would otherwise switch the relay to a key nobody holds. Absent in files from before it (read as they are).
        var check: String?

        var expectedCheck: String {
            func t(_ d: Double?) -> String { d.map { "\($0)" } ?? "" }
            return checkDigits("\(self.next?.lowercased() ?? "")|\(t(self.switchAt))|\(self.previous?.lowercased() ?? "")|\(t(self.previousUntil))")
        }
    }

    /// The key rotation on disk; none when the file is absent.
    func keyRotation() throws -> KeyRotation {
        guard FileManager.default.fileExists(atPath: self.rotationFile) else { return KeyRotation() }
        func damaged(_ why: String) -> RelayError {
            RelayError.config("\(self.rotationFile) is damaged (\(why)): restore it, or delete it and run `relay rekey add CODE --at TIME` again")
        }
        guard let data = FileManager.default.contents(atPath: self.rotationFile) else { throw damaged("unreadable") }
        let f: RotationFile
        do { f = try JSONDecoder().decode(RotationFile.self, from: data) } catch { throw damaged("not the JSON `relay rekey` writes") }
        if let c = f.check, c.lowercased() != f.expectedCheck { throw damaged("it fails its checksum: a damaged or edited digit") }
        func key(_ hex: String?, _ field: String) throws -> NetworkKey? {
            guard let hex else { return nil }
            guard let b = [UInt8](hex: hex), let k = try? NetworkKey(bytes: b) else { throw damaged("\(field) is not 64 hex digits") }
            return k
        }
        let next = try key(f.next, "next"), previous = try key(f.previous, "previous")
        guard (next == nil) == (f.switchAt == nil), (previous == nil) == (f.previousUntil == nil) else {
            throw damaged("a key without its time, or a time without its key")
        }
        return KeyRotation(next: next, switchAt: f.switchAt ?? .infinity, previous: previous, previousUntil: f.previousUntil ?? -.infinity)
    }

    func writeKeyRotation(_ r: KeyRotation) throws {
        var f = RotationFile(next: r.next?.bytes.hex, switchAt: r.next == nil ? nil : r.switchAt,
                             previous: r.previous?.bytes.hex, previousUntil: r.previous == nil ? nil : r.previousUntil)
        f.check = f.expectedCheck
        try self.writeSecret(f, to: self.rotationFile)
    }

    /// Writes a key file whole or not at all (a temporary file, synced, then renamed over the old one), readable by
    /// the relay's user only.
    func writeSecret<T: Encodable>(_ value: T, to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tmp = path + ".new"
        do {
            let data = try enc.encode(value)
            guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw RelayError.cannotCreate("cannot write \(tmp): check permissions and free space (nothing was changed)")
            }
            let fd = open(tmp, O_RDONLY)
            if fd >= 0 { fsync(fd); close(fd) }
            guard rename(tmp, path) == 0 else {
                throw RelayError.cannotCreate("cannot replace \(path): \(String(cString: strerror(errno))) (nothing was changed)")
            }
        } catch let e as RelayError { throw e } catch {
            throw RelayError.cannotCreate("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Once the moment of a scheduled change has passed, the files say so: network.json holds the new key and
    /// rekey.json the replaced one with its grace. Each step leaves files that the next call settles the same way
    /// (a crash in between loses nothing).
    func settleKeyRotation(now: Double) throws {
        var r = try self.keyRotation()
        guard let next = r.next, now >= r.switchAt else { return }
        let (current, open) = try self.network()
        if next != current {
            // 1. Remember the key being replaced, 2. make the new key current.
            r.previous = current
            r.previousUntil = r.switchAt + KeyRotation.replacedKeyAcceptedFor
            try self.writeKeyRotation(r)
            var nf = NetworkFile(key: next.bytes.hex, open: open)
            nf.check = nf.expectedCheck
            try self.writeSecret(nf, to: self.networkFile)
        }
        // 3. Nothing scheduled any more.
        r.next = nil
        r.switchAt = .infinity
        try self.writeKeyRotation(r)
    }

    /// The key packets are sealed under now (after a switch the files may not be settled yet).
    func sendingKey(now: Double = Date().timeIntervalSince1970) throws -> NetworkKey {
        try self.keyRotation().keys(current: try self.network().0, at: now).send
    }

    /// Tells a running relay to re-read its keys (SIGHUP); says which one did.
    func tellRunningRelay() -> String {
        guard let relay = self.runningRelay(), let pid = relay.pid else {
            return "no relay is running on \(self.path): `relay run` uses it at its next start"
        }
        guard kill(pid, SIGHUP) == 0 else {
            return "could not signal the running relay (pid \(pid)): \(String(cString: strerror(errno))); restart it or `kill -HUP \(pid)`"
        }
        return "the running relay (pid \(pid)) applies it now"
    }
}

extension Relay {
    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the federation's network key: to remove a member, or as routine.",
            discussion: """
                One relay runs `relay rekey new`, which prints a line with a join code and a moment. Hand that line to \
                every member that stays, in person or in an end-to-end message; each runs it. At the moment every \
                relay that holds the new key sends under it, and accepts the old key for 7 days more (or until \
                `relay rekey retire`), so members whose clocks differ or who were away catch up. A member that never \
                got the line cannot read or send anything on the federation's links from then on. See SPEC 3.7.
                """,
            subcommands: [Show.self, New.self, Add.self, Retire.self, Cancel.self], defaultSubcommand: Show.self)

        static func moment(_ at: String?, inHours: Double?, now: Double) throws -> Double {
            switch (at, inHours) {
            case (.some, .some): throw RelayError.usage("give --at or --in, not both")
            case (.some(let text), nil):
                guard let d = ISO8601DateFormatter().date(from: text) else {
                    throw RelayError.usage("--at \(text): not a time; write it as 2026-12-31T18:00:00Z (UTC)")
                }
                return d.timeIntervalSince1970.rounded()
            case (nil, .some(let h)):
                guard h.isFinite, h >= 0, h <= 24 * 366 else { throw RelayError.usage("--in \(h): give hours from 0 to 8784") }
                return (now + h * 3_600).rounded(.down)
            case (nil, nil): return (now + 72 * 3_600).rounded(.down)
            }
        }

        static func utc(_ t: Double) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The key in use, a change scheduled, and the replaced key still accepted.")
            @OptionGroup var d: DirOption
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let now = Date().timeIntervalSince1970
                    let (current, _) = try dir.network()
                    let r = try dir.keyRotation()
                    let k = r.keys(current: current, at: now)
                    if self.json {
                        var o: [String: Any] = ["sending": k.send.fingerprint, "accepting": k.accept.map(\.fingerprint)]
                        if let n = r.next, now < r.switchAt { o["next"] = ["key": n.fingerprint, "at": Rekey.utc(r.switchAt)] }
                        try printJSON(o)
                        return
                    }
                    print("network key \(k.send.fingerprint) in use")
                    if let n = r.next, now < r.switchAt { print("switching to \(n.fingerprint) at \(Rekey.utc(r.switchAt))") }
                    for a in k.accept where a != k.send && a != r.next {
                        let until = a == r.previous ? r.previousUntil : r.switchAt + KeyRotation.replacedKeyAcceptedFor
                        print("still accepting the replaced key \(a.fingerprint) until \(Rekey.utc(until)) (`relay rekey retire` ends it now)")
                    }
                }
            }
        }

        struct New: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make a new network key and a moment to switch to it; prints the line every member that stays runs.")
            @OptionGroup var d: DirOption
            @Option(help: "The moment of the switch, UTC (e.g. 2026-12-31T18:00:00Z).") var at: String?
            @Option(name: .customLong("in"), help: "The switch in this many hours (default 72).") var inHours: Double?
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let now = Date().timeIntervalSince1970
                    try dir.settleKeyRotation(now: now)
                    var r = try dir.keyRotation()
                    if let n = r.next {
                        throw RelayError.usage("a switch to \(n.fingerprint) at \(Rekey.utc(r.switchAt)) is already scheduled: `relay rekey cancel` first to make another")
                    }
                    let at = try Rekey.moment(self.at, inHours: self.inHours, now: now)
                    let (_, open) = try dir.network()
                    let key = NetworkKey.random()
                    r.next = key
                    r.switchAt = at
                    try dir.writeKeyRotation(r)
                    print("new network key \(key.fingerprint); this relay switches to it at \(Rekey.utc(at))")
                    print("give this line to every member that stays (in person, or end-to-end: `relay send --to NODE`), before then:")
                    print("  relay rekey add \(JoinCode.make(key: key, open: open)) --at \(Rekey.utc(at))")
                    print("a member without it is cut off 7 days after the switch, or at once after `relay rekey retire`")
                    print(dir.tellRunningRelay())
                }
            }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Take the new network key another member made, and its moment.")
            @OptionGroup var d: DirOption
            @Argument(help: "The join code from `relay rekey new`.") var code: String
            @Option(help: "The moment of the switch, UTC, as `relay rekey new` printed it.") var at: String?
            @Option(name: .customLong("in"), help: "The switch in this many hours instead.") var inHours: Double?
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let now = Date().timeIntervalSince1970
                    if self.at == nil && self.inHours == nil {
                        throw RelayError.usage("give the moment with --at, as `relay rekey new` printed it, so every member switches together")
                    }
                    let (key, open) = try JoinCode.parse(self.code)
                    try dir.settleKeyRotation(now: now)
                    let (current, ourOpen) = try dir.network()
                    guard open == ourOpen else {
                        throw RelayError.data("that code is for \(open ? "an open" : "a sealed") federation and this relay's is \(ourOpen ? "open" : "sealed"): check you were given the right line (nothing was changed)")
                    }
                    if key == current {
                        print("this relay already uses network key \(key.fingerprint); nothing to do")
                        return
                    }
                    var r = try dir.keyRotation()
                    let at = try Rekey.moment(self.at, inHours: self.inHours, now: now)
                    if let n = r.next, n != key {
                        throw RelayError.usage("a switch to \(n.fingerprint) at \(Rekey.utc(r.switchAt)) is already scheduled: `relay rekey cancel` first")
                    }
                    r.next = key
                    r.switchAt = at
                    try dir.writeKeyRotation(r)
                    print("network key \(key.fingerprint) taken; this relay switches to it at \(Rekey.utc(at))\(at <= now ? " (now: that moment has passed)" : "")")
                    print(dir.tellRunningRelay())
                }
            }
        }

        struct Retire: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Stop accepting the replaced key now (cuts off a removed member before its 7 days).")
            @OptionGroup var d: DirOption
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let now = Date().timeIntervalSince1970
                    try dir.settleKeyRotation(now: now)
                    var r = try dir.keyRotation()
                    if let n = r.next {
                        throw RelayError.usage("the switch to \(n.fingerprint) is at \(Rekey.utc(r.switchAt)); retire the old key after it")
                    }
                    guard let p = r.previous, now < r.previousUntil else {
                        print("no replaced key is accepted; nothing to do")
                        return
                    }
                    r.previous = nil
                    r.previousUntil = -.infinity
                    try dir.writeKeyRotation(r)
                    print("network key \(p.fingerprint) retired: packets sealed under it are refused from now on")
                    print(dir.tellRunningRelay())
                }
            }
        }

        struct Cancel: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Drop a scheduled switch that has not happened yet.")
            @OptionGroup var d: DirOption
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    try dir.requireInitialised()
                    let now = Date().timeIntervalSince1970
                    try dir.settleKeyRotation(now: now)
                    var r = try dir.keyRotation()
                    guard let n = r.next else {
                        print("no switch is scheduled; nothing to do")
                        return
                    }
                    r.next = nil
                    r.switchAt = .infinity
                    try dir.writeKeyRotation(r)
                    print("the switch to \(n.fingerprint) is cancelled; tell the members you gave it to")
                    print(dir.tellRunningRelay())
                }
            }
        }
    }
}
