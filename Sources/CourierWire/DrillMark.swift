/// A live drill (SPEC 6.17): an alert that carries extension type 6. Every relay that reads it answers with its
/// receipt part (6.16), and says in it how many hops from the origin it got the drill (record flag 0x01), so the
/// origin learns who has it, when, and how far away. The extension is even: a relay that predates it shows the drill
/// as an alert and answers as for any alert (a part without a hop count, or a signed receipt).
///
///     value: version u8 (1) | scope: UTF-8, 0-64 bytes (empty: everyone; otherwise the name of the pact it is for)
public enum DrillMark {
    public static let extensionType: UInt32 = 6
    public static let version: UInt8 = 1
    public static let maxScope = 64

    /// The extension for a drill to everyone (`scope` nil) or to the members of a pact.
    public static func make(scope: String?) -> Extension {
        Extension(type: Self.extensionType, value: [Self.version] + Array((scope ?? "").utf8.prefix(Self.maxScope)))
    }

    /// Whether a bundle is a drill: an alert with a drill extension of a version this node knows.
    public static func isDrill(_ b: CourierBundle) -> Bool {
        b.kind == .alert && b.extensions.contains { $0.type == Self.extensionType && $0.value.first == Self.version }
    }

    /// The scope a drill names: nil for everyone, else the pact's name; nil too when not a drill.
    public static func scope(_ b: CourierBundle) -> String? {
        guard self.isDrill(b), let e = b.extensions.first(where: { $0.type == Self.extensionType }), e.value.count > 1 else { return nil }
        return String(decoding: e.value.dropFirst(), as: UTF8.self)
    }
}
