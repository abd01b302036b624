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

/// A receipt's content: the ids of the bundles its origin received (SPEC 6.8).
enum ReceiptText {
    static func ids(_ content: [UInt8]) -> [BundleID] {
        var r = ByteReader(content)
        var out: [BundleID] = []
        while !r.isAtEnd {
            guard let o = try? r.u32("origin"), let c = try? r.u24("created"), let s = try? r.varint32("sequence"),
                  let id = try? BundleID(origin: ShortID(o), created: c, sequence: s)
            else { break }
            out.append(id)
        }
        return out
    }

    /// What the inbox shows for a message: its text, or for a receipt the bundles it confirms.
    static func text(_ m: InboxMessage) -> String {
        m.kind == .receipt ? "received: " + self.ids(m.content).map(\.description).joined(separator: ", ") : m.text
    }
}
