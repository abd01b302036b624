import ArgumentParser
import CourierSim
import CourierNode
import Foundation

extension Relay {
    struct Drill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resilience drills: break the mesh on purpose and measure how it recovers.",
            subcommands: [Simulate.self, Start.self, Report.self, List.self])

        struct Simulate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run a scenario file with the real engine on a simulated radio channel and a virtual clock.",
                discussion: """
                    Every relay of the scenario is the relay engine with its own in-memory database; every packet goes \
                    through a shared radio channel (airtime, collisions and capture, half-duplex, listen-before-talk, \
                    duty cycle). Prints delivery, latency per kind, airtime, collisions, recovery after each \
                    disruption and the offers each aid request got. The same file gives the same figures. The format \
                    of scenario files is in the README ("Scenario files"); scenarios/ holds examples.
                    """)
            @Argument(help: "The scenario file (JSON).") var file: String
            @Flag(help: "Print one JSON object instead of lines.") var json = false
            @Option(help: "Also write a self-contained HTML page with plots to this file.") var report: String?
            @Option(help: "How relays spread the traffic: courier (the relay engine, default), naive (every relay rebroadcasts once) or managed (Meshtastic's managed flooding).")
            var strategy: String = "courier"
            @Flag(help: "Run the three strategies on the same scenario and print them side by side.") var compare = false
            @Option(help: "Stop the simulation at this many seconds (the traffic and events after it are left out).")
            var until: Double?
            @Flag(help: "Print a line on stderr for each simulated hour: wall time, transmissions, copies delivered, peak memory.")
            var progress = false
            @Flag(help: "Skip the second run, of the scenario without its disruptions, that each recovery is set against.")
            var noIntact = false
            @Option(help: "Print on stderr every transmission and reception between these two moments (seconds since the start, FROM-TO): what each packet carried and whether each relay in range got it.")
            var trace: String?
            @Flag(help: "Print on stderr, after the run, each directed message not delivered and where its copies are: each relay holding it, its hops from the destination, its copy budget, hop limit, route, next hop and transfers under way.")
            var undelivered = false
            @Flag(help: "Relays start with the routes an established federation's identity floods left them (each relay's way to every other, a day old: hints for copies, SPEC 5.14 rules 3 and 4), instead of none (README, \"Directed mail on the regional drill\").")
            var identityRoutes = false
            @Flag(help: "Relays start slowly towards a neighbour back after being given up on, and take turns with the relays on its other side they cannot hear (the engine's restartSlowly setting, off by default: README, \"Hidden terminals after a return\").")
            var slowRestart = false
            @Flag(help: "Relays holding bundles for a neighbour they lost say hello every few seconds to find a healed partition (the engine's healProbes setting, off by default: README, \"Heal probes\").")
            var healProbes = false
            @Flag(help: "Relays send neighbour lists and flood with two-hop knowledge, naming the relays that pass each flood on (the engine's neighbourLists setting, SPEC 5.13 and 8.5 rule 5; as courier-bench mesh --neighbour-lists).")
            var neighbourLists = false

            /// The engines' configuration for this run.
            var configure: (@Sendable (inout NodeConfig) -> Void)? {
                guard self.slowRestart || self.neighbourLists || self.healProbes else { return nil }
                let (slow, lists, probes) = (self.slowRestart, self.neighbourLists, self.healProbes)
                return { c in
                    if slow { c.restartSlowly = true }
                    if lists { c.neighbourLists = true }
                    if probes { c.healProbes = true }
                }
            }

            func run() async throws {
                try await guarded {
                    let url = URL(fileURLWithPath: self.file)
                    guard FileManager.default.fileExists(atPath: url.path) else {
                        throw RelayError.noInput("\(self.file): no such scenario file: check the path (examples are in scenarios/)")
                    }
                    var scenario: Scenario
                    do { scenario = try Scenario.load(contentsOf: url) } catch {
                        throw RelayError.data("\(error)")
                    }
                    if let until = self.until {
                        do { scenario = try scenario.cut(at: until) } catch {
                            throw RelayError.usage("--until \(String(format: "%g", until)) is not in the scenario: give seconds above 0 and at most its duration (\(String(format: "%g", scenario.duration)))")
                        }
                    }
                    guard ["courier", "naive", "managed"].contains(self.strategy) else {
                        throw RelayError.usage("--strategy \(self.strategy) is not known: use courier, naive or managed")
                    }
                    if self.strategy != "courier" && (self.report != nil || self.compare) {
                        throw RelayError.usage("--strategy \(self.strategy) cannot go with --report or --compare: the report and the comparison run the courier engine; leave --strategy out")
                    }
                    if self.trace != nil && (self.strategy != "courier" || self.compare) {
                        throw RelayError.usage("--trace goes with the courier engine's run alone: leave out --strategy and --compare")
                    }
                    if self.strategy != "courier" || self.compare {
                        var rows: [StrategySummary] = []
                        let names = self.compare ? ["naive", "managed", "courier"] : [self.strategy]
                        for name in names {
                            do {
                                if let s = FloodSimulator.Strategy(rawValue: name) {
                                    let f = try FloodSimulator(scenario: scenario, strategy: s)
                                    try f.run()
                                    rows.append(f.summary())
                                } else {
                                    let sim = try DrillSimulator(scenario: scenario, configure: self.configure, identityRoutes: self.identityRoutes)
                                    try sim.run()
                                    let result = sim.result()
                                    try self.writeReport(result, scenario)
                                    rows.append(StrategySummary(result))
                                }
                            } catch let e as RelayError {
                                throw e
                            } catch {
                                throw RelayError.data("\(self.file): the scenario could not be simulated (\(error)): check it against \"Scenario files\" in the README")
                            }
                        }
                        // What the alert would cost at the least (a planner with the whole map, nothing lost).
                        let floors: [AlertFloor]
                        do { floors = self.compare ? try AlertFloor.alerts(in: scenario) : [] } catch {
                            throw RelayError.data("\(self.file): \(error)")
                        }
                        let managed = rows.first { $0.strategy == "managed" }?.alerts
                        if self.json {
                            var o: [String: Any] = ["name": scenario.name, "strategies": rows.map { $0.json() }]
                            if self.compare { o["alert_floors"] = floors.map { $0.json() } }
                            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
                            print(String(decoding: data, as: UTF8.self))
                        } else {
                            print("drill \(scenario.name): \(scenario.nodes.count) relays, \(String(format: "%g", scenario.duration)) s simulated, \(DrillResult.describe(scenario.radio)), seed \(scenario.seed)")
                            for line in StrategySummary.table(rows) { print(line) }
                            for f in floors { print(f.line(managed: managed)) }
                            if let path = self.report { print("report: \(path)") }
                        }
                        return
                    }
                    let window = try self.traceWindow()
                    let started = Date()
                    // The day's simulator (its engines and their stores) goes once its figures are taken, before the
                    // intact reference runs on: held on, it doubled the peak memory of a run with a reference.
                    // The reference is the day until the first disruption: forked from the day there, it simulates
                    // only the rest (`DrillSimulator.forkWithoutDisruptions`).
                    let forking = !self.noIntact && DrillSimulator.firstDisruption(scenario) != nil
                    func simulate() throws(RelayError) -> (DrillResult, DrillSimulator?) {
                        do {
                            let sim = try DrillSimulator(scenario: scenario, configure: self.configure, identityRoutes: self.identityRoutes)
                            if let window {
                                sim.trace = (window, { line in FileHandle.standardError.write(Data((line + "\n").utf8)) })
                            }
                            // With --undelivered, the allowance is sampled every minute (running in steps changes
                            // nothing: the same events in the same order).
                            var spent: [(t: Double, relays: Int)] = []
                            let step: Double = self.undelivered ? 60 : (self.progress ? 3_600 : .infinity)
                            var nextProgress = 3_600.0
                            let fork = try sim.run(every: step, forkingIntact: forking) { t in
                                if self.undelivered { spent.append((t, Self.relaysWithinReserve(sim))) }
                                if self.progress && (t >= nextProgress || t >= scenario.duration) {
                                    nextProgress += 3_600
                                    Self.progressLine(scenario.name, sim, t, started)
                                }
                            }
                            if self.undelivered {
                                let per10 = stride(from: 0, to: spent.count, by: 10).map { i -> String in
                                    let s = spent[i..<min(i + 10, spent.count)]
                                    return String(format: "%.0f", Double(s.map(\.relays).reduce(0, +)) / Double(s.count))
                                }
                                let mean = spent.isEmpty ? 0 : Double(spent.map(\.relays).reduce(0, +)) / Double(spent.count)
                                FileHandle.standardError.write(Data(String(format: "relays within their urgent reserve (only alerts may go; sampled each minute): mean %.1f of %d; per 10 minutes: %@\n", mean, scenario.nodes.count, per10.joined(separator: " ")).utf8))
                                for line in Self.undeliveredLines(sim) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
                            }
                            return (sim.result(), fork)
                        } catch {
                            throw RelayError.data("\(self.file): the scenario could not be simulated (\(error)): check it against \"Scenario files\" in the README")
                        }
                    }
                    let (day, fork) = try simulate()
                    var result = day
                    // The recovery target: the same copies on the intact mesh (the scenario without its events).
                    if let intact = fork, !result.disruptions.isEmpty {
                        do {
                            // It stops as soon as its figures are decided (`DrillResult.measureIntact`): the same
                            // figures as running it to the end.
                            let name = scenario.name + " without its disruptions"
                            let forkedAt = intact.elapsed
                            let stop = try result.measureIntact(intact, every: self.progress ? 3_600 : .infinity) { t in
                                Self.progressLine(name, intact, t, started)
                            }
                            if self.progress {
                                let at = String(format: "%g of %g s simulated", stop, scenario.duration)
                                let forked = String(format: "; forked from the day at %g s (its first disruption) and simulated from there", forkedAt)
                                let line = stop < scenario.duration
                                    ? "drill \(name): stopped at \(at), every recovery target decided (the rest of the run cannot change them)\(forked)\n"
                                    : "drill \(name): \(at), every recovery target measured\(forked)\n"
                                FileHandle.standardError.write(Data(line.utf8))
                            }
                        } catch {
                            throw RelayError.data("\(self.file): the scenario without its disruptions could not be simulated (\(error)): check it against \"Scenario files\" in the README")
                        }
                    }
                    let wall = Date().timeIntervalSince(started)
                    try self.writeReport(result, scenario)
                    if self.json {
                        let data = try JSONSerialization.data(withJSONObject: result.json(), options: [.sortedKeys])
                        print(String(decoding: data, as: UTF8.self))
                    } else {
                        for line in result.text(radio: scenario.radio, seed: scenario.seed) { print(line) }
                        if let path = self.report { print("report: \(path)") }
                        let (cpu, peak) = Self.usage()
                        print(String(format: "simulated in %.1f s of wall time (%.1f s of CPU, peak memory %d MB)", wall, cpu, peak))
                    }
                }
            }

            /// Relays whose duty-cycle allowance left is within the urgent reserve now (only urgent data may go).
            static func relaysWithinReserve(_ sim: DrillSimulator) -> Int {
                sim.nodes.prefix(sim.scenario.nodes.count).reduce(0) { n, node in
                    guard let a = node.airtimeLeft(on: "radio", now: sim.now) else { return n }
                    return a.left <= a.reserve ? n + 1 : n
                }
            }

            /// `--undelivered`: each directed message not delivered, and its holders (`DrillSimulator.undeliveredDirected`).
            static func undeliveredLines(_ sim: DrillSimulator) -> [String] {
                let all = sim.undeliveredDirected()
                var lines: [String] = []
                var held = 0, withRoute = 0, waiting = 0, inTransfer = 0
                for u in all {
                    let m = sim.scenario.traffic[u.message]
                    let dest: String
                    if case .node(let d) = m.to { dest = d } else { dest = "everyone" }
                    let c = u.counts
                    lines.append("undelivered \(m.kind.rawValue) \(u.message) (\(m.from) to \(dest), sent at \(String(format: "%g", m.at)) s): stored by \(c.stored) relays, custody handed on \(c.custodyMoved) times, \(c.stalled) stalled; held by \(u.holders.count)" + (u.gaveUp.isEmpty ? "" : "; given up: " + u.gaveUp.joined(separator: "; ")))
                    if !u.holders.isEmpty { held += 1 }
                    if u.holders.contains(where: { $0.holding.onward != nil }) { withRoute += 1 }
                    if u.holders.contains(where: { !$0.holding.transfers.isEmpty }) { inTransfer += 1 }
                    if !u.holders.isEmpty && u.holders.allSatisfy({ $0.holding.copies <= 1 && $0.holding.onward == nil && $0.holding.transfers.isEmpty }) { waiting += 1 }
                    for h in u.holders {
                        let x = h.holding
                        let route = x.route.map { "route via \(sim.name(of: $0.via)) (\($0.hops) hops, \(Int($0.age)) s old\(x.routeUsable ? "" : ", not used"))" } ?? "no route"
                        let next = x.onward.map { "next hop \(sim.name(of: $0))" } ?? (x.destinationInRange ? "destination in range" : "no next hop")
                        let transfers = x.transfers.map { "to \($0.target.map { sim.name(of: $0) } ?? "everyone") (\($0.attempts) time-outs\($0.custody ? ", custody" : ""), \($0.acked)/\($0.records) acked, " + ($0.sentAgo.map { String(format: "first sent %.0f s ago", $0) } ?? "never sent") + String(format: ", due in %.0f s)", $0.dueIn) }
                        lines.append("  \(sim.names[h.relay]) (\(h.hops.map { "\($0) hops from \(dest)" } ?? "cut off from \(dest)")): \(x.custody ? "custody" : "no custody"), budget \(x.copies), hop limit \(x.hopLimit.map(String.init) ?? "? (\(x.hopLimitUnread ?? "not read"))"), \(route), \(next), \(x.freshNeighbours) neighbours (\(x.candidates) without it), \(x.copiesGiven) copies given, " + String(format: "%.1f s of airtime left (reserve %.1f s)", x.airtimeLeft, x.urgentReserve) + (transfers.isEmpty ? "" : ", transfers: " + transfers.joined(separator: ", ")))
                    }
                }
                lines.append("undelivered directed messages: \(all.count); held somewhere \(held) (a holder with a next hop: \(withRoute); a transfer under way: \(inTransfer); every holder at its last copy with no next hop: \(waiting)); held nowhere \(all.count - held)")
                return lines
            }

            /// `--progress`: a line on stderr after `t` simulated seconds of `sim` (the run named `name`).
            static func progressLine(_ name: String, _ sim: DrillSimulator, _ t: Double, _ started: Date) {
                let (cpu, peak) = Self.usage()
                let c = sim.engineCalls
                let line = "drill \(name): " + String(format: "%g of %g s simulated, %.1f s of wall time, %.1f s of CPU, %d transmissions, %d copies delivered; engine calls: %d ticks, %d packets, %d busy reports; %d events queued, peak memory %d MB\n",
                                                  t, sim.scenario.duration, Date().timeIntervalSince(started), cpu,
                                                  sim.channel.statistics.transmissions, sim.deliveredCount,
                                                  c.ticks, c.receptions, c.busyReports, sim.pendingEvents, peak)
                FileHandle.standardError.write(Data(line.utf8))
            }

            /// The process's CPU seconds (user and system) and peak resident set size in MB (getrusage: ru_maxrss
            /// is in kilobytes on Linux, bytes on macOS).
            static func usage() -> (cpu: Double, peakMB: Int) {
                var u = rusage()
                #if os(Linux)
                guard getrusage(RUSAGE_SELF.rawValue, &u) == 0 else { return (0, 0) }
                let peak = u.ru_maxrss / 1024
                #else
                guard getrusage(RUSAGE_SELF, &u) == 0 else { return (0, 0) }
                let peak = u.ru_maxrss / (1024 * 1024)
                #endif
                let cpu = Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
                return (cpu, Int(peak))
            }

            /// `--trace FROM-TO` as a window of seconds since the start (nil without it).
            func traceWindow() throws -> ClosedRange<Double>? {
                guard let t = self.trace else { return nil }
                let parts = t.split(separator: "-", omittingEmptySubsequences: false)
                guard parts.count == 2, let from = Double(parts[0]), let to = Double(parts[1]), from >= 0, from <= to else {
                    throw RelayError.usage("--trace \(t) is not a window: give seconds since the start as FROM-TO, for example --trace 3000-3060")
                }
                return from...to
            }

            func writeReport(_ result: DrillResult, _ scenario: Scenario) throws {
                guard let path = self.report else { return }
                do {
                    try Data(result.html(radio: scenario.radio, seed: scenario.seed).utf8).write(to: URL(fileURLWithPath: path))
                } catch {
                    throw RelayError.cannotCreate("cannot write the report \(path) (\(error.localizedDescription)): check the folder exists and is writable")
                }
            }
        }
    }
}
