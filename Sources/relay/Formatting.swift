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
    /// What the inbox shows for a message: its text; for a receipt the bundles it confirms; for a failure notice the
    /// bundles given up on and why.
    static func text(_ m: InboxMessage) -> String {
        switch m.kind {
        case .receipt: return "received: " + ReceiptContent.decode(m.content).map(\.description).joined(separator: ", ")
        case .failure:
            return "NOT delivered: " + FailureContent.decode(m.content).map { "\($0.id) (\($0.reason))" }.joined(separator: ", ")
        case .other(let c):
            // A kind from a newer Courier: its content is not known to be text (SPEC 6.8).
            return "unknown kind \(c) from a newer Courier, \(m.content.count) bytes this relay cannot show: update to read it"
        default: return m.text
        }
    }

    /// Inbox JSON: the text of known kinds, the bytes (hex) of unknown ones.
    static func json(_ m: InboxMessage) -> (key: String, value: String) {
        if case .other = m.kind { return ("contentHex", m.content.map { String(format: "%02x", $0) }.joined()) }
        return ("text", self.text(m))
    }
}

/// One JSON object on one line, keys sorted (what `--json` prints).
func printJSON(_ object: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}
