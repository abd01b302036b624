import CourierNode
import CourierPacts
import CourierStore
import CourierWire
import Foundation
import Logging

/// Deadlines that act (issue 17, SPEC 6.15), once a second on the runtime's loop: an aid request under a pact shows
/// as an obligation at the members that owe an answer; when its deadline nears without the pledges the pact promises,
/// the requester and the members still owing are reminded (log at notice, change feed, `relay status`); when it
/// passes, the requester's relay escalates on its own: an alert to everyone naming the unmet pledges. Each happens
/// once (the store remembers), across restarts.
extension Runtime {
    func checkPacts(now: Double) {
        let store = self.store
        let ledger: PactLedger
        do { ledger = try PactLedger(store: store) } catch {
            self.logger.error("pacts: cannot read the pact records; deadlines are not checked until it works", metadata: ["error": "\(error)"])
            return
        }
        let me = self.node.me.short
        // A record the ledger leaves out for good (an origin not proven, a node that is not a member, a pledge from
        // one that owes none): logged and in the change feed once, with why.
        for (id, why) in ledger.ignored where !ledger.waiting.contains(id) {
            do {
                if try store.notePact(id.description, "left-out", detail: "pact record \(id) left out of the ledger: \(why)", bundle: id, now: Int64(now)) {
                    self.logger.warning("pact record left out of the ledger", metadata: ["bundle.id": "\(id)", "why": "\(why)"])
                }
            } catch {
                self.logger.error("pacts: cannot note the record \(id) left out", metadata: ["error": "\(error)"])
            }
        }
        for duty in ledger.duties(me: me, now: now) {
            let (subject, what) = duty.key
            do {
                if try store.pactNoted(subject, what) { continue }
            } catch {
                self.logger.error("pacts: cannot read what was done about \(subject)", metadata: ["error": "\(error)"])
                continue
            }
            let request = BundleID(subject)
            var detail: String
            switch duty {
            case .obligation(let r, let pact, let deadline):
                detail = "obligation: aid request \(r) from \(r.origin) under pact \(pact): answer by \(PactLedger.iso(Double(deadline))), in \(PactLedger.duration(max(0, Double(deadline) - now))) (`relay pact answer \(r) TEXT`)"
                self.logger.notice("pact \(pact): aid request \(r) from \(r.origin) is yours to answer by \(PactLedger.iso(Double(deadline)))",
                                   metadata: ["bundle.id": "\(r)"])
            case .reminder(let r, let pact, let deadline, let missing):
                let left = PactLedger.duration(max(0, Double(deadline) - now))
                detail = "reminder: aid request \(r) under pact \(pact) is due in \(left); no pledge yet from \(missing.map(\.description).joined(separator: ", "))"
                self.logger.notice("pact \(pact): aid request \(r) is due in \(left); no pledge yet from \(missing.map(\.description).joined(separator: ", "))",
                                   metadata: ["bundle.id": "\(r)"])
            case .kept(let r, let pact):
                detail = "kept: every member of pact \(pact) pledged to \(r) in time"
                self.logger.notice("pact \(pact): every member pledged to aid request \(r) in time", metadata: ["bundle.id": "\(r)"])
            case .escalate(let r, let pact, let name, let unmet, let text):
                let who = unmet.map(\.description).joined(separator: ", ")
                let body = "Pact \(name): aid request \(r) passed its deadline without a pledge from \(who). \(text)"
                let content = Array(body.utf8.prefix(CourierBundle.maxContentSize))
                var opts = BundleOptions(kind: .alert)
                opts.priority = .urgent
                do {
                    let record = try PactRecord(pact: pact, body: .escalation(request: r, unmet: Array(unmet.prefix(PactRecord.maxMembers))))
                    opts.extensions = [record.extensionValue]
                    let (id, out) = try self.node.submit(kind: .alert, destination: .everyone, content: content, options: opts, now: now)
                    self.perform(out, receivedOn: nil)
                    detail = "escalated: aid request \(r) under pact \(name) passed its deadline; no pledge in time from \(who); alert \(id) to everyone"
                    self.logger.warning("pact \(name): aid request \(r) passed its deadline without a pledge from \(who): escalated to everyone",
                                        metadata: ["bundle.id": "\(r)", "alert": "\(id)"])
                } catch {
                    // Tried again at the next check: nothing is noted as done.
                    self.logger.error("pact \(name): cannot send the escalation of \(r); trying again", metadata: ["error": "\(error)"])
                    continue
                }
            }
            do {
                _ = try store.notePact(subject, what, detail: detail, bundle: request, now: Int64(now))
            } catch {
                self.logger.error("pacts: cannot note \(what) of \(subject); it may be repeated", metadata: ["error": "\(error)"])
            }
        }
    }
}
