import CourierStore
import CourierTestSupport
import CourierTooling
import CourierWire
import Foundation
import GRDBSQLite
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bad files and bad disks give typed errors that say what to do, and damage nothing already stored.
@Suite(.serialized) struct ErrorTests {
    @Test func aFileThatIsNotADatabase() throws {
        let path = S.tempDir() + "/garbage.db"
        let junk = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 131) })
        try junk.write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: StoreError.self) { try Store(path: path) }
        guard case .corrupt = e else { Issue.record("expected corrupt, got \(String(describing: e))"); return }
        #expect(e!.description.contains("move the file aside"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == junk)
    }

    @Test func damagedPages() throws {
        let path = S.tempDir() + "/damaged.db"
        do {
            let store = try S.store(path: path)
            for i in 0..<300 { try store.insert(try S.bundle(.minutes, seq: UInt32(i), size: 400), now: S.now, local: true, custody: true) }
        }
        // Fold the WAL into the main file, then scribble over the middle of it.
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nil, nil, nil)
        sqlite3_close(db)
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let size = try h.seekToEnd()
        try h.seek(toOffset: size / 2)
        h.write(Data(repeating: 0x5A, count: 20_000))
        try h.close()
        let e = #expect(throws: StoreError.self) { try Store(path: path) }
        if case .corrupt = e {} else { Issue.record("expected corrupt, got \(String(describing: e))") }
    }

    @Test func aSchemaFromANewerCourier() throws {
        let path = S.tempDir() + "/newer.db"
        do { try S.store(path: path).insert(try S.bundle(seq: 1), now: S.now, local: true, custody: true) }
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        sqlite3_exec(db, "PRAGMA user_version = 99", nil, nil, nil)
        sqlite3_close(db)
        let e = #expect(throws: StoreError.self) { try Store(path: path) }
        #expect(e == .newerSchema(path: path, found: 99, supported: Store.schemaVersion))
        #expect(e!.description.contains("upgrade Courier"))
        // Untouched: still the newer schema, still sound, still holding its bundle.
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil)
        defer { sqlite3_close(db) }
        func one(_ sql: String) -> String {
            var st: OpaquePointer?
            sqlite3_prepare_v2(db, sql, -1, &st, nil)
            defer { sqlite3_finalize(st) }
            guard sqlite3_step(st) == SQLITE_ROW, let c = sqlite3_column_text(st, 0) else { return "" }
            return String(cString: c)
        }
        #expect(one("PRAGMA user_version") == "99")
        #expect(one("PRAGMA integrity_check") == "ok")
        #expect(one("SELECT count(*) FROM bundle") == "1")
    }

    /// Real read-only and full file systems: a small tmpfs mounted for the test (needs root, as in CI).
    static func mountTmpfs(size: String) -> String? {
        guard getuid() == 0 else { return nil }
        let dir = S.tempDir()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir]
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        return p.terminationStatus == 0 ? dir : nil
    }

    /// Whether this machine lets the test mount a tmpfs (root in CI; a container may still refuse).
    static let canMount: Bool = {
        guard let dir = mountTmpfs(size: "64k") else { return false }
        run(["umount", dir])
        return true
    }()

    static func run(_ args: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/" + args[0])
        p.arguments = Array(args.dropFirst())
        try? p.run()
        p.waitUntilExit()
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root): full-disk test skipped"))
    func aFullDiskKeepsWhatWasStored() throws {
        guard let dir = Self.mountTmpfs(size: "2m") else { Issue.record("could not mount a tmpfs"); return }
        defer { Self.run(["umount", dir]) }
        let path = dir + "/full.db"
        var stored: [BundleID] = []
        var failure: StoreError? = nil
        do {
            let store = try S.store(path: path)
            for i in 0..<2_000 {
                let b = try S.bundle(.minutes, seq: UInt32(i), size: 1_000)
                do { try store.insert(b, now: S.now, local: true, custody: true); stored.append(b.id) } catch {
                    failure = error
                    break
                }
            }
        }
        guard case .diskFull = failure else { Issue.record("expected diskFull, got \(String(describing: failure))"); return }
        #expect(failure!.description.contains("free some space"))
        #expect(stored.count > 10)
        // Free space, reopen: everything acknowledged before the failure is there and the file is sound.
        Self.run(["mount", "-o", "remount,size=4m", dir])
        let store = try Store(path: path)
        #expect(try store.integrityCheck() == "ok")
        for id in stored { #expect(try store.bundle(id) != nil) }
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root): read-only disk test skipped"))
    func aReadOnlyDisk() throws {
        guard let dir = Self.mountTmpfs(size: "4m") else { Issue.record("could not mount a tmpfs"); return }
        defer { Self.run(["umount", dir]) }
        let path = dir + "/ro.db"
        let b = try S.bundle(seq: 1)
        do { try S.store(path: path).insert(b, now: S.now, local: true, custody: true) }
        Self.run(["mount", "-o", "remount,ro", dir])
        let e = #expect(throws: StoreError.self) { try Store(path: path) }
        #expect(e == .readOnly(path: path))
        #expect(e!.description.contains("read-only"))
        Self.run(["mount", "-o", "remount,rw", dir])
        #expect(try Store(path: path).bundle(b.id) != nil)
    }

    /// The card fails under an open store (ext4 `errors=remount-ro`: the kernel aborts the journal; what was not
    /// synced is gone). Everything a store method returned from is on the card after `fsck`: commits are synced
    /// (`synchronous = FULL`; GRDB had set NORMAL when it turned on WAL, and the last insert before the failure was
    /// lost). The next write says read-only, not "SQLite error 10".
    @Test(.enabled(if: Ext4Card.available, "needs root, a loop device and e2fsprogs: failing-card test skipped"))
    func whatWasCommittedSurvivesTheCardFailing() throws {
        let card = try #require(Ext4Card(), "could not make an ext4 card")
        defer { card.remove() }
        let path = card.dir + "/courier.db"
        let stored = try (1...5).map { try S.bundle(.minutes, seq: UInt32($0), size: 500) }
        do {
            let store = try S.store(path: path)
            for b in stored { try store.insert(b, now: S.now, local: true, custody: true) }
            try card.fail()
            let e = #expect(throws: StoreError.self) { try store.insert(try S.bundle(.minutes, seq: 9, size: 500), now: S.now, local: true, custody: true) }
            #expect(e == .readOnly(path: path), "\(String(describing: e))")
        }
        #expect(card.checkAndMountAgain() == nil)
        let store = try Store(path: path)
        #expect(try store.integrityCheck() == "ok")
        for b in stored { #expect(try store.bundle(b.id) != nil, "bundle \(b.id) committed before the card failed is gone") }
    }

    @Test func aMissingFolder() throws {
        let e = #expect(throws: StoreError.self) { try Store(path: "/nonexistent-courier-dir/x.db") }
        #expect(e != nil)
    }
}
