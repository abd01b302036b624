import Foundation
import GRDB
import Synchronization

/// SQL statements run by every store of this process, by text, counted when `COURIER_STORE_STATEMENTS` is set in the
/// environment (a profiling aid: how many statements a received packet costs, and which). The table is written to
/// standard error when the process exits, most run first.
enum StatementCount {
    static let enabled = ProcessInfo.processInfo.environment["COURIER_STORE_STATEMENTS"] != nil
    static let counts = Mutex([String: Int]())
    static let registered: Void = {
        atexit {
            let all = StatementCount.counts.withLock { $0 }
            var text = "store statements: \(all.values.reduce(0, +)) in all\n"
            for (sql, n) in all.sorted(by: { $0.value > $1.value }) {
                text += "\(n)\t\(sql.replacingOccurrences(of: "\n", with: " "))\n"
            }
            FileHandle.standardError.write(Data(text.utf8))
        }
    }()

    /// Counts `db`'s statements from now on (when enabled).
    static func install(_ db: Database) {
        guard Self.enabled else { return }
        _ = Self.registered
        db.trace(options: .statement) { event in
            guard case .statement(let s) = event else { return }
            let sql = s.sql
            // A trigger's statements are traced too, as comments: counted apart.
            Self.counts.withLock { $0[sql, default: 0] += 1 }
        }
    }
}
