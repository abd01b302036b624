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
    static func io(_ m: String) -> RelayError { RelayError(message: m, code: 74) }
    static func config(_ m: String) -> RelayError { RelayError(message: m, code: 78) }
}

/// Runs a command body, turning every failure into one line on stderr and its exit code.
func guarded(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as RelayError {
        FileHandle.standardError.write(Data("relay: \(e.message)\n".utf8))
        throw ExitCodeError(code: e.code)
    } catch let e as StoreError {
        FileHandle.standardError.write(Data("relay: \(e.description)\n".utf8))
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

/// The relay's data directory: identity, network key, configuration, database, status.
struct DataDir {
    let path: String
    var identityFile: String { self.path + "/identity.json" }
    var networkFile: String { self.path + "/network.json" }
    var configFile: String { self.path + "/relay.conf" }
    var database: String { self.path + "/courier.db" }
    var statusFile: String { self.path + "/status.json" }

    struct IdentityFile: Codable {
        var name: String?
        var signingSeed: String
        var agreementSeed: String
    }

    struct NetworkFile: Codable {
        var key: String
        var open: Bool
    }

    static func resolve(_ option: String?) throws -> DataDir {
        guard let p = option ?? ProcessInfo.processInfo.environment["RELAY_DATA_DIR"], !p.isEmpty else {
            throw RelayError.usage("no data directory: give --data-dir DIR or set RELAY_DATA_DIR")
        }
        return DataDir(path: (p as NSString).standardizingPath)
    }

    func requireInitialised() throws {
        guard FileManager.default.fileExists(atPath: self.identityFile) else {
            throw RelayError.noInput("\(self.path) is not a relay data directory (no identity.json): run `relay init --data-dir \(self.path)` first")
        }
    }

    func identity() throws -> (NodeIdentity, String?) {
        try self.requireInitialised()
        guard let data = FileManager.default.contents(atPath: self.identityFile),
              let f = try? JSONDecoder().decode(IdentityFile.self, from: data),
              let s = [UInt8](hex: f.signingSeed), let a = [UInt8](hex: f.agreementSeed),
              let id = try? NodeIdentity(signingSeed: s, agreementSeed: a)
        else { throw RelayError.config("\(self.identityFile) is unreadable or damaged: restore it from a backup, or run `relay init` in a new directory") }
        return (id, f.name)
    }

    func network() throws -> (NetworkKey, Bool) {
        guard let data = FileManager.default.contents(atPath: self.networkFile),
              let f = try? JSONDecoder().decode(NetworkFile.self, from: data),
              let k = [UInt8](hex: f.key), let key = try? NetworkKey(bytes: k)
        else { throw RelayError.config("\(self.networkFile) is missing or damaged: join the federation again with `relay init --join CODE` in a new directory") }
        return (key, f.open)
    }

    func store(readOnly: Bool = false) throws -> Store {
        try self.requireInitialised()
        var c = Store.Configuration()
        c.readOnly = readOnly
        if let q = self.config().quota { c.quotaBytes = q }
        return try Store(path: self.database, configuration: c, logger: quietLogger())
    }

    /// `key = value` lines of relay.conf; `#` starts a comment.
    struct Config {
        var links: [String] = []
        var callsign: String?
        var groups: [String] = []
        var quota: Int?
        var dutyCycle: Double?
        /// `network`: any node holding the network key; `peers`: only nodes on the trust list (`relay peers add`).
        var trustPeersOnly = false
        var logLevel: String?
        /// Lines that mean nothing (a typo): reported by `relay run` and on reload.
        var unknown: [String] = []
    }

    func config() -> Config {
        var c = Config()
        guard let text = try? String(contentsOfFile: self.configFile, encoding: .utf8) else { return c }
        for raw in text.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[1].isEmpty else { continue }
            switch kv[0] {
            case "link": c.links.append(kv[1])
            case "callsign": c.callsign = kv[1]
            case "group": c.groups.append(kv[1])
            case "quota-mb": c.quota = Int(kv[1]).map { $0 * 1_048_576 }
            case "duty-cycle": c.dutyCycle = Double(kv[1]).map { $0 / 100 }
            case "trust": c.trustPeersOnly = kv[1] == "peers"
            case "log-level": c.logLevel = kv[1]
            default: c.unknown.append(kv[0])
            }
        }
        return c
    }

    func nodeConfig() throws -> NodeConfig {
        let (id, name) = try self.identity()
        let (key, open) = try self.network()
        var c = NodeConfig(identity: id, networkKey: key, name: name)
        c.openMode = open
        let conf = self.config()
        c.groups = Set(conf.groups.map(GroupID.init(name:)))
        c.trust = try self.trustPolicy(conf, store: self.store())
        return c
    }

    /// The trust policy relay.conf asks for, with the trust list from the database.
    func trustPolicy(_ conf: Config, store: Store) throws -> TrustPolicy {
        guard conf.trustPeersOnly else { return .open }
        let (id, _) = try self.identity()
        return .members([id.publicKeys] + (try store.peers()).filter(\.trusted).map(\.keys))
    }
}

func quietLogger() -> Logger {
    var l = Logger(label: "courier.store")
    l.logLevel = .warning
    return l
}

/// Lower-case RFC 4648 base32 without padding, with a CRC-32C appended: typed or read out by people.
enum Base32Code {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func encode(_ payload: [UInt8]) -> String {
        var bytes = payload
        let crc = CRC32C.checksum(bytes)
        bytes += [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
        var out: [UInt8] = []
        var acc = 0
        var bits = 0
        for b in bytes {
            acc = (acc << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(self.alphabet[(acc >> bits) & 31])
            }
        }
        if bits > 0 { out.append(self.alphabet[(acc << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The payload, or nil when the text is not base32 of the expected length or its check fails.
    enum Failure: Error { case character(Character), length, check }
    static func decode(_ text: String, payloadLength: Int) throws(Failure) -> [UInt8] {
        var bytes: [UInt8] = []
        var acc = 0
        var bits = 0
        for c in text.utf8 {
            guard let v = self.alphabet.firstIndex(of: c) else { throw .character(Character(UnicodeScalar(c))) }
            acc = (acc << 5 | v) & 0xFFFF
            bits += 5
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8((acc >> bits) & 0xFF))
            }
        }
        guard bytes.count == payloadLength + 4 else { throw .length }
        // The unused low bits of the last character are zero in a code this program wrote.
        guard acc & ((1 << bits) - 1) == 0 else { throw .check }
        let crc = CRC32C.checksum(bytes[0..<payloadLength])
        guard bytes[payloadLength...].elementsEqual([UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]) else {
            throw .check
        }
        return Array(bytes[0..<payloadLength])
    }
}

/// Identity codes: `courier-id1-` and base32 of the signing and agreement public keys and a CRC-32C. Another
/// relay puts this node on its trust list with it (`relay peers add CODE`).
enum IdentityCode {
    static let prefix = "courier-id1-"
    static func make(_ keys: NodePublicKeys) -> String { self.prefix + Base32Code.encode(keys.signing + keys.agreement) }

    static func parse(_ code: String) throws -> NodePublicKeys {
        let text = code.lowercased().replacingOccurrences(of: " ", with: "")
        guard text.hasPrefix(self.prefix) else {
            throw RelayError.usage("'\(code.prefix(24))' is not an identity code (they start with \(self.prefix)): ask the other operator for the code `relay peers` prints")
        }
        do {
            let b = try Base32Code.decode(String(text.dropFirst(self.prefix.count)), payloadLength: 64)
            return try NodePublicKeys(signing: Array(b[0..<32]), agreement: Array(b[32..<64]))
        } catch Base32Code.Failure.character(let c) {
            throw RelayError.usage("identity code has an invalid character '\(c)': check for typos")
        } catch is Base32Code.Failure {
            throw RelayError.usage("identity code does not check out (a typo, or cut short?): copy it again in full")
        } catch {
            throw RelayError.usage("identity code holds a key that is not valid: copy it again from `relay peers` on the other relay")
        }
    }

    /// The full node id in groups of four hex digits, to compare by voice.
    static func fingerprint(_ id: NodeID) -> String {
        let h = Array(id.description)
        return stride(from: 0, to: h.count, by: 4).map { String(h[$0..<min($0 + 4, h.count)]) }.joined(separator: " ")
    }
}

/// Join codes: `courier1-` and base32 of a flags byte (bit 0: open mode), the 32-byte network key and a CRC-32C.
enum JoinCode {
    static func make(key: NetworkKey, open: Bool) -> String {
        "courier1-" + Base32Code.encode([open ? 1 : 0] + key.bytes)
    }

    static func parse(_ code: String) throws -> (NetworkKey, Bool) {
        let text = code.lowercased().replacingOccurrences(of: " ", with: "")
        guard text.hasPrefix("courier1-") else {
            throw RelayError.usage("'\(code)' is not a join code (they start with courier1-); ask the inviting relay for `relay invite`")
        }
        let bytes: [UInt8]
        do { bytes = try Base32Code.decode(String(text.dropFirst(9)), payloadLength: 33) } catch {
            switch error {
            case .character(let c): throw RelayError.usage("join code has an invalid character '\(c)': check for typos")
            case .length: throw RelayError.usage("join code has the wrong length: copy it again in full")
            case .check: throw RelayError.usage("join code does not check out (a typo?): copy it again")
            }
        }
        return (try NetworkKey(bytes: Array(bytes[1..<33])), bytes[0] & 1 == 1)
    }
}
