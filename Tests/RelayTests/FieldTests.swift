import CourierLinks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A new operator's first day, as the field runs it (session 15): what an operator meets on a relay box, each
/// tried with the real `relay` process, relays made with `init`/`invite`/`init --join`, stopped with SIGTERM.
@Suite(.serialized, .timeLimit(.minutes(20))) struct FieldTests {
    /// The relay box's disk filled up (logs, a full SD card) while the relay was stopped (systemd stopped it; a
    /// `relay run` started then waits for space: `relayRunOnAFullDiskWaitsForSpaceThenStartsByItself`), and the operator looks: `relay status`, `queue list`, `inbox`, `outbox` show
    /// what waits (README: they "still read a full disk"), and `relay send` says "disk full" (exit 74), not
    /// "SQLite error 10: disk I/O error" (on main all five said that: SQLite cannot size the shared-memory file of
    /// a database no process has open). The same when the card was remounted read-only (ext4 `errors=remount-ro`).
    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): full-disk test skipped"))
    func aStoppedRelayOnAFullOrReadOnlyDiskStillShowsWhatWaits() throws {
        let disk = try #require(SafetyTests.mountTmpfs(size: "4m"), "could not mount a tmpfs")
        defer { SafetyTests.system(["/bin/umount", "-l", disk]) }
        let dir = disk + "/village"
        #expect(try R.run(["init", "--data-dir", dir, "--name", "village"]).0 == 0)
        let relay = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: R.tempDir() + "/run.log")
        let (rc, out, err) = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "alert", "The river is rising"])
        #expect(rc == 0, "\(err)")
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try R.wait(60) { try R.run(["status", "--data-dir", dir]).1.contains("running (pid") }, "the relay never ran")
        R.stop(relay)
        // The operator checks it stopped; the last process to close the database removes its shared-memory file.
        #expect(try R.run(["status", "--data-dir", dir]).0 == 3)
        #expect(!FileManager.default.fileExists(atPath: dir + "/courier.db-shm"))

        // The disk fills up.
        SafetyTests.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"])
        self.expectReadable(dir, id, "full disk")
        let (sendRC, _, sendErr) = try R.run(["send", "--data-dir", dir, "--everyone", "another"])
        #expect(sendRC == 74 && sendErr.hasPrefix("relay: disk full while writing") && sendErr.split(separator: "\n").count == 1,
                "send on a full disk: exit \(sendRC): \(sendErr)")

        // Space is freed, then the card is remounted read-only.
        #expect(unlink(disk + "/filler") == 0)
        #expect(SafetyTests.system(["/bin/mount", "-o", "remount,ro", disk]) == 0)
        self.expectReadable(dir, id, "read-only disk")
        let (roRC, _, roErr) = try R.run(["send", "--data-dir", dir, "--everyone", "another"])
        #expect(roRC == 74 && roErr.contains("mounted read-only"), "send on a read-only disk: exit \(roRC): \(roErr)")
    }

    /// The same link pasted twice into relay.conf (or given twice with --link) crashed `relay run` at start with a
    /// Swift stack trace ("Fatal error: Duplicate values for key"), and under systemd it would crash again at every
    /// restart. Now: one line naming the line of relay.conf (exit 78) or the flag (exit 64); two links on one port
    /// (serial: and kiss: on the same device) likewise; and a reload (SIGHUP) that finds the pasted line keeps the
    /// running settings and says why.
    @Test func aLinkGivenTwiceIsOneLineNotACrash() throws {
        let dir = try R.federation(["village"])[0]
        let conf = dir + "/relay.conf"
        let lines = R.text(conf).split(separator: "\n", omittingEmptySubsequences: false).count - 1
        try (R.text(conf) + "link = tcp:127.0.0.1:4040\nlink = tcp:127.0.0.1:4040\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc, _, err) = try R.runWithin(120, ["run", "--data-dir", dir])
        #expect(rc == 78 && err == "relay: \(conf) line \(lines + 2): link = tcp:127.0.0.1:4040 is given twice (first at line \(lines + 1)): keep one\n",
                "exit \(rc.map(String.init) ?? "none: still running"): \(err.prefix(500))")

        let original = R.text(conf).split(separator: "\n", omittingEmptySubsequences: false).prefix(lines).joined(separator: "\n") + "\n"
        try original.write(toFile: conf, atomically: true, encoding: .utf8)
        let flags: [([String], String)] = [
            (["--link", "tcp-listen:127.0.0.1:0", "--link", "tcp-listen:127.0.0.1:0"], "relay: --link tcp-listen:127.0.0.1:0 is given twice: keep one\n"),
            (["--link", "serial:\(dir)/tty:9600", "--link", "kiss:\(dir)/tty:9600", "--i-know-this-is-not-amateur"],
             "relay: --link kiss:\(dir)/tty:9600 opens the same port as --link serial:\(dir)/tty:9600: a port carries one link; keep one\n"),
        ]
        for (args, said) in flags {
            let (rc, _, err) = try R.runWithin(120, ["run", "--data-dir", dir] + args)
            #expect(rc == 64 && err == said, "relay run \(args.joined(separator: " ")): exit \(rc.map(String.init) ?? "none"): \(err.prefix(500))")
        }

        // A running relay (one link in relay.conf) is told to reload after the line was pasted twice.
        try (original + "link = tcp-listen:127.0.0.1:0\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let log = R.tempDir() + "/run.log"
        let relay = try R.start(["run", "--data-dir", dir], log: log)
        #expect(R.wait(60) { R.text(log).contains("relay running") }, "\(R.text(log))")
        try (original + "link = tcp-listen:127.0.0.1:0\nlink = tcp-listen:127.0.0.1:0\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(relay.processIdentifier, SIGHUP)
        #expect(R.wait(60) { R.text(log).contains("reload refused, the running settings are kept: \(conf) line \(lines + 2): link = tcp-listen:127.0.0.1:0 is given twice") },
                "\(R.text(log))")
        #expect(relay.isRunning)
        R.stop(relay)
    }

    /// The package's data directory belongs to `courier`; a new operator types `sudo relay init --data-dir
    /// /var/lib/courier` (not `sudo -u courier relay ...`). On main that made identity.json, network.json and
    /// courier.db root's, and the service then stopped at once with exit 78, "network.json is missing or damaged:
    /// join the federation again" (and `sudo relay send` later made counters.json root's, with the same end). Now root
    /// is refused in another user's data directory, one line saying as whom to run it (exit 77), nothing written;
    /// and a user who cannot enter it is told whose it is, not that it is no data directory.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root and setpriv (to act as the relay's user): test skipped"))
    func rootInTheRelayUsersDataDirectoryIsToldToRunAsThatUser() throws {
        // /var/lib/courier as the package makes it: mode 0750, the service user's (here `nobody`, 65534).
        let dir = R.tempDir() + "/courier"
        #expect(mkdir(dir, 0o750) == 0 && chown(dir, 65_534, 65_534) == 0)
        let owner = Self.userName(65_534)
        func asRelayUser(_ args: [String]) throws -> (Int32, String, String) {
            try R.exec("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", R.binary] + args)
        }
        let refusal = "relay: \(dir) belongs to the user \(owner), and root would leave files there that \(owner)'s relay cannot read: run the command as \(owner) (`sudo -u \(owner) relay ...`); nothing was changed\n"
        let (rc, _, err) = try R.run(["init", "--data-dir", dir, "--name", "village"])
        #expect(rc == 77 && err == refusal, "sudo relay init: exit \(rc): \(err)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir)) == [], "root's init left files")

        // As the operator should: the relay's user makes it, then root tries to send and to look.
        let (initRC, _, initErr) = try asRelayUser(["init", "--data-dir", dir, "--name", "village"])
        #expect(initRC == 0, "\(initErr)")
        for args in [["send", "--everyone", "water at the school"], ["status"], ["run", "--link", "tcp-listen:127.0.0.1:0"]] {
            let (rc, _, err) = try R.run(args + ["--data-dir", dir], deadline: 60)
            #expect(rc == 77 && err == refusal, "sudo relay \(args[0]): exit \(rc): \(err)")
        }
        // Everything in the directory is still the relay user's, and it works as that user.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        let rootOwned = files.filter { (try? FileManager.default.attributesOfItem(atPath: dir + "/" + $0)[.ownerAccountID] as? Int) != 65_534 }
        #expect(rootOwned.isEmpty, "not the relay user's: \(rootOwned)")
        let (sendRC, _, sendErr) = try asRelayUser(["send", "--data-dir", dir, "--everyone", "water at the school"])
        #expect(sendRC == 0, "\(sendErr)")
        #expect(try asRelayUser(["status", "--data-dir", dir]).0 == 3)

        // Another user (not root) who cannot enter the 0750 directory.
        let (otherRC, _, otherErr) = try R.exec("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", R.binary, "status", "--data-dir", dir])
        #expect(otherRC == 77 && otherErr.contains("belongs to the user \(owner)") && otherErr.contains("sudo -u \(owner) relay"), "exit \(otherRC): \(otherErr)")
    }

    /// An operator on amateur bands (no encryption allowed) joins with `relay init --join CODE --open`, the code
    /// being a sealed federation's: on main the relay joined sealed and said nothing (its callsign was then refused
    /// at `relay run`, far from the mistake). Now the join is refused, one line, nothing made; `--open` with an open
    /// federation's code is what the operator meant and joins.
    @Test func joiningASealedFederationWithOpenIsRefused() throws {
        let sealed = try R.federation(["village"])[0]
        let open = try R.federation(["ham"], open: true)[0]
        let code = { (dir: String) in try R.run(["invite", "--data-dir", dir]).1.trimmingCharacters(in: .whitespacesAndNewlines) }
        let root = R.tempDir()
        let (rc, out, err) = try R.run(["init", "--data-dir", root + "/ridge", "--name", "ridge", "--join", try code(sealed), "--open"])
        #expect(rc == 64 && err.hasPrefix("relay: --open makes a new federation; this join code is of a sealed") && err.split(separator: "\n").count == 1,
                "exit \(rc): \(out) \(err)")
        #expect(!FileManager.default.fileExists(atPath: root + "/ridge/identity.json"))
        let (okRC, okOut, okErr) = try R.run(["init", "--data-dir", root + "/ridge", "--name", "ridge", "--join", try code(open), "--open", "--json"])
        #expect(okRC == 0, "\(okErr)")
        let made = try JSONSerialization.jsonObject(with: Data(okOut.utf8)) as? [String: Any]
        #expect(made?["open"] as? Bool == true, "\(okOut)")
    }

    /// `relay run --link tcp-listen:HOST:PORT` on a port another program listens on said "in use by another program
    /// (ModemManager, a terminal, another relay)", and as the relay's user on a port below 1024 "permission denied;
    /// add the user to the 'dialout' group": a serial port's advice. Now each says what a listening address needs.
    @Test func aListeningLinkOnATakenOrPrivilegedPortSaysWhatToDo() throws {
        let dir = try R.federation(["village"])[0]
        // Another program holds a port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0 && listen(fd, 1) == 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let (rc, _, err) = try R.runWithin(120, ["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:\(port)"])
        #expect(rc == 69 && err == "relay: cannot listen on 127.0.0.1:\(port): the port is in use by another program (another relay? `ss -ltnp 'sport = :\(port)'` names it); stop it or give this link another port\n",
                "exit \(rc.map(String.init) ?? "none"): \(err)")

        // The relay's own user (not root) on port 80.
        // (A container may let every user bind low ports: net.ipv4.ip_unprivileged_port_start.)
        let lowest = Int(R.text("/proc/sys/net/ipv4/ip_unprivileged_port_start").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1_024
        guard getuid() == 0, lowest > 80, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
        let own = R.tempDir() + "/courier"
        #expect(mkdir(own, 0o750) == 0 && chown(own, 65_534, 65_534) == 0)
        let asUser = ["--reuid=65534", "--regid=65534", "--clear-groups", R.binary]
        #expect(try R.exec("/usr/bin/setpriv", asUser + ["init", "--data-dir", own, "--name", "ridge"]).0 == 0)
        let (lowRC, _, lowErr) = try R.exec("/usr/bin/setpriv", asUser + ["run", "--data-dir", own, "--link", "tcp-listen:127.0.0.1:80"], deadline: 120)
        #expect(lowRC == 69 && lowErr == "relay: cannot listen on 127.0.0.1:80: ports below 1024 need root; give this link a port from 1024 up (e.g. 4040)\n",
                "exit \(lowRC): \(lowErr)")
    }

    /// The second relay's operator ran `relay init` where `relay init --join CODE` was meant (or joined with another
    /// federation's code): the relays on one cable never hear each other. On main `relay status` showed only "2
    /// failed authentication" among its counters: the warning "another federation on this channel, or a different
    /// network key?" needs five refused packets in a minute, and neighbours of another federation send a few a
    /// quarter of an hour. Now a link where every packet failed authentication and no neighbour was ever heard
    /// says so, in `relay status` and once in the log.
    @Test func relaysOfTwoFederationsOnOneCableSayWhy() throws {
        let village = try R.federation(["village"])[0]
        let ridge = try R.federation(["ridge"])[0]
        let cable = try VirtualCable()
        defer { cable.stop() }
        let ra = try R.start(["run", "--data-dir", village, "--link", "serial:\(cable.pathA):115200"], log: village + "/run.log")
        let rb = try R.start(["run", "--data-dir", ridge, "--link", "serial:\(cable.pathB):115200"], log: ridge + "/run.log")
        defer { R.stop(ra); R.stop(rb) }
        var last = ""
        let warned = try R.wait(120) {
            last = try R.run(["status", "--data-dir", ridge]).1
            return last.contains("WARNING: ") && last.contains("another federation on this channel, or a different network key")
        }
        #expect(warned, "ridge's status: \(last)\nlog: \(R.text(ridge + "/run.log").suffix(2_000))")
        #expect(!last.contains("\n  neighbour "), "no neighbour line: \(last)")
        #expect(R.count("another federation on this channel", in: R.text(ridge + "/run.log")) == 1, "\(R.text(ridge + "/run.log").suffix(2_000))")
    }

    /// `relay send --file minutes.txt` with a mistyped path said "cannot read minutes.txt", not why; now it says
    /// whether the file is missing or unreadable, and that nothing was queued (exit 66, as before).
    @Test func sendWithAMissingFileSaysWhy() throws {
        let dir = try R.federation(["village"])[0]
        let missing = R.tempDir() + "/minutes.txt"
        let (rc, out, err) = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "minutes", "--file", missing])
        #expect(rc == 66 && out.isEmpty && err == "relay: cannot read \(missing) (no such file): check the path given to --file; nothing was queued\n",
                "exit \(rc): \(err)")
        #expect(try R.run(["queue", "list", "--data-dir", dir]).1.contains("queue empty"))
    }

    static func userName(_ uid: uid_t) -> String {
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    /// `status` (exit 3: not running), `queue list --json`, `inbox`, `outbox` on `dir`: each shows the queued `id`.
    func expectReadable(_ dir: String, _ id: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let runs: [([String], Int32)] = [(["status"], 3), (["queue", "list", "--json"], 0), (["inbox"], 0), (["outbox"], 0)]
        for (args, code) in runs {
            let rc: Int32, out: String, err: String
            do { (rc, out, err) = try R.run(args + ["--data-dir", dir]) } catch {
                Issue.record("\(what): relay \(args.joined(separator: " ")) could not be run: \(error)", sourceLocation: sourceLocation)
                continue
            }
            #expect(rc == code && err.isEmpty, "\(what): relay \(args.joined(separator: " ")): exit \(rc): \(err)", sourceLocation: sourceLocation)
            let shows = args == ["status"] ? out.contains("not running") && out.contains("queue: ") : out.contains(args == ["inbox"] ? "The river is rising" : id)
            #expect(shows, "\(what): relay \(args.joined(separator: " ")) printed: \(out)", sourceLocation: sourceLocation)
        }
    }
}
