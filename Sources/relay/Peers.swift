import ArgumentParser
import CourierStore
import CourierWire
import Foundation

extension Relay {
    struct Peers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The trust list: this relay's identity code, the nodes it trusts and the nodes it has heard.",
            discussion: """
                With `trust = peers` in relay.conf, only bundles from nodes on the trust list are accepted; with the \
                default `trust = network`, any node holding the federation's key. A running relay applies an edit \
                within a second.
                """,
            subcommands: [Show.self, Add.self, Remove.self], defaultSubcommand: Show.self)

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "This relay's identity code and the known nodes.")
            @OptionGroup var d: DirOption
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    let (id, name) = try dir.identity()
                    let conf = dir.config()
                    let peers = try dir.store().peers().filter { $0.nodeID != id.nodeID }
                    let code = IdentityCode.make(id.publicKeys)
                    if self.json {
                        let o: [String: Any] = [
                            "node": id.nodeID.short.description, "nodeID": id.nodeID.description, "identityCode": code,
                            "trust": conf.trustPeersOnly ? "peers" : "network",
                            "peers": peers.map { p -> [String: Any] in
                                var e: [String: Any] = ["node": p.nodeID.short.description, "nodeID": p.nodeID.description, "trusted": p.trusted,
                                                        "identityCode": IdentityCode.make(p.keys)]
                                if let n = p.name { e["name"] = n }
                                if let h = p.lastHeard { e["lastHeard"] = h }
                                if let a = p.added { e["added"] = a }
                                return e
                            },
                        ]
                        try printJSON(o)
                        return
                    }
                    say("this relay: \(id.nodeID.short)\(name.map { " (\($0))" } ?? "")")
                    say("  identity code (give it to operators who add you):")
                    say("    \(code)")
                    say("  fingerprint (read it out to compare): \(IdentityCode.fingerprint(id.nodeID))")
                    say("trust: \(conf.trustPeersOnly ? "peers (only the trusted nodes below)" : "network (any node holding the federation key)")")
                    let now = Date().timeIntervalSince1970
                    let trusted = peers.filter(\.trusted)
                    say("trusted: \(trusted.count)")
                    for p in trusted {
                        let heard = p.lastHeard.map { "heard \(relative(now - Double($0))) ago" } ?? "never heard"
                        say("  \(p.nodeID.short)  \(Terminal.safe(p.name ?? "-").padding(toLength: 20, withPad: " ", startingAt: 0)) \(heard)")
                    }
                    let others = peers.filter { !$0.trusted }
                    say("known, not on the trust list: \(others.count)\(others.isEmpty ? "" : " (add one with `relay peers add NODE`)")")
                    for p in others {
                        // Keys heard in an announce on a link, or learnt from the node's identity bundle relayed through
                        // the federation: either way messages to it are end-to-end encrypted.
                        let heard = p.lastHeard.map { "heard \(relative(now - Double($0))) ago" } ?? "keys learnt through the federation"
                        say("  \(p.nodeID.short)  \(Terminal.safe(p.name ?? "-").padding(toLength: 20, withPad: " ", startingAt: 0)) \(heard)")
                    }
                }
            }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Trust a node: by its identity code (courier-id1-...), or by its id if this relay has heard it.")
            @OptionGroup var d: DirOption
            @Option(help: "A name for it (e.g. \"upper valley clinic\").") var name: String?
            @Argument(help: "An identity code from `relay peers` on that relay, or a node id this relay has heard.") var node: String

            func run() async throws {
                try await guarded {
                    let dir = try d.dir()
                    if let n = self.name, let wrong = DataDir.nameProblem(n) { throw RelayError.usage("--name \(wrong)") }
                    let store = try dir.store()
                    let keys = try resolve(self.node, in: store)
                    let (me, _) = try dir.identity()
                    guard keys.nodeID != me.nodeID else { throw RelayError.usage("that is this relay's own identity; it always trusts itself") }
                    try store.setTrusted(keys, name: self.name, trusted: true, now: Int64(Date().timeIntervalSince1970))
                    say("trusted \(keys.nodeID.short)\(self.name.map { " (\($0))" } ?? "")  fingerprint \(IdentityCode.fingerprint(keys.nodeID))")
                    if !dir.config().trustPeersOnly {
                        say("note: relay.conf has trust = network, so every federation member is accepted; set `trust = peers` to accept only the trust list")
                    }
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Take a node off the trust list (what was heard of it is kept).")
            @OptionGroup var d: DirOption
            @Argument(help: "The node id (8 hex digits or the full id) or its identity code.") var node: String

            func run() async throws {
                try await guarded {
                    let store = try d.dir().store()
                    let trusted = try store.peers().filter(\.trusted)
                    // Not on the list: say so (and what is), whether or not this relay ever heard of the node; never
                    // advise adding what the operator asked to remove.
                    func notOnList(_ who: String) -> RelayError {
                        let on = trusted.map { "\($0.nodeID.short)\($0.name.map { " (\(Terminal.safe($0)))" } ?? "")" }
                        return .usage("\(who) is not on the trust list, so nothing was changed; \(on.isEmpty ? "the trust list is empty" : "on it: " + on.joined(separator: ", ") + " (`relay peers` shows them)")")
                    }
                    let t = self.node.lowercased()
                    if (t.count == 8 || t.count == 32) && t.allSatisfy(\.isHexDigit)
                        && !trusted.contains(where: { t.count == 8 ? $0.nodeID.short.description == t : $0.nodeID.description == t }) {
                        throw notOnList(t)
                    }
                    let keys = try resolve(self.node, in: store)
                    guard trusted.contains(where: { $0.nodeID == keys.nodeID }) else { throw notOnList(keys.nodeID.short.description) }
                    try store.setTrusted(keys, name: nil, trusted: false, now: Int64(Date().timeIntervalSince1970))
                    say("removed \(keys.nodeID.short) from the trust list")
                }
            }
        }
    }
}

/// A node named by an identity code, or by a (short or full) id whose keys the store knows.
func resolve(_ text: String, in store: Store) throws -> NodePublicKeys {
    if text.lowercased().hasPrefix(IdentityCode.prefix) { return try IdentityCode.parse(text) }
    let t = text.lowercased()
    guard t.count == 8 || t.count == 32, t.allSatisfy(\.isHexDigit) else {
        throw RelayError.usage("'\(text)' is neither an identity code (courier-id1-...) nor a node id (8 or 32 hex digits)")
    }
    let matches = try store.peers().filter { t.count == 8 ? $0.nodeID.short.description == t : $0.nodeID.description == t }
    guard let first = matches.first else {
        throw RelayError.usage("this relay has not heard \(t) yet, so it does not know its keys: add it by its identity code (`relay peers` on that relay prints it)")
    }
    guard matches.count == 1 else { throw RelayError.usage("two known nodes share the id \(t): give the full 32-digit id or the identity code") }
    return first.keys
}
