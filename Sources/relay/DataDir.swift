import CourierLinks
import CourierNode
import CourierStore
import CourierWire
import Foundation
import Logging

/// A failure the operator can act on: one line, and an exit code (sysexits.h numbers).
struct RelayError: Error, CustomStringConvertible {
    let message: String
    let code: Int32
    var description: String { self.message }

    static func usage(_ m: String) -> RelayError { RelayError(message: m, code: 64) }
    static func data(_ m: String) -> RelayError { RelayError(message: m, code: 65) }
    static func noInput(_ m: String) -> RelayError { RelayError(message: m, code: 66) }
    static func unavailable(_ m: String) -> RelayError { RelayError(message: m, code: 69) }
    static func cannotCreate(_ m: String) -> RelayError { RelayError(message: m, code: 73) }
    /// Temporary: another relay holds the data directory; it works once that one stops.
    static func tempFail(_ m: String) -> RelayError { RelayError(message: m, code: 75) }
    /// The data directory is another user's: run the command as that user.
    static func noPermission(_ m: String) -> RelayError { RelayError(message: m, code: 77) }
    static func io(_ m: String) -> RelayError { RelayError(message: m, code: 74) }
    static func config(_ m: String) -> RelayError { RelayError(message: m, code: 78) }
}

/// Runs a command body, turning every failure into one line on stderr and its exit code.
func guarded(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as RelayError {
        FileHandle.standardError.write(Data("relay: \(e.message)\n".utf8))
        throw ExitCodeError(code: e.code)
    } catch let e as StoreError {
        // A full queue is no database error: it is temporary (75), and the operator is told what holds it.
        if case .quotaFull(let needed, let quota, let priority) = e {
            FileHandle.standardError.write(Data("relay: \(quotaFullLine(needed: needed, quota: quota, priority: priority))\n".utf8))
            throw ExitCodeError(code: 75)
        }
        FileHandle.standardError.write(Data("relay: \(e.description)\n".utf8))
        // A damaged counter floor is a damaged file of the data directory, as identity.json would be.
        if case .counterFloor = e { throw ExitCodeError(code: 78) }
        throw ExitCodeError(code: 74)
    } catch let e as LinkError {
        FileHandle.standardError.write(Data("relay: \(e.description)\n".utf8))
        throw ExitCodeError(code: 69)
    } catch let e as WireError {
        FileHandle.standardError.write(Data("relay: \(e.description)\n".utf8))
        throw ExitCodeError(code: 65)
    }
}

struct ExitCodeError: Error { let code: Int32 }

/// What a full queue means to the operator who sent (or pledged, or answered): for a new message the store evicts
/// messages held only to pass on (floods from elsewhere) of its own priority or a lower one, and messages in this
/// relay's custody (its own, and directed ones it carries) of a lower one; never a more urgent one.
func quotaFullLine(needed: Int, quota: Int, priority: UInt8) -> String {
    let name = ["urgent", "aid", "normal", "bulk"].indices.contains(Int(priority)) ? ["urgent", "aid", "normal", "bulk"][Int(priority)] : "class \(priority)"
    let mb = quota % 1_048_576 == 0 ? "\(quota / 1_048_576) MB" : "\(quota) bytes"
    let custody = "in this relay's custody: its own, and those it carries to a node until delivered"
    let held = priority == 0 ? "urgent messages \(custody)" : "more urgent messages, and \(name) ones \(custody)"
    return "queue full: this \(name)-priority message needs \(needed) bytes, and the queue's \(mb) (quota-mb in relay.conf) hold only messages it may not push out (\(held)); nothing was queued and nothing was dropped: try again once queued messages have left (`relay queue list` shows them; `relay queue cancel ID` takes out one of this relay's own), or raise quota-mb"
}

/// The relay's data directory: identity, network key, configuration, database, status.
struct DataDir {
    let path: String
    var identityFile: String { self.path + "/identity.json" }
    var networkFile: String { self.path + "/network.json" }
    var configFile: String { self.path + "/relay.conf" }
    var database: String { self.path + "/courier.db" }
    var statusFile: String { self.path + "/status.json" }
    var lockFile: String { self.path + "/relay.lock" }
    /// The counter floor (SPEC 3.3, 3.4): how far packet counters and bundle sequence numbers may have been used.
    var floorFile: String { self.path + "/counters.json" }

    /// Where `relay run` writes its status: the runtime directory systemd gives a service ($RUNTIME_DIRECTORY,
    /// /run/courier with the packaged unit: memory, not the SD card), else the data directory.
    static func runStatusFile(dataDir: DataDir, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        // systemd lists several directories separated by colons when a unit asks for several.
        if let r = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, !r.isEmpty {
            return String(r) + "/status.json"
        }
        return dataDir.statusFile
    }

    /// The relay running on this data directory, known from its lock on relay.lock (not from the age of a file):
    /// its pid and the status file it named there; nil when none runs.
    func runningRelay() -> (pid: Int32?, statusFile: String)? {
        guard ExclusiveLock.isHeld(path: self.lockFile) else { return nil }
        let lines = ((try? String(contentsOfFile: self.lockFile, encoding: .utf8)) ?? "").split(separator: "\n")
        // A relay that started on a full or read-only disk holds the lock without having written its pid there:
        // /proc/locks names it all the same.
        let pid = lines.first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) } ?? ExclusiveLock.holder(ofPath: self.lockFile)
        let status = lines.first { $0.hasPrefix("status ") }.map { String($0.dropFirst("status ".count)) }
        return (pid, status ?? self.statusFile)
    }

    /// identity.json. `check` (since issue 10) is the CRC-32C of `signingSeed|agreementSeed`, 8 hex digits: one
    /// damaged digit in a seed would otherwise make another node, silently. Files without it are read as before,
    /// and `relay run` adds it. The name is not covered: operators may edit it.
    struct IdentityFile: Codable {
        var name: String?
        var signingSeed: String
        var agreementSeed: String
        var check: String?

        var expectedCheck: String { checkDigits("\(self.signingSeed.lowercased())|\(self.agreementSeed.lowercased())") }
    }

    /// network.json; `check` is the CRC-32C of `key|open` (`open` as true or false).
    struct NetworkFile: Codable {
        var key: String
        var open: Bool
        var check: String?

        var expectedCheck: String { checkDigits("\(self.key.lowercased())|\(self.open)") }
    }

    static func resolve(_ option: String?) throws -> DataDir {
        guard let p = option ?? ProcessInfo.processInfo.environment["RELAY_DATA_DIR"], !p.isEmpty else {
            throw RelayError.usage("no data directory: give --data-dir DIR or set RELAY_DATA_DIR")
        }
        let dir = DataDir(path: (p as NSString).standardizingPath)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), !isDir.boolValue {
            throw RelayError.usage("\(dir.path) is a file, not a directory: give --data-dir the directory that holds identity.json (or, for `relay init`, a new one); nothing was changed")
        }
        try dir.checkUser()
        return dir
    }

    /// A data directory is used by the user it belongs to (the package's `courier`). Root in another user's
    /// directory is refused before it writes anything: the files it would make or replace (`relay init`'s
    /// identity.json, network.json and courier.db; counters.json after `relay send`; relay.lock) would be root's,
    /// and the relay, running as its user, could not read them (it stopped with exit 78 saying network.json was
    /// damaged). Another user who cannot enter the directory is told whose it is, not that it is no data directory.
    func checkUser() throws {
        var st = stat()
        let me = geteuid()
        guard stat(self.path, &st) == 0 else {
            guard errno == EACCES else { return }  // not there yet: `init` makes it, the others say so
            // A folder on the way that this user cannot enter: whose is it?
            var up = (self.path as NSString).deletingLastPathComponent
            while !up.isEmpty && up != "/" && !(stat(up, &st) == 0 && access(up, X_OK) != 0) { up = (up as NSString).deletingLastPathComponent }
            let owner = Self.userName(st.st_uid)
            throw RelayError.noPermission("\(self.path): permission denied for this user (\(Self.userName(me))): \(up) belongs to \(owner); run the command as \(owner) (`sudo -u \(owner) relay ...`)")
        }
        guard st.st_uid != me else { return }
        let owner = Self.userName(st.st_uid)
        if me == 0 {
            throw RelayError.noPermission("\(self.path) belongs to the user \(owner), and root would leave files there that \(owner)'s relay cannot read: run the command as \(owner) (`sudo -u \(owner) relay ...`); nothing was changed")
        }
        if access(self.path, R_OK | X_OK) != 0 {
            throw RelayError.noPermission("\(self.path) belongs to the user \(owner) and this user (\(Self.userName(me))) cannot read it: run the command as \(owner) (`sudo -u \(owner) relay ...`)")
        }
    }

    /// A user's name, or `uid N` when it has none.
    static func userName(_ uid: uid_t) -> String {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4_096)
        guard getpwuid_r(uid, &pw, &buffer, buffer.count, &result) == 0, result != nil, let name = pw.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    func requireInitialised() throws {
        guard FileManager.default.fileExists(atPath: self.identityFile) else {
            throw RelayError.noInput("\(self.path) is not a relay data directory (no identity.json): run `relay init --data-dir \(self.path)` first")
        }
    }

    func identityFileContents() throws -> IdentityFile {
        try self.requireInitialised()
        guard let data = FileManager.default.contents(atPath: self.identityFile) else {
            throw RelayError.config("\(self.identityFile) is unreadable or damaged: restore it from a backup, or run `relay init` in a new directory")
        }
        let f: IdentityFile
        do { f = try JSONDecoder().decode(IdentityFile.self, from: data) } catch {
            throw RelayError.config("\(self.identityFile) is unreadable or damaged (\(Self.jsonProblem(error))): restore it from a backup, or run `relay init` in a new directory")
        }
        if let c = f.check, c.lowercased() != f.expectedCheck {
            throw RelayError.config("\(self.identityFile) fails its checksum (a damaged or edited key digit): restore it from a backup; this relay would otherwise be another node")
        }
        return f
    }

    func identity() throws -> (NodeIdentity, String?) {
        let f = try self.identityFileContents()
        guard let s = [UInt8](hex: f.signingSeed), let a = [UInt8](hex: f.agreementSeed) else {
            throw RelayError.config("\(self.identityFile) is unreadable or damaged (a seed is not hex): restore it from a backup, or run `relay init` in a new directory")
        }
        do { return (try NodeIdentity(signingSeed: s, agreementSeed: a), f.name) } catch {
            throw RelayError.config("\(self.identityFile) is unreadable or damaged (\(error)): restore it from a backup, or run `relay init` in a new directory")
        }
    }

    func networkFileContents() throws -> NetworkFile {
        guard let data = FileManager.default.contents(atPath: self.networkFile) else {
            throw RelayError.config("\(self.networkFile) is missing or damaged: join the federation again with `relay init --join CODE` in a new directory")
        }
        let f: NetworkFile
        do { f = try JSONDecoder().decode(NetworkFile.self, from: data) } catch {
            throw RelayError.config("\(self.networkFile) is missing or damaged (\(Self.jsonProblem(error))): join the federation again with `relay init --join CODE` in a new directory")
        }
        if let c = f.check, c.lowercased() != f.expectedCheck {
            throw RelayError.config("\(self.networkFile) fails its checksum (a damaged or edited digit): restore it from a backup, or ask a member for `relay invite` and copy the key again")
        }
        return f
    }

    func network() throws -> (NetworkKey, Bool) {
        let f = try self.networkFileContents()
        guard let k = [UInt8](hex: f.key) else {
            throw RelayError.config("\(self.networkFile) is missing or damaged (the key is not hex): join the federation again with `relay init --join CODE` in a new directory")
        }
        do { return (try NetworkKey(bytes: k), f.open) } catch {
            throw RelayError.config("\(self.networkFile) is missing or damaged (\(error)): join the federation again with `relay init --join CODE` in a new directory")
        }
    }

    /// Adds the checksum to identity.json and network.json written before there was one (they were read and
    /// found well-formed). Returns the files it changed.
    func addMissingChecks() throws -> [String] {
        var changed: [String] = []
        var idf = try self.identityFileContents()
        if idf.check == nil {
            idf.check = idf.expectedCheck
            try Self.writeJSON(idf, to: self.identityFile)
            changed.append(self.identityFile)
        }
        var nf = try self.networkFileContents()
        if nf.check == nil {
            nf.check = nf.expectedCheck
            try Self.writeJSON(nf, to: self.networkFile)
            changed.append(self.networkFile)
        }
        return changed
    }

    /// Writes a JSON file durably (temporary file, fsync, rename), readable by the owner only.
    static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try CounterFloor.writeDurably(Array(try enc.encode(value)), to: path, mode: 0o600) } catch let e as StoreError {
            throw RelayError.cannotCreate("cannot write \(path): \(e.description)")
        }
    }

    /// The counter floor of this relay's identity.
    func counterFloor() throws -> CounterFloor {
        let (id, _) = try self.identity()
        return CounterFloor(path: self.floorFile, node: id.nodeID.description)
    }

    func store(readOnly: Bool = false) throws -> Store {
        try self.requireInitialised()
        var c = Store.Configuration()
        c.readOnly = readOnly
        if !readOnly { c.floor = try self.counterFloor() }
        let conf = self.config()
        if let q = conf.quota { c.quotaBytes = q }
        if let i = conf.inbox { c.inboxBytes = i }
        return try Store(path: self.database, configuration: c, logger: quietLogger())
    }

    /// The store for a command that only reads (`status`, `inbox`, `outbox`, `queue`): opened as usual, and on a
    /// full disk or a read-only one (opening for writing writes the schema version; an SD card with errors is
    /// remounted read-only) read-only, so the operator still sees what is there.
    func storeForReading() throws -> Store {
        do { return try self.store() } catch let e as StoreError {
            switch e {
            case .diskFull, .readOnly: return try self.store(readOnly: true)
            default: throw e
            }
        }
    }

    /// What JSONDecoder found wrong, in one short phrase (its descriptions run over several lines).
    static func jsonProblem(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let k, _)?: return "no \(k.stringValue)"
        case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?:
            return "\(c.codingPath.map(\.stringValue).joined(separator: ".")) is not what it should be"
        case .dataCorrupted?: return "not valid JSON"
        default: return "\(error)"
        }
    }

    /// `key = value` lines of relay.conf; `#` starts a comment.
    struct Config {
        var links: [String] = []
        var callsign: String?
        var groups: [String] = []
        var quota: Int?
        /// Bytes of message content the inbox keeps (`inbox-mb`).
        var inbox: Int?
        var dutyCycle: Double?
        /// `network`: any node holding the network key; `peers`: only nodes on the trust list (`relay peers add`).
        var trustPeersOnly = false
        var logLevel: String?
        /// Start even when a link's device or TNC is not there yet, and keep retrying (`--wait-for-links`).
        var waitForLinks = false
        /// This station is not an amateur station (`--i-know-this-is-not-amateur`): KISS without a callsign, or a
        /// callsign on a sealed federation, are allowed.
        var notAmateur = false
        var rnodeFrequency: UInt32?
        var rnodeBandwidth: UInt32?
        var rnodeSpreadingFactor: UInt8?
        var rnodeCodingRate: UInt8?
        var rnodeTxPower: UInt8?
        /// Lines that cannot be used, each naming the file and line: `relay run` refuses to start (exit 78) naming
        /// the first; a reload keeps the old settings.
        var problems: [String] = []
        /// Where each setting was given ("FILE line N"), for errors found later that are still relay.conf's.
        var origin: [String: String] = [:]
        /// Where each of `links` was given.
        var linkOrigins: [String] = []
    }

    /// Every key relay.conf knows (an unknown key is an error, with the nearest of these as a suggestion).
    static let configKeys = ["link", "callsign", "group", "quota-mb", "inbox-mb", "duty-cycle", "trust", "log-level", "wait-for-links",
                             "not-amateur", "rnode-frequency", "rnode-bandwidth", "rnode-spreading-factor",
                             "rnode-coding-rate", "rnode-tx-power"]
    /// Keys that may be given more than once (each line adds one).
    static let repeatableKeys: Set<String> = ["link", "group"]
    /// Whether two links would open the same thing: the same port (serial, KISS, RNode, Meshtastic on USB: by its
    /// path with links resolved, so `/dev/serial/by-id/...` and `/dev/ttyUSB0` are one port), or the same address.
    /// A relay runs one link per name (a second would crash it) and one link per port (a second would find the
    /// port held by the relay itself).
    static func sameTarget(_ a: LinkSpec, _ b: LinkSpec) -> Bool {
        func port(_ s: LinkSpec) -> String? {
            switch s {
            case .serial(let p, _), .kiss(let p, _), .rnode(let p), .meshtastic(let p, _): return (p as NSString).resolvingSymlinksInPath
            default: return nil
            }
        }
        if let pa = port(a), let pb = port(b) { return pa == pb }
        return a.description == b.description
    }

    /// The bandwidths LoRa radios take, in Hz.
    static let loraBandwidths: [UInt32] = [7_800, 10_400, 15_600, 20_800, 31_250, 41_700, 62_500, 125_000, 250_000, 500_000,
                                           203_125, 406_250, 812_500, 1_625_000]
    /// The largest queue relay.conf accepts: 1 TB.
    static let maxQuotaMB = 1_048_576

    func config() -> Config {
        var c = Config()
        // Errors name the file to edit: /etc/courier/relay.conf when the data directory's relay.conf links there.
        let file = (self.configFile as NSString).resolvingSymlinksInPath
        guard let text = try? String(contentsOfFile: self.configFile, encoding: .utf8) else {
            if FileManager.default.fileExists(atPath: self.configFile) {
                c.problems.append("\(file) cannot be read (permissions, or not UTF-8 text): fix it or move it away")
            }
            return c
        }
        var linkSpecs: [LinkSpec] = []  // c.links, parsed
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let at = "\(file) line \(n + 1)"
            guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                c.problems.append("\(at): expected `key = value`, found '\(line.trimmingCharacters(in: .whitespaces))'")
                continue
            }
            let (k, v) = (kv[0], kv[1])
            func bad(_ why: String) { c.problems.append("\(at): \(k) = \(v): \(why)") }
            guard DataDir.configKeys.contains(k) else {
                let hint = DataDir.nearestKey(k).map { "did you mean \($0)?" } ?? "the keys are \(DataDir.configKeys.joined(separator: ", "))"
                c.problems.append("\(at): unknown setting '\(k)': \(hint) (see README, configuration reference)")
                continue
            }
            if !DataDir.repeatableKeys.contains(k), let first = c.origin[k] {
                c.problems.append("\(at): \(k) is given twice (first at \(first.replacingOccurrences(of: file + " ", with: ""))): keep one")
                continue
            }
            c.origin[k] = at
            /// A whole number in `range`; anything else (not a number, out of range, too large to hold) is refused.
            func whole(_ range: ClosedRange<Int>, _ what: String) -> Int? {
                guard let x = Int(v), range.contains(x) else {
                    bad("use \(what)")
                    return nil
                }
                return x
            }
            switch k {
            case "link":
                do throws(LinkError) {
                    let spec = try LinkConfig(v).spec
                    if let i = linkSpecs.firstIndex(where: { DataDir.sameTarget($0, spec) }) {
                        let first = c.linkOrigins[i].replacingOccurrences(of: file + " ", with: "")
                        let earlier = linkSpecs[i]
                        c.problems.append(earlier.description == spec.description
                            ? "\(at): link = \(v) is given twice (first at \(first)): keep one"
                            : "\(at): link = \(v) opens the same port as \(first) (\(earlier)): a port carries one link; keep one")
                        continue
                    }
                    c.links.append(v)
                    c.linkOrigins.append(at)
                    linkSpecs.append(spec)
                } catch { bad("\(error.description)") }
            case "callsign":
                guard AX25.Station(v) != nil else {
                    bad("not a callsign: use CALL or CALL-SSID (SSID 0-15), e.g. N0CALL-1")
                    continue
                }
                c.callsign = v
            case "group": c.groups.append(v)
            case "quota-mb":
                c.quota = whole(1...DataDir.maxQuotaMB, "a whole number of MB from 1 to \(DataDir.maxQuotaMB) (default 64)").map { $0 * 1_048_576 }
            case "inbox-mb":
                c.inbox = whole(1...DataDir.maxQuotaMB, "a whole number of MB from 1 to \(DataDir.maxQuotaMB) (default 64)").map { $0 * 1_048_576 }
            case "duty-cycle":
                // `10`, `10%` and `10 %` alike.
                let number = v.hasSuffix("%") ? String(v.dropLast()).trimmingCharacters(in: .whitespaces) : v
                guard let x = Double(number), x.isFinite, x > 0, x <= 100 else {
                    bad("use a percentage above 0 and at most 100 (EU868: 1 or 10); leave it out for no limit")
                    continue
                }
                c.dutyCycle = x / 100
            case "trust":
                guard v == "peers" || v == "network" else {
                    bad("use `network` (any federation member) or `peers` (the trust list)")
                    continue
                }
                c.trustPeersOnly = v == "peers"
            case "log-level":
                guard Logger.Level(rawValue: v) != nil else {
                    bad("use debug, info, notice or warning")
                    continue
                }
                c.logLevel = v
            case "wait-for-links", "not-amateur":
                guard v == "yes" || v == "no" else {
                    bad("use `yes` or `no`")
                    continue
                }
                if k == "wait-for-links" { c.waitForLinks = v == "yes" } else { c.notAmateur = v == "yes" }
            case "rnode-frequency":
                guard let x = UInt32(v), (137_000_000...1_020_000_000).contains(x) || (2_400_000_000...2_500_000_000).contains(x) else {
                    bad("use a frequency in Hz that RNode radios tune (137-1020 MHz, 2.4-2.5 GHz), e.g. 869525000")
                    continue
                }
                c.rnodeFrequency = x
            case "rnode-bandwidth":
                guard let x = UInt32(v), DataDir.loraBandwidths.contains(x) else {
                    bad("use a LoRa bandwidth in Hz: \(DataDir.loraBandwidths.prefix(10).map(String.init).joined(separator: ", "))")
                    continue
                }
                c.rnodeBandwidth = x
            case "rnode-spreading-factor": c.rnodeSpreadingFactor = whole(5...12, "a spreading factor from 5 to 12").map(UInt8.init)
            case "rnode-coding-rate": c.rnodeCodingRate = whole(5...8, "a coding rate from 5 to 8 (4/5 to 4/8)").map(UInt8.init)
            case "rnode-tx-power": c.rnodeTxPower = whole(0...22, "a power from 0 to 22 dBm (check your band's legal limit)").map(UInt8.init)
            default: break
            }
        }
        return c
    }

    /// The known key nearest to a mistyped one (`duty_cycle`, `dutycycle`, `Duty-Cycle` → `duty-cycle`), if near enough.
    static func nearestKey(_ key: String) -> String? {
        let k = key.lowercased().replacingOccurrences(of: "_", with: "-")
        let scored = self.configKeys.map { ($0, editDistance(k, $0)) }.min { $0.1 < $1.1 }
        guard let (best, d) = scored, d <= max(2, best.count / 4) else { return nil }
        return best
    }

    /// Levenshtein distance between two strings (by character).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    /// The engine's configuration: identity, network, groups and trust (the trust list read from `store`).
    func nodeConfig(store: Store) throws -> NodeConfig {
        let (id, name) = try self.identity()
        let (key, open) = try self.network()
        var c = NodeConfig(identity: id, networkKey: key, name: name)
        c.keyRotation = try self.keyRotation()
        c.openMode = open
        let conf = self.config()
        c.groups = Set(conf.groups.map(GroupID.init(name:)))
        c.trust = try self.trustPolicy(conf, store: store)
        return c
    }

    /// The trust policy relay.conf asks for, with the trust list from the database.
    func trustPolicy(_ conf: Config, store: Store) throws -> TrustPolicy {
        guard conf.trustPeersOnly else { return .open }
        let (id, _) = try self.identity()
        return .members([id.publicKeys] + (try store.peers()).filter(\.trusted).map(\.keys))
    }
}

extension DataDir {
    /// Takes the data directory for this process alone (`relay run`, each of `relay demo`'s relays): an exclusive
    /// flock on relay.lock, which then holds this pid. Held until the process exits (the descriptor is never
    /// closed); `relay send`, `inbox`, `queue` and `status` do not take it and work beside a running relay.
    /// Returns `.unrecorded` when the lock is held but the disk was too full (or mounted read-only) to write the pid
    /// in it (`recordLock` later; `relay status` finds the pid in /proc/locks meanwhile), and `.notTaken` when the
    /// disk is mounted read-only and relay.lock was never made (a relay that never ran): taken once it can write.
    @discardableResult
    func lockForRun(statusFile: String) throws -> RunLock {
        try self.requireInitialised()
        var fd = open(self.lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        var readOnly = false
        if fd < 0 && errno == EROFS {
            // A card the kernel remounted read-only: the lock (flock) is taken on a descriptor opened for reading.
            fd = open(self.lockFile, O_RDONLY | O_CLOEXEC)
            if fd < 0 && errno == ENOENT { return .notTaken }
            readOnly = true
        }
        guard fd >= 0 else {
            let e = errno
            if e == ENOSPC {
                throw RelayError.cannotCreate("cannot create \(self.lockFile): the disk is full (\(Disk.freeSpace(self.path))): free some space; nothing queued was changed")
            }
            throw RelayError.cannotCreate("cannot create \(self.lockFile): \(String(cString: strerror(e))); check the permissions of \(self.path)")
        }
        switch ExclusiveLock.acquire(fd) {
        case .acquired:
            if readOnly { return .unrecorded }
            // The pid, then where the status file is (`relay status` finds it there, wherever the service put it).
            let pid = Array("\(getpid())\nstatus \(statusFile)\n".utf8)
            guard ftruncate(fd, 0) == 0, pwrite(fd, pid, pid.count, 0) == pid.count else {
                let e = errno
                // A full disk: the lock (flock) holds all the same; the relay waits for space and writes it then.
                if e == ENOSPC || e == EROFS { return .unrecorded }
                close(fd)
                throw RelayError.cannotCreate("cannot write \(self.lockFile): \(String(cString: strerror(e)))")
            }
        case .held(let holder):
            // /proc/locks names the holder; the pid it wrote in the file is the fallback.
            let written = (try? String(contentsOfFile: self.lockFile, encoding: .utf8))?.split(separator: "\n").first
                .flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
            close(fd)
            if let pid = holder ?? written {
                throw RelayError.tempFail("\(self.path) is in use by another relay (pid \(pid)): stop it first (kill \(pid)), or give another --data-dir")
            }
            throw RelayError.tempFail("\(self.path) is in use by another relay: stop it first, or give another --data-dir")
        case .failed(let why):
            close(fd)
            throw RelayError.cannotCreate("cannot lock \(self.lockFile): \(why)")
        }
        return .recorded
    }

    /// What `lockForRun` could do.
    enum RunLock {
        /// Held, with the pid and status file written in relay.lock.
        case recorded
        /// Held; the pid could not be written (a full or read-only disk): `recordLock` once it can.
        case unrecorded
        /// Not held: relay.lock does not exist and the disk is read-only (`lockForRun` once it can write).
        case notTaken
    }

    /// What a relay holding this data directory without a status file yet waits for, when it waits: "the disk to be
    /// writable" (mounted read-only) or "space on the disk"; nil when neither (it is only starting).
    func startWait() -> String? {
        Disk.readOnly(self.path) != nil ? "the disk to be writable" : StoreError.noRoomLeft(beside: self.database) ? "space on the disk" : nil
    }

    /// Writes the pid and the status file's path in relay.lock, which this process holds (`lockForRun` could not, on
    /// a full disk). Through a second descriptor: the lock belongs to the first.
    func recordLock(statusFile: String) throws {
        // relay.lock: its descriptor (taken for reading on a read-only disk) holds the lock; this one only writes.
        let fd = open(self.lockFile, O_WRONLY | O_CLOEXEC)
        let pid = Array("\(getpid())\nstatus \(statusFile)\n".utf8)
        defer { if fd >= 0 { close(fd) } }
        guard fd >= 0, ftruncate(fd, 0) == 0, pwrite(fd, pid, pid.count, 0) == pid.count else {
            throw RelayError.cannotCreate("cannot write \(self.lockFile): \(String(cString: strerror(errno)))")
        }
    }

    /// What is wrong with `name` as a node's name (`relay init --name`, `relay peers add --name`), after "--name ",
    /// or nil when it is fine: the wire carries at most 32 bytes of UTF-8 (SPEC 5.6, 6.8: a longer name would
    /// reach others cut), and a name is one line of `relay status`, `relay peers` and the log (no control characters,
    /// no line breaks). Any script is fine: Arabic, Sorani, Amharic names take 2-3 bytes a letter.
    static func nameProblem(_ name: String) -> String? {
        let shown = Terminal.safe(name.count > 40 ? String(name.prefix(37)) + "..." : name)
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            return "is empty: give a name others will recognise (e.g. \"Sargalu clinic\"), or leave --name out"
        }
        if let c = name.unicodeScalars.first(where: Terminal.isControl) {
            let code = String(c.value, radix: 16, uppercase: true)
            let what = [0x0A, 0x0D, 0x2028, 0x2029].contains(c.value) ? "a line break" : c == "\t" ? "a tab" : "a control character"
            return "'\(shown)' contains \(what) (U+\(String(repeating: "0", count: max(0, 4 - code.count)) + code)): a name is one line of printable text; give it without"
        }
        let bytes = name.utf8.count
        if bytes > IdentityContent.maxName {
            return "'\(shown)' is \(bytes) bytes; a node's name is at most \(IdentityContent.maxName) bytes of UTF-8 (32 Latin letters, about 16 Arabic or 10 Amharic ones), the most the wire carries: give a shorter one"
        }
        return nil
    }

    /// A new relay's identity, network key, commented relay.conf and database (`relay init`, `relay demo`).
    @discardableResult
    func create(name: String?, key: NetworkKey, open: Bool, configExtra: String = "") throws -> NodeIdentity {
        do {
            try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw RelayError.cannotCreate("cannot create \(self.path): \(error.localizedDescription)") }
        let id = NodeIdentity()
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var idf = DataDir.IdentityFile(name: name, signingSeed: id.signingSeed.hex, agreementSeed: id.agreementSeed.hex)
        idf.check = idf.expectedCheck
        var nf = DataDir.NetworkFile(key: key.bytes.hex, open: open)
        nf.check = nf.expectedCheck
        guard FileManager.default.createFile(atPath: self.identityFile, contents: try enc.encode(idf), attributes: [.posixPermissions: 0o600]),
              FileManager.default.createFile(atPath: self.networkFile, contents: try enc.encode(nf), attributes: [.posixPermissions: 0o600])
        else {
            if StoreError.noRoomLeft(beside: self.identityFile) {
                throw RelayError.cannotCreate("cannot write in \(self.path): the disk is full (\(Disk.freeSpace(self.path))): free some space and run it again; nothing was made")
            }
            throw RelayError.cannotCreate("cannot write in \(self.path): check permissions and free space")
        }
        let conf = """
            # Courier relay configuration. `relay run` reads it; options on its command line come first.
            # Links (one per line), each one of:
            #   link = serial:/dev/ttyUSB0:9600       framed serial: cables, EByte E22/E32, SiK, HC-12
            #   link = kiss:/dev/ttyACM0:57600        a KISS TNC (Mobilinkd, NinoTNC) or Direwolf's pty
            #   link = kiss-tcp:127.0.0.1:8001        Direwolf's KISS TCP port
            #   link = rnode:/dev/ttyACM0             an RNode LoRa modem
            #   link = meshtastic:/dev/ttyUSB0        a Meshtastic device on USB, as it is (firmware-notes/meshtastic.md)
            #   link = meshtastic-tcp:192.168.1.50    a Meshtastic device or meshtasticd over TCP (port 4403)
            #   link = tcp:relay.example:4040         another relay over IP
            #   link = tcp-listen:0.0.0.0:4040        accept relays over IP
            # Add ,mtu=N to a link to change its packet size (see firmware-notes/).
            # Amateur bands: your callsign, sent in every KISS frame (required there, with a federation made by
            # `relay init --open`). Without one, `relay run` refuses KISS links unless not-amateur = yes.
            # callsign = N0CALL-1
            # A KISS modem outside the amateur bands (e.g. an ISM-band LoRa KISS TNC): KISS without a callsign.
            # not-amateur = no
            # Start even when a link's device or TNC is not there yet, and retry it (1 s doubling to 60 s);
            # without it a missing port stops `relay run` at start (exit 69). A service sets it.
            # wait-for-links = no
            # Groups whose messages this relay delivers to its inbox (one per line).
            # group = water-committee
            # Queue size in MB before the lowest-priority, oldest bundles are evicted.
            # quota-mb = 64
            # Inbox size in MB (message text, outside the quota). When full, the oldest read messages make room;
            # with none read, new messages are refused and their origin is told (nothing unread is dropped).
            # inbox-mb = 64
            # Radio duty-cycle limit in percent (EU868: 1 or 10). None on cables and TCP.
            # duty-cycle = 10
            # Whose bundles to accept: network (any node holding the federation key) or peers (only nodes on the
            # trust list: `relay peers add`).
            # trust = network
            # RNode radio (every station on a channel must match; see firmware-notes/rnode.md). Defaults:
            # rnode-frequency = 869525000
            # rnode-bandwidth = 125000
            # rnode-spreading-factor = 9
            # rnode-coding-rate = 5
            # rnode-tx-power = 14
            # Log level: debug, info, notice, warning.
            # log-level = info
            # `kill -HUP` on a running relay applies group, trust, duty-cycle, quota-mb, inbox-mb; links need a restart.

            """
        // A relay.conf already there is kept: the Debian package links /var/lib/courier/relay.conf to its conffile
        // /etc/courier/relay.conf before `relay init` runs.
        var st = stat()
        if lstat(self.configFile, &st) != 0 {
            do { try (conf + configExtra).write(toFile: self.configFile, atomically: true, encoding: .utf8) } catch {
                throw RelayError.cannotCreate("cannot write \(self.configFile): \(error.localizedDescription)")
            }
        }
        // relay.lock made now (empty until a relay runs): a card remounted read-only before the first `relay run`
        // still has a file to hold the data directory with (`lockForRun`).
        let fd = Glibc.open(self.lockFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RelayError.cannotCreate("cannot create \(self.lockFile): \(String(cString: strerror(errno)))") }
        close(fd)
        _ = try self.store()
        return id
    }
}

/// 8 hex digits: the CRC-32C of `text` (the checksum of identity.json and network.json).
func checkDigits(_ text: String) -> String { String(format: "%08x", CRC32C.checksum(Array(text.utf8))) }

func quietLogger() -> Logger {
    var l = Logger(label: "courier.store")
    l.logLevel = .warning
    return l
}

/// Identity codes (SPEC 19.2) as operators meet them: errors that say what to do.
extension IdentityCode {
    static func make(_ keys: NodePublicKeys) -> String { self.encode(keys) }

    static func parse(_ code: String) throws -> NodePublicKeys {
        do {
            return try self.decode(code)
        } catch {
            switch error {
            case .prefix:
                throw RelayError.usage("'\(code.prefix(24))' is not an identity code (they start with \(self.prefix)): ask the other operator for the code `relay peers` prints")
            case .character(let c): throw RelayError.usage("identity code has an invalid character '\(c)': check for typos")
            case .invalidKey:
                throw RelayError.usage("identity code holds a key that is not valid: copy it again from `relay peers` on the other relay")
            case .length, .check, .unsupportedFlags:
                throw RelayError.usage("identity code does not check out (a typo, or cut short?): copy it again in full")
            }
        }
    }

    /// The full node id in groups of four hex digits, to compare by voice.
    static func fingerprint(_ id: NodeID) -> String {
        let h = Array(id.description)
        return stride(from: 0, to: h.count, by: 4).map { String(h[$0..<min($0 + 4, h.count)]) }.joined(separator: " ")
    }
}

/// Join codes (SPEC 19.1) as operators meet them.
extension JoinCode {
    static func make(key: NetworkKey, open: Bool) -> String { self.encode(networkKey: key, open: open) }

    static func parse(_ code: String) throws -> (NetworkKey, Bool) {
        do {
            return try self.decode(code)
        } catch {
            switch error {
            case .prefix: throw RelayError.usage("'\(code)' is not a join code (they start with \(self.prefix)); ask the inviting relay for `relay invite`")
            case .character(let c): throw RelayError.usage("join code has an invalid character '\(c)': check for typos")
            case .length: throw RelayError.usage("join code has the wrong length: copy it again in full")
            case .check, .invalidKey: throw RelayError.usage("join code does not check out (a typo?): copy it again")
            case .unsupportedFlags(let f):
                throw RelayError.usage("join code asks for a feature this relay does not know (flags \(String(format: "%02x", f))): update Courier, then join")
            }
        }
    }
}
