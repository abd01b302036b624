import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM, SIGINT and SIGHUP for a process that runs as a service, read by one thread in `sigwait(2)`.
///
/// The rules that make this work on Linux however the relay is started (a shell, a background job, systemd, a
/// parent that left the signals blocked or ignored):
/// 1. `blockAtStart()` runs first in `main`, before any other thread exists: threads inherit the mask, so no thread
///    can take one of these signals and run its action. A parent's `SIG_IGN` (a shell's background job ignores
///    SIGINT, `nohup` ignores SIGHUP) is reset to the default action, which never runs while the signal is blocked.
/// 2. The main thread then calls `dispatchForever()` and waits for the signals, which stay pending until it takes
///    them. Each goes to the installed handler; with none installed it gets its default action (the process ends),
///    so a short command such as `relay queue tail` still stops on Ctrl-C.
///
/// Why not a `DispatchSource` (or swift-service-lifecycle's `UnixSignalsSequence`, built on one): both set the
/// signal to `SIG_IGN` and rely on libdispatch reading it from a signalfd, which only sees a signal that is pending.
/// On Linux the main thread of an `async` main waits in `sigsuspend` with an empty mask, so the kernel hands it the
/// signal, whose action is "ignore", and it is discarded: the relay never stopped on SIGTERM (issue 9). The main
/// function must therefore stay synchronous and never enter `dispatch_main`.
public enum ProcessSignals {
    /// The signals taken by `dispatchForever()`.
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)

    /// Blocks the handled signals in the calling thread and resets their actions to the default. Call it first in
    /// `main`, before anything starts a thread.
    public static func blockAtStart() {
        var set = Self.signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        for s in Self.handled { signal(s, SIG_DFL) }
    }

    /// Installs (or, with `nil`, removes) the function called, on the signal thread, for each signal taken.
    public static func setHandler(_ handler: (@Sendable (Int32) -> Void)?) {
        Self.handler.withLock { $0 = handler }
    }

    /// Takes the handled signals one at a time, forever, on the calling thread.
    public static func dispatchForever() -> Never {
        var set = Self.signalSet()
        while true {
            var sig: Int32 = 0
            guard sigwait(&set, &sig) == 0 else { continue }
            if let h = Self.handler.withLock({ $0 }) {
                h(sig)
            } else {
                Self.defaultAction(sig)
            }
        }
    }

    /// "SIGTERM", "SIGINT", "SIGHUP".
    public static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        default: return "signal \(sig)"
        }
    }

    /// What the signal would have done had it never been blocked: for these three, end the process by it.
    static func defaultAction(_ sig: Int32) {
        signal(sig, SIG_DFL)
        var one = sigset_t()
        sigemptyset(&one)
        sigaddset(&one, sig)
        pthread_sigmask(SIG_UNBLOCK, &one, nil)
        raise(sig)
    }

    static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.handled { sigaddset(&set, s) }
        return set
    }
}
