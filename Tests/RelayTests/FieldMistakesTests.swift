import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A new operator's first day, continued (session 16): the mistakes session 15 saw and left, each with the real
/// `relay` process: one line naming what is wrong and what to do, the exit code of the README's table, nothing
/// queued changed.
extension FieldTests {
    /// Letters and digits that zstd cannot shrink much: a message of `n` of them stays near `n` * 0.75 bytes.
    static func noise(_ n: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
        return String((0..<n).map { _ in letters.randomElement()! })
    }

    /// Whether `err` is exactly one line starting with `prefix`.
    static func oneLine(_ err: String, _ prefix: String) -> Bool {
        err.hasPrefix(prefix) && err.hasSuffix("\n") && err.split(separator: "\n").count == 1
    }

    /// A full queue (quota-mb = 1, filled with this relay's own alerts) said "only bundles of higher priority
    /// remain" (the alerts it could not push out were of the same priority) and exited 74, "database error". Now:
    /// what the message needs, what holds the queue (this relay's own messages are in its custody: never pushed out
    /// for one of the same priority), what to do, exit 75 (temporary); nothing queued changed, and once one of its
    /// own is cancelled the same message is taken.
    @Test func aFullQueueSaysWhatHoldsItAndExitsTemporary() throws {
        let dir = try R.federation(["village"])[0]
        try (R.text(dir + "/relay.conf") + "\nquota-mb = 1\n").write(toFile: dir + "/relay.conf", atomically: true, encoding: .utf8)
        var queued: [String] = []
        var refused: (Int32, String)? = nil
        let alert = ["send", "--data-dir", dir, "--everyone", "--kind", "alert"]
        var text = ""
        for i in 0..<40 {
            text = "alert \(i) " + Self.noise(62_000)
            let before = try R.queuedIDs(dir)
            let (rc, out, err) = try R.run(alert + [text])
            if rc != 0 {
                refused = (rc, err)
                #expect(try R.queuedIDs(dir) == before, "the refused message changed the queue")
                break
            }
            queued.append(out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let (rc, err) = try #require(refused, "40 alerts of ~45 KB fitted in a 1 MB queue: the quota is not applied")
        #expect(rc == 75 && Self.oneLine(err, "relay: queue full: this urgent-priority message needs ")
                && err.contains("the queue's 1 MB (quota-mb in relay.conf)") && err.contains("urgent messages in this relay's custody: its own")
                && err.contains("nothing was queued and nothing was dropped") && err.contains("`relay queue cancel ID`")
                && !err.contains("higher priority"), "exit \(rc): \(err)")
        #expect(try R.queuedIDs(dir) == Set(queued), "queued alerts lost")
        // What the line says to do works: one of this relay's own cancelled, the same alert is taken.
        #expect(try R.run(["queue", "cancel", "--data-dir", dir, queued[0]]).0 == 0)
        let (againRC, _, againErr) = try R.run(alert + [text])
        #expect(againRC == 0, "\(againErr)")
    }

    /// A relay "village" made by `relay init` on `disk`, with one alert of its own queued: its data directory and the
    /// alert's id.
    static func villageWithAnAlert(on disk: String) throws -> (dir: String, id: String) {
        let dir = disk + "/village"
        #expect(try R.run(["init", "--data-dir", dir, "--name", "village"]).0 == 0)
        let (sendRC, out, sendErr) = try R.run(["send", "--data-dir", dir, "--everyone", "--kind", "alert", "The river is rising"])
        #expect(sendRC == 0, "\(sendErr)")
        return (dir, out.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `relay run` on a relay box whose disk filled up while the relay was stopped exited 73 ("cannot write
    /// relay.lock: No space left on device"), and the packaged unit restarted it every 5 s. Now it starts, says once
    /// that it waits for space (naming the disk and its free space), `relay status` says so, a stop (SIGTERM) while
    /// it waits exits 0, and once space is freed it starts by itself; nothing queued was lost.
    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): full-disk test skipped"))
    func relayRunOnAFullDiskWaitsForSpaceThenStartsByItself() throws {
        let disk = try #require(SafetyTests.mountTmpfs(size: "4m"), "could not mount a tmpfs")
        defer { SafetyTests.system(["/bin/umount", "-l", disk]) }
        let (dir, id) = try Self.villageWithAnAlert(on: disk)
        SafetyTests.system(["/bin/dd", "if=/dev/zero", "of=\(disk)/filler", "bs=64k"])
        // A new relay cannot be made there: one line naming the disk, nothing left behind.
        let (initRC, _, initErr) = try R.run(["init", "--data-dir", disk + "/ridge", "--name", "ridge"])
        #expect(initRC == 73 && Self.oneLine(initErr, "relay: cannot write in \(disk)/ridge: the disk is full (")
                && initErr.contains("free of 4 MB on tmpfs (\(disk))") && initErr.contains("nothing was made"), "exit \(initRC): \(initErr)")
        #expect(!FileManager.default.fileExists(atPath: disk + "/ridge/identity.json"))

        // Stopped while it waits: exit 0, as a service manager expects.
        let log1 = R.tempDir() + "/run1.log"
        let waiting = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log1)
        #expect(R.wait(60) { R.text(log1).contains("storage failed at start: disk full while writing \(dir)/courier.db") },
                "exit \(waiting.isRunning ? "none" : String(waiting.terminationStatus)): \(R.text(log1))")
        #expect(R.text(log1).contains("KB free of 4 MB on tmpfs (\(disk))") && R.text(log1).contains("the relay starts by itself once space is freed"),
                "\(R.text(log1))")
        // The waiting relay's pid (relay.lock could not be written: /proc/locks names it) and what it waits for.
        let (stRC, st, _) = try R.run(["status", "--data-dir", dir])
        #expect(stRC == 0 && st.contains(": running (pid \(waiting.processIdentifier)), waiting for space on the disk,")
                && st.contains("(starting: waiting for space on the disk,") && st.contains("queue: 1 bundles"), "exit \(stRC): \(st)")
        let stJSON = try JSONSerialization.jsonObject(with: Data(try R.run(["status", "--data-dir", dir, "--json"]).1.utf8)) as? [String: Any]
        #expect(stJSON?["pid"] as? Int == Int(waiting.processIdentifier) && stJSON?["state"] as? String == "waiting for space on the disk",
                "\(String(describing: stJSON))")
        #expect(waiting.isRunning, "\(R.text(log1))")
        R.stop(waiting)
        #expect(R.text(log1).contains("stopped while waiting for space on the disk"), "\(R.text(log1))")

        // Started again on the full disk; space is freed while it waits: it starts by itself.
        let log2 = R.tempDir() + "/run2.log"
        let relay = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log2)
        #expect(R.wait(60) { R.text(log2).contains("storage failed at start: disk full") }, "\(R.text(log2))")
        #expect(unlink(disk + "/filler") == 0)
        #expect(R.wait(60) { R.text(log2).contains("relay running") }, "\(R.text(log2))")
        #expect(R.text(log2).contains("storage works again after") && R.text(log2).contains("nothing queued was lost"), "\(R.text(log2))")
        #expect(R.wait(60) { (try? R.run(["status", "--data-dir", dir]).1.contains("running (pid \(relay.processIdentifier))")) == true },
                "relay.lock never named the relay")
        #expect(try R.queuedIDs(dir).contains(id), "the queued alert was lost")
        R.stop(relay)
    }

    /// An SD card the kernel remounted read-only (ext4 does so after write errors) before `relay run` started:
    /// `relay run` exited 73 ("cannot create relay.lock: Read-only file system"), and the packaged unit restarted it
    /// every 5 s. Now it holds the data directory, says once which mount is read-only and what to do, `relay status`
    /// names its pid and what it waits for, `status`, `inbox` and `queue` still read what is there, a stop while it
    /// waits exits 0, and once the disk is writable again it starts by itself; nothing queued was lost.
    @Test(.enabled(if: SafetyTests.canMount, "needs to mount a tmpfs (root): read-only disk test skipped"))
    func relayRunOnAReadOnlyDiskWaitsUntilItCanWriteThenStartsByItself() throws {
        let disk = try #require(SafetyTests.mountTmpfs(size: "4m"), "could not mount a tmpfs")
        defer { SafetyTests.system(["/bin/umount", "-l", disk]) }
        let (dir, id) = try Self.villageWithAnAlert(on: disk)
        #expect(SafetyTests.system(["/bin/mount", "-o", "remount,ro", disk]) == 0, "could not remount \(disk) read-only")
        let mountLine = "tmpfs (\(disk), tmpfs) is mounted read-only"

        // Stopped while it waits: exit 0, as a service manager expects.
        let log1 = R.tempDir() + "/run1.log"
        let waiting = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log1)
        #expect(R.wait(60) { R.text(log1).contains("storage failed at start: cannot write \(dir): \(mountLine)") },
                "exit \(waiting.isRunning ? "none" : String(waiting.terminationStatus)): \(R.text(log1))")
        #expect(R.text(log1).contains("`mount -o remount,rw \(disk)` once it is checked, or replace the card")
                && R.text(log1).contains("queued messages are safe; the relay starts by itself once the disk is writable"), "\(R.text(log1))")
        #expect(R.count("storage failed at start", in: R.text(log1)) == 1, "\(R.text(log1))")
        let (stRC, st, _) = try R.run(["status", "--data-dir", dir])
        #expect(stRC == 0 && st.contains(": running (pid \(waiting.processIdentifier)), waiting for the disk to be writable,")
                && st.contains("(starting: waiting for the disk to be writable: \(mountLine)") && st.contains("queue: 1 bundles"), "exit \(stRC): \(st)")
        // The reading commands still read the store on the read-only disk.
        let (qRC, q, qErr) = try R.run(["queue", "list", "--data-dir", dir])
        #expect(qRC == 0 && q.contains(id) && q.contains("waits: the relay is waiting for the disk to be writable (`relay status` says why)"),
                "exit \(qRC): \(q) \(qErr)")
        let (iRC, inbox, iErr) = try R.run(["inbox", "--data-dir", dir])
        #expect(iRC == 0 && inbox.contains("The river is rising"), "exit \(iRC): \(inbox) \(iErr)")
        #expect(waiting.isRunning, "\(R.text(log1))")
        R.stop(waiting)
        #expect(R.text(log1).contains("stopped while waiting for the disk to be writable"), "\(R.text(log1))")

        // Started again on the read-only disk; it is remounted read-write while it waits: it starts by itself.
        let log2 = R.tempDir() + "/run2.log"
        let relay = try R.start(["run", "--data-dir", dir, "--link", "tcp-listen:127.0.0.1:0"], log: log2)
        #expect(R.wait(60) { R.text(log2).contains("storage failed at start: cannot write \(dir): \(mountLine)") }, "\(R.text(log2))")
        #expect(SafetyTests.system(["/bin/mount", "-o", "remount,rw", disk]) == 0, "could not remount \(disk) read-write")
        #expect(R.wait(60) { R.text(log2).contains("relay running") }, "\(R.text(log2))")
        #expect(R.text(log2).contains("storage works again after") && R.text(log2).contains("of a read-only disk at start")
                && R.text(log2).contains("nothing queued was lost"), "\(R.text(log2))")
        #expect(R.wait(60) { (try? R.run(["status", "--data-dir", dir]).1.contains("running (pid \(relay.processIdentifier)), sealed federation")) == true },
                "the started relay's status never came")
        #expect(R.text(dir + "/relay.lock").hasPrefix("\(relay.processIdentifier)\n"), "relay.lock never named the relay: \(R.text(dir + "/relay.lock"))")
        #expect(try R.queuedIDs(dir).contains(id), "the queued alert was lost")
        R.stop(relay)
    }

    /// A raised quota-mb in relay.conf reached a running relay only after a restart (it kept refusing and evicting
    /// at the old quota). Now SIGHUP (`systemctl reload relay`) applies it: one log line, `relay status` shows the
    /// quota in force (and, until the reload, that relay.conf says another), and what the relay receives from then on
    /// is held under the new quota.
    @Test func aRaisedQuotaReachesTheRunningRelayOnReload() throws {
        let dirs = try R.federation(["village", "ridge"])
        let (village, ridge) = (dirs[0], dirs[1])
        let conf = village + "/relay.conf"
        let plain = R.text(conf)
        try (plain + "\nquota-mb = 1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let port = try TestBroker.freePort()
        let logV = R.tempDir() + "/village.log"
        let v = try R.start(["run", "--data-dir", village, "--link", "tcp-listen:127.0.0.1:\(port)"], log: logV)
        #expect(R.wait(60) { (try? R.run(["status", "--data-dir", village]).1.contains(" of 1 MB in force\n")) == true }, "\(R.text(logV))")
        func queued() throws -> (bytes: Int, evicted: Int) {
            let o = try JSONSerialization.jsonObject(with: Data(try R.run(["queue", "--data-dir", village, "--json"]).1.utf8)) as? [String: Any]
            return ((o?["bytes"] as? Int) ?? -1, (o?["evicted"] as? Int) ?? -1)
        }
        // 30 floods of ~45 KB from ridge (1.3 MB): village holds 1 MB of them and pushes out the rest.
        func sendFloods(_ n: Int, _ tag: String) throws {
            for i in 0..<n {
                let (rc, _, err) = try R.run(["send", "--data-dir", ridge, "--everyone", "\(tag) \(i) " + Self.noise(62_000)])
                #expect(rc == 0, "\(err)")
            }
        }
        try sendFloods(30, "before")
        let r = try R.start(["run", "--data-dir", ridge, "--link", "tcp:127.0.0.1:\(port)"], log: R.tempDir() + "/ridge.log")
        defer { R.stop(r) }
        let filled = try R.wait(300) { try queued().evicted >= 5 }
        let atOld = try queued()
        #expect(filled && atOld.bytes <= 1_048_576, "village never filled its 1 MB: \(atOld)")

        // Raised in relay.conf: status says the running relay still uses 1 MB, and how to apply it.
        try (plain + "\nquota-mb = 8\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let st = try R.run(["status", "--data-dir", village]).1
        #expect(st.contains(" of 1 MB in force; relay.conf says 8 MB: reload it (systemctl reload relay, or kill -HUP \(v.processIdentifier))"), "\(st)")
        kill(v.processIdentifier, SIGHUP)
        #expect(R.wait(60) { R.text(logV).contains("quota-mb now 8 MB (was 1 MB)") }, "\(R.text(logV))")
        #expect(R.wait(60) { (try? R.run(["status", "--data-dir", village]).1.contains(" of 8 MB in force\n")) == true },
                "\((try? R.run(["status", "--data-dir", village]).1) ?? "")")
        // What it receives now is held under 8 MB: 30 more floods, and village holds more than the old 1 MB.
        let evictedBefore = try queued().evicted
        try sendFloods(30, "after")
        let grew = try R.wait(300) { try queued().bytes > 1_200_000 }
        let atNew = try queued()
        #expect(grew, "village still held no more than its old quota: \(atNew)")
        #expect(atNew.evicted == evictedBefore, "village pushed floods out under an 8 MB quota: \(atNew), \(evictedBefore) before")
        #expect(v.isRunning, "\(R.text(logV))")
        R.stop(v)
    }

    /// `relay peers remove X` of a node not on the trust list said "this relay has not heard X yet ...: add it by
    /// its identity code": advice to add what the operator meant to remove. Now it says X is not on the list and
    /// what is, exit 64, nothing changed.
    @Test func removingANodeNotOnTheTrustListSaysSo() throws {
        let dirs = try R.federation(["village", "ridge"])
        let (village, ridge) = (dirs[0], dirs[1])
        let (rc, _, err) = try R.run(["peers", "remove", "--data-dir", village, "0c0ffee0"])
        #expect(rc == 64 && err == "relay: 0c0ffee0 is not on the trust list, so nothing was changed; the trust list is empty\n", "exit \(rc): \(err)")
        let code = (try JSONSerialization.jsonObject(with: Data(try R.run(["peers", "--data-dir", ridge, "--json"]).1.utf8)) as? [String: Any])?["identityCode"] as? String
        let ridgeID = try R.id(ridge)
        #expect(try R.run(["peers", "add", "--data-dir", village, "--name", "ridge school", try #require(code)]).0 == 0)
        let listed = try R.run(["peers", "--data-dir", village]).1
        for wrong in ["0c0ffee0", try R.id(village)] {
            let (rc, _, err) = try R.run(["peers", "remove", "--data-dir", village, wrong])
            #expect(rc == 64 && err == "relay: \(wrong) is not on the trust list, so nothing was changed; on it: \(ridgeID) (ridge school) (`relay peers` shows them)\n",
                    "exit \(rc): \(err)")
        }
        #expect(try R.run(["peers", "--data-dir", village]).1 == listed, "the trust list changed")
        let (okRC, okOut, okErr) = try R.run(["peers", "remove", "--data-dir", village, ridgeID])
        #expect(okRC == 0 && okOut.contains("removed \(ridgeID) from the trust list"), "\(okErr)")
    }

    /// A command given without its argument (`relay quiet`) printed argument-parser's error, help line, usage and
    /// pointer: four lines. Now one: what to give, exit 64; the same for an unknown option.
    @Test func aMissingArgumentIsOneLine() throws {
        let dir = try R.federation(["village"])[0]
        let (rc, _, err) = try R.run(["quiet", "--data-dir", dir])
        #expect(rc == 64 && err == "relay: quiet needs <state>: on or off (relay quiet on | relay quiet off)\n", "exit \(rc): \(err)")
        let commands: [([String], String)] = [
            (["peers", "add"], "<node>"), (["peers", "remove"], "<node>"), (["pact", "join"], "<name>"), (["drill", "report"], "<id>"),
            (["queue", "cancel"], "<id>"), (["import"], "<file>"), (["export"], "<file>"), (["inbox", "show"], "<id>"), (["rekey", "add"], "<code>"),
        ]
        for (args, what) in commands {
            let (rc, _, err) = try R.run(args + ["--data-dir", dir])
            #expect(rc == 64 && Self.oneLine(err, "relay: \(args.joined(separator: " ")) needs \(what): ") && !err.contains("Usage:"),
                    "relay \(args.joined(separator: " ")): exit \(rc): \(err)")
        }
        let (optRC, _, optErr) = try R.run(["init", "--data-dir", dir + "-new", "--name"])
        #expect(optRC == 64 && optErr == "relay: init: missing value for '--name <name>' (`relay init --help` shows what it takes)\n", "exit \(optRC): \(optErr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "-new"))
        let (typoRC, _, typoErr) = try R.run(["sned", "--everyone", "hello"])
        #expect(typoRC == 64 && Self.oneLine(typoErr, "relay: unknown command 'sned': the commands are init, invite, id, run, send, "), "exit \(typoRC): \(typoErr)")
        // --help still prints the whole usage, exit 0.
        let (helpRC, help, _) = try R.run(["quiet", "--help"])
        #expect(helpRC == 0 && help.contains("USAGE: relay quiet"), "\(help)")
    }

    /// `relay init --name` took 300-character names (the wire carries 32 bytes: others saw them cut) and names
    /// with a newline or an escape sequence (a two-line `relay status`, a log line broken in two). Now each is
    /// refused, one line, exit 64, nothing made; names in Arabic, Sorani and Amharic within 32 bytes work.
    @Test func aNodeNameMustFitTheWireAndOneLine() throws {
        let root = R.tempDir()
        let refused: [(String, String)] = [
            (String(repeating: "Sargalu clinic ", count: 20), "is 300 bytes; a node's name is at most 32 bytes of UTF-8"),
            ("ጤና ጣቢያ ሰሜን ወሎ ዞን", "is 40 bytes; a node's name is at most 32 bytes of UTF-8"),
            ("upper\nvalley", "contains a line break (U+000A): a name is one line of printable text"),
            ("clinic\u{1B}[31m", "contains a control character (U+001B)"),
            ("  ", "is empty: give a name others will recognise"),
        ]
        for (i, (name, said)) in refused.enumerated() {
            let dir = root + "/r\(i)"
            let (rc, _, err) = try R.run(["init", "--data-dir", dir, "--name", name])
            #expect(rc == 64 && Self.oneLine(err, "relay: --name ") && err.contains(said), "\(name.debugDescription): exit \(rc): \(err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/identity.json"))
        }
        for (i, name) in ["عيادة سرگلو", "بنکەی ئاوی گوند", "ጤና ጣቢያ"].enumerated() {
            let dir = root + "/ok\(i)"
            let (rc, _, err) = try R.run(["init", "--data-dir", dir, "--name", name])
            #expect(rc == 0, "\(name): \(err)")
            let status = try R.run(["status", "--data-dir", dir]).1
            #expect(status.split(separator: "\n").first?.contains("(\(name))") == true, "\(status)")
        }
        // A name edited into identity.json by hand (README: "edit the name freely"): the relay runs, and says once
        // what others will see.
        let edited = root + "/ok2"
        var identity = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: edited + "/identity.json"))) as? [String: Any])
        identity["name"] = "ጤና ጣቢያ ሰሜን ወሎ ዞን"
        try JSONSerialization.data(withJSONObject: identity).write(to: URL(fileURLWithPath: edited + "/identity.json"))
        let log = R.tempDir() + "/run.log"
        let relay = try R.start(["run", "--data-dir", edited, "--link", "tcp-listen:127.0.0.1:0"], log: log)
        #expect(R.wait(60) { R.text(log).contains("relay running") }, "\(R.text(log))")
        #expect(R.text(log).contains("\(edited)/identity.json: the name 'ጤና ጣቢያ ሰሜን ወሎ ዞን' is 40 bytes; a node's name is at most 32 bytes"), "\(R.text(log))")
        R.stop(relay)
        // A peer's local name is shown the same way.
        let (rc, _, err) = try R.run(["peers", "add", "--data-dir", root + "/ok0", "--name", "ridge\nschool", "0c0ffee0"])
        #expect(rc == 64 && Self.oneLine(err, "relay: --name 'ridge\\nschool' contains a line break"), "exit \(rc): \(err)")
    }

    /// The rest of the walk: `--data-dir` naming a file, a serial port that is a directory or a plain file, an
    /// empty (or blank) message, and `relay send --everyone` typed at a terminal without the text (it sat waiting
    /// on the keyboard for standard input). Each: one line, what to give; nothing queued.
    @Test func theOtherMistakesOfAFirstDay() throws {
        let dir = try R.federation(["village"])[0]
        let file = dir + "/relay.conf"
        for args in [["status"], ["init", "--name", "village"], ["send", "--everyone", "hello"]] {
            let (rc, _, err) = try R.run(args + ["--data-dir", file])
            #expect(rc == 64 && err == "relay: \(file) is a file, not a directory: give --data-dir the directory that holds identity.json (or, for `relay init`, a new one); nothing was changed\n",
                    "relay \(args[0]): exit \(rc): \(err)")
        }
        let notPorts: [(String, String)] = [(dir, "a directory"), (dir + "/network.json", "a plain file")]
        for (path, what) in notPorts {
            let (rc, _, err) = try R.runWithin(120, ["run", "--data-dir", dir, "--link", "serial:\(path):9600"])
            #expect(rc == 69 && err == "relay: \(path) is \(what), not a serial port: give the device (e.g. /dev/ttyUSB0, or /dev/serial/by-id/...; `relay ports` lists them)\n",
                    "exit \(rc.map(String.init) ?? "none: still running"): \(err)")
        }
        let before = try R.queuedIDs(dir)
        for (text, said) in [("", "empty"), ("   ", "only spaces")] {
            let (rc, _, err) = try R.run(["send", "--data-dir", dir, "--everyone", text])
            #expect(rc == 64 && err == "relay: the message is \(said): give the text to send; nothing was queued\n", "exit \(rc): \(err)")
        }
        // At a terminal (a pseudo-terminal as standard input), the text forgotten.
        let (ttyRC, ttyOut, ttyErr) = try R.exec("/usr/bin/env", ["python3", "-c", """
            import os, pty, sys
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            out = b""
            while True:
                try:
                    d = os.read(fd, 1024)
                except OSError:
                    break
                if not d:
                    break
                out += d
            _, st = os.waitpid(pid, 0)
            sys.stdout.write(out.decode())
            sys.exit(os.waitstatus_to_exitcode(st))
            """, R.binary, "send", "--data-dir", dir, "--everyone"], deadline: 60)
        #expect(ttyRC == 64 && ttyOut == "relay: give the message: relay send --everyone \"TEXT\" (or --file PATH, or - to read it from standard input)\r\n",
                "exit \(ttyRC): \(ttyOut) \(ttyErr)")
        #expect(try R.queuedIDs(dir) == before, "a refused message was queued")
    }
}
