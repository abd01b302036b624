/// A path r0, p1 … p6, d, each of r0 and p1 … p6 with three more neighbours that lead nowhere (leaves): at every fork
/// the last copy of a bundle has more than one neighbour to go to. Shared by `SprayAndFocusTests` and
/// `IdentityRoutesTests`, which differ in their traffic.
enum ForksScenario {
    static let forks = 7
    static let leaves = 3
    static var names: [String] {
        (0..<Self.forks).flatMap { f in [f == 0 ? "r0" : "p\(f)"] + (0..<Self.leaves).map { "l\(f)x\($0)" } } + ["d"]
    }

    /// The scenario file: nodes on a grid (all within range; the links say who hears whom), `traffic` a JSON list.
    static func json(name: String, seed: Int, duration: Int, traffic: String) -> String {
        func fork(_ f: Int) -> String { f == 0 ? "r0" : "p\(f)" }
        let nodes = Self.names.enumerated().map { #"{"id": "\#($1)", "x": \#($0 % 8 * 150), "y": \#($0 / 8 * 150)}"# }
        var links: [String] = []
        for f in 0..<Self.forks {
            links.append(#"{"a": "\#(fork(f))", "b": "\#(f + 1 < Self.forks ? fork(f + 1) : "d")"}"#)
            for l in 0..<Self.leaves { links.append(#"{"a": "\#(fork(f))", "b": "l\#(f)x\#(l)"}"#) }
        }
        return """
            {"name": "\(name)", "seed": \(seed), "duration": \(duration),
             "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes.joined(separator: ", "))],
             "links": [\(links.joined(separator: ", "))],
             "traffic": \(traffic),
             "events": []}
            """
    }
}
