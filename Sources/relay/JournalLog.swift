import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Log lines for systemd's journal: when the relay runs as a service (systemd sets `JOURNAL_STREAM` to the
/// device:inode of the stderr it connected to the journal, and `INVOCATION_ID` for every unit), each line starts
/// with a syslog priority the journal understands (`<4>` warning, `<5>` notice, `<6>` info, `<7>` debug; see
/// sd-daemon(3)) and carries no timestamp of its own: the journal stamps every line. Elsewhere the lines are
/// swift-log's usual ones, timestamp first.
struct JournalLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = self.metadata
        if let p = self.metadataProvider?.get() { all.merge(p) { $1 } }
        if let m = event.metadata { all.merge(m) { $1 } }
        let meta = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "<\(Self.priority(event.level))>\(event.level) \(event.message)\(meta.isEmpty ? "" : " " + meta)\n"
        // One write(2) per line, so lines from several threads do not interleave.
        _ = line.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// Whether stderr goes to the journal: `JOURNAL_STREAM` names the stream systemd connected (checked against
    /// stderr itself, as sd-daemon(3) asks, so a service that redirects stderr to a file keeps timestamps), or
    /// `INVOCATION_ID` says systemd runs this process with its default output, the journal.
    static var underSystemd: Bool {
        let env = ProcessInfo.processInfo.environment
        if let js = env["JOURNAL_STREAM"], !js.isEmpty {
            let parts = js.split(separator: ":")
            var st = stat()
            if parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]), fstat(STDERR_FILENO, &st) == 0 {
                return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
            }
            return false
        }
        return !(env["INVOCATION_ID"] ?? "").isEmpty
    }

    /// Chooses the log format once for the process (before any logger is made).
    static func bootstrap() {
        if self.underSystemd {
            LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
        } else {
            LoggingSystem.bootstrap(StreamLogHandler.standardError)
        }
    }
}
