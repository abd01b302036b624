import CourierStore
import CourierWire
import Foundation

/// One change-feed event as `relay queue tail` prints it.
enum TailFormat {
    nonisolated(unsafe) static let iso = ISO8601DateFormatter()

    static func line(_ e: StoreEvent) -> String {
        let t = self.iso.string(from: Date(timeIntervalSince1970: Double(e.at)))
        let peer = e.neighbour.map { $0 == "import" ? "from a file" : "peer \($0)" } ?? ""
        return [String(e.seq).leftPadded(6), t, e.type.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0), e.bundle ?? "-",
                e.kind ?? "", peer, e.detail ?? ""].filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// How the inbox shows a receipt or a failure notice.
enum ReceiptText {
    /// Who a receipt in this relay's inbox says has which of its bundles: a signed receipt (SPEC 6.8) speaks for its
    /// origin; one this relay made for itself holds the receipt parts (6.16) it checked, each for its holder.
    static func confirmations(_ m: InboxMessage, me: ShortID) -> [(id: BundleID, by: ShortID)] {
        if m.id.origin == me {
            do { return try ReceiptPartsRecord.decode(m.content[...]).parts.map { ($0.id, $0.holder) } } catch {
                // Not parts: a receipt in the signed form, read below.
            }
        }
        do { return try ReceiptContent.decode(m.content).map { ($0, m.id.origin) } } catch {
            // Malformed (SPEC 6.8): it confirms nothing; its inbox line says why (`text`).
            return []
        }
    }

    /// What the inbox shows for a message: its text; for a receipt the bundles it confirms; for a failure notice the
    /// bundles given up on and why.
    static func text(_ m: InboxMessage, me: ShortID) -> String {
        switch m.kind {
        case .receipt:
            if m.id.origin == me {
                // One this relay made for itself holds the receipt parts (6.16) it checked, each for its holder.
                do {
                    return "received: " + (try ReceiptPartsRecord.decode(m.content[...])).parts.map { "\($0.id) (by \($0.holder))" }.joined(separator: ", ")
                } catch {
                    // Not parts: a receipt in the signed form, read below.
                }
            }
            do { return "received: " + (try ReceiptContent.decode(m.content)).map(\.description).joined(separator: ", ") } catch {
                return "received: (malformed receipt, confirms nothing: \(error))"
            }
        case .failure:
            do {
                return "NOT delivered: " + (try FailureContent.decode(m.content)).map { "\($0.id) (\($0.reason))" }.joined(separator: ", ")
            } catch {
                return "NOT delivered: (malformed failure notice: \(error))"
            }
        case .other(let c):
            // A kind from a newer Courier: its content is not known to be text (SPEC 6.8).
            return "unknown kind \(c) from a newer Courier, \(m.content.count) bytes this relay cannot show: update to read it"
        default: return m.text
        }
    }

    /// Inbox JSON: the text of known kinds, the bytes (hex) of unknown ones.
    static func json(_ m: InboxMessage, me: ShortID) -> (key: String, value: String) {
        if case .other = m.kind { return ("contentHex", m.content.map { String(format: "%02x", $0) }.joined()) }
        return ("text", self.text(m, me: me))
    }
}

/// One JSON object on one line, keys sorted (what `--json` prints).
func printJSON(_ object: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}

/// Text from elsewhere (message text, node names heard on the air, feed details) as human output shows it: control characters
/// cannot reach the operator's terminal. ESC is shown as `\e`, tab and carriage return as `\t` and `\r`, every other
/// C0 character and DEL as `\xHH`, C1 characters and the bidirectional overrides and isolates (which reorder
/// what is shown) as `\u{HHHH}`. Newlines are kept where `keepNewlines` (a whole message), shown as `\n`
/// otherwise. JSON output is never escaped this way: it carries the exact text.
enum Terminal {
    static func safe(_ s: String, keepNewlines: Bool = false) -> String {
        guard s.unicodeScalars.contains(where: { self.isControl($0) && !(keepNewlines && $0 == "\n") }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for u in s.unicodeScalars {
            guard self.isControl(u) && !(keepNewlines && u == "\n") else {
                out.unicodeScalars.append(u)
                continue
            }
            switch u.value {
            case 0x1B: out += "\\e"
            case 0x09: out += "\\t"
            case 0x0D: out += "\\r"
            case 0x0A: out += "\\n"
            case 0...0x1F, 0x7F: out += String(format: "\\x%02X", u.value)
            default: out += String(format: "\\u{%04X}", u.value)
            }
        }
        return out
    }

    /// C0, DEL, C1, the line and paragraph separators, and the bidirectional controls.
    static func isControl(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

/// Prints a line of human output that may hold text from elsewhere: control characters escaped (`Terminal.safe`),
/// newlines kept (the lines this relay writes; names in them are escaped whole by `NodeNames.label`).
func say(_ line: String) { print(Terminal.safe(line, keepNewlines: true)) }

/// How `relay status` shows a link's connection to a server (an MQTT broker).
enum ConnectionFormat {
    /// E.g. "broker 127.0.0.1:1883, topic courier/1a2b3c4d/+: reconnecting since 11:02 UTC (40 s ago, 3 attempts); last error 11:02 UTC: Connection refused".
    static func line(_ c: [String: Any], now: Double) -> String {
        let peer = Terminal.safe((c["peer"] as? String) ?? "server")
        let state = (c["state"] as? String) ?? "?"
        let since = (c["since"] as? Double) ?? now
        var s = "\(peer): \(state == "connected" ? "connected" : state.uppercased()) since \(clock(since)) (\(relative(now - since)) ago"
        if let n = c["failedAttempts"] as? Int, n > 0 { s += ", \(n) failed attempt\(n == 1 ? "" : "s")" }
        s += ")"
        if let e = c["lastError"] as? String {
            s += "; last error\((c["lastErrorAt"] as? Double).map { " \(clock($0))" } ?? ""): \(Terminal.safe(e))"
        }
        return s
    }
}
