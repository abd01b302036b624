import CourierRuntime
import Foundation
import Logging
import Synchronization

/// What `relay run` does with the signals `ProcessSignals` takes: the first SIGTERM or SIGINT stops the relay
/// gracefully (at once if it is still starting), a second one during a slow stop ends the process without waiting,
/// and SIGHUP asks the running relay to re-read relay.conf.
final class StopRequests: Sendable {
    /// The exit status after a second stop signal cut a slow stop short: not 0, because the stop was not clean,
    /// though the queue is safe (SQLite rolls back what was half-written).
    static let forcedExitStatus: Int32 = 1

    private struct State {
        var runtime: Runtime?
        var logger: Logger?
        var configFile = ""
        var stopSignals = 0
    }

    private let state = Mutex(State())

    /// Called on the signal thread.
    func handle(_ sig: Int32) {
        let name = ProcessSignals.name(sig)
        let (runtime, logger, configFile, count): (Runtime?, Logger?, String, Int) = self.state.withLock { s in
            if sig != SIGHUP { s.stopSignals += 1 }
            return (s.runtime, s.logger, s.configFile, s.stopSignals)
        }
        let log = logger ?? Logger(label: "relay")
        if sig == SIGHUP {
            if let runtime {
                log.notice("\(name): reloading \(configFile)")
                runtime.reload()
            } else {
                log.notice("\(name) while starting: relay.conf is read once the relay runs")
            }
            return
        }
        switch count {
        case 1:
            log.notice("\(name): stopping")
            runtime?.stop()
        default:
            log.warning("\(name) again: stopping now without waiting; the queue is safe on disk and resumes at the next start")
            _exit(Self.forcedExitStatus)
        }
    }

    /// Whether SIGTERM or SIGINT came (a relay still starting, waiting for space on a full disk, checks it).
    var stopAsked: Bool { self.state.withLock { $0.stopSignals > 0 } }

    /// The relay is about to run: from now on signals reach it. A stop asked for while it was starting applies now.
    func attach(_ runtime: Runtime, logger: Logger, configFile: String) {
        let stopAsked = self.state.withLock { s in
            s.runtime = runtime
            s.logger = logger
            s.configFile = configFile
            return s.stopSignals > 0
        }
        if stopAsked {
            logger.notice("a stop was asked for while starting: stopping")
            runtime.stop()
        }
    }
}
