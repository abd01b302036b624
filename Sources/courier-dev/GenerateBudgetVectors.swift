import CourierWire
import Foundation

/// budgets.json (SPEC 5.14): copy-budgets records with their entries, as a record body and as a payload beside the
/// directed fragment they are for; bodies that must not decode.
struct CopyBudgetsVector: Codable {
    var name: String
    /// (transfer number, copies) in the order written.
    var entries: [[UInt32]]
    var recordHex: String
    /// The record and a directed fragment of the transfer it names (to node B, keys.json) in one payload, as a relay
    /// sends a copy.
    var payloadHex: String
}

struct CopyBudgetsFile: Codable {
    var description: String
    var records: [CopyBudgetsVector]
    var invalid: [CopyBudgetsInvalid]
}

struct CopyBudgetsInvalid: Codable {
    var name: String
    var hex: String
    var error: String
}

extension GenerateVectors {
    func budgetVectors(b: NodeIdentity) throws {
        func vector(_ name: String, _ entries: [(UInt32, Int)]) -> CopyBudgetsVector {
            let r = CopyBudgetsRecord(entries.map { CopyBudgetsRecord.Entry(transfer: $0.0, copies: $0.1) })
            let fragment = Record.fragment(FragmentRecord(nextHop: b.nodeID.short, transfer: entries[0].0, index: 0, count: 2,
                                                          data: Array("the first half of a bundle".utf8)))
            return CopyBudgetsVector(name: name, entries: entries.map { [$0.0, UInt32($0.1)] }, recordHex: r.encodeBody().hex,
                                     payloadHex: Record.encode([.copyBudgets(r), fragment]).hex)
        }
        let records = [
            vector("a copy carrying 4 of the origin's 8 (transfer 300)", [(300, 4)]),
            vector("the last copy moving on (budget 1, transfer 5)", [(5, 1)]),
            vector("two transfers in one packet, a large budget", [(16_383, 2), (7, 300)]),
        ]
        let invalid = [
            CopyBudgetsInvalid(name: "no entry", hex: "", error: "truncated"),
            CopyBudgetsInvalid(name: "a budget of 0", hex: "0500", error: "invalidValue"),
            CopyBudgetsInvalid(name: "a budget above 65,535", hex: "05808004", error: "invalidValue"),
            CopyBudgetsInvalid(name: "a transfer without its budget", hex: "05", error: "truncated"),
        ]
        try self.write(CopyBudgetsFile(
            description: "Copy-budgets records (SPEC 5.14, record type 10): the copies the receiver of a directed transfer may hold and hand on (binary spray-and-wait). A node that does not know type 10 skips it (5.8).",
            records: records, invalid: invalid), "budgets.json")
    }
}
