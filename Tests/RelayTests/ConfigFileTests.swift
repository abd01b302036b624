import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// relay.conf as an operator edits it: every line `relay run` cannot use stops it at start with exit 78 and one line
/// on stderr naming the file and the line, before anything is opened.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ConfigFileTests {
    /// A fresh data directory (`relay init`, sealed unless `open`).
    func initialised(open: Bool = false) throws -> String {
        let dir = R.tempDir() + "/relay"
        let (rc, _, err) = try R.run(["init", "--data-dir", dir, "--name", "conf"] + (open ? ["--open"] : []))
        try #require(rc == 0, "relay init: \(err)")
        return dir
    }

    @Test func everyBadLineIsExit78NamingFileAndLine() throws {
        let dir = try self.initialised()
        let conf = dir + "/relay.conf"
        let named = (conf as NSString).resolvingSymlinksInPath
        let generated = R.text(conf)
        // The commented file `relay init` wrote, one good link, then the line under test.
        let base = generated + "link = tcp-listen:127.0.0.1:0\n"
        let line = base.split(separator: "\n", omittingEmptySubsequences: false).count
        let cases: [(String, String)] = [
            ("link = serail:/dev/ttyUSB0:9600", "serail"),
            ("log-level = verbose", "use debug, info, notice or warning"),
            ("callsign = N0CALL-99", "SSID 0-15"),
            ("rnode-spreading-factor = 13", "5 to 12"),
            ("rnode-tx-power = 30", "0 to 22"),
            ("rnode-bandwidth = 100000", "LoRa bandwidth"),
            ("quota-mb = -5", "from 1 to"),
            ("quota-mb = 99999999999999", "from 1 to"),
            ("duty-cycle = 150", "at most 100"),
            ("duty-cycle = nan", "at most 100"),
            ("duty-cycle = 0", "above 0"),
            ("duty_cycle = 10", "did you mean duty-cycle?"),
            ("Log-Level = debug", "did you mean log-level?"),
            ("wait-for-links = true", "`yes` or `no`"),
            ("duty-cycle", "expected `key = value`"),
        ]
        for (bad, says) in cases {
            try (base + bad + "\n").write(toFile: conf, atomically: true, encoding: .utf8)
            let (rc, _, err) = try R.runWithin(15, ["run", "--data-dir", dir])
            let lines = err.split(separator: "\n")
            #expect(rc == 78, "'\(bad)': exit \(rc.map(String.init) ?? "none, it ran") \(err)")
            #expect(lines.count == 1 && err.contains("\(named) line \(line):") && err.contains(says), "'\(bad)': \(err)")
        }
        // A setting given twice: the second one names the first.
        try (base + "duty-cycle = 10\nduty-cycle = 1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc, _, err) = try R.runWithin(15, ["run", "--data-dir", dir])
        #expect(rc == 78 && err.split(separator: "\n").count == 1 && err.contains("\(named) line \(line + 1): duty-cycle is given twice (first at line \(line))"), "\(err)")
    }

    /// Rules that join two settings (amateur bands: callsign, KISS, an open federation) name the relay.conf line when
    /// relay.conf set them.
    @Test func amateurRulesBrokenInRelayConfNameTheLine() throws {
        let sealed = try self.initialised()
        let conf = (sealed + "/relay.conf" as NSString).resolvingSymlinksInPath
        let generated = R.text(conf)
        let first = generated.split(separator: "\n", omittingEmptySubsequences: false).count
        // A callsign on a sealed federation (no TNC needed: the rules are checked before any link opens).
        try (generated + "link = kiss-tcp:127.0.0.1:1\ncallsign = N0CALL-1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc1, _, err1) = try R.runWithin(15, ["run", "--data-dir", sealed])
        #expect(rc1 == 78 && err1.split(separator: "\n").count == 1 && err1.contains("\(conf) line \(first + 1): callsign = N0CALL-1 means amateur bands"), "\(err1)")
        // A KISS link in relay.conf and no callsign anywhere.
        try (generated + "link = kiss-tcp:127.0.0.1:1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let (rc2, _, err2) = try R.runWithin(15, ["run", "--data-dir", sealed])
        #expect(rc2 == 78 && err2.split(separator: "\n").count == 1 && err2.contains("\(conf) line \(first):") && err2.contains("not-amateur = yes"), "\(err2)")
    }

    /// As the Debian package sets it up: relay.conf in the data directory links to /etc/courier/relay.conf.
    /// `relay init` keeps the link, and an error names the file to edit (the link's target).
    @Test func linkedRelayConfIsKeptAndNamedInErrors() throws {
        let base = R.tempDir()
        let etc = base + "/etc-courier-relay.conf"
        try "# the packaged conffile\nlink = tcp-listen:127.0.0.1:0\nduty-cycle = ten\n".write(toFile: etc, atomically: true, encoding: .utf8)
        let dir = base + "/var-lib-courier"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/relay.conf", withDestinationPath: etc)
        let (rc, _, err) = try R.run(["init", "--data-dir", dir, "--name", "packaged"])
        try #require(rc == 0, "relay init: \(err)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/relay.conf") == etc, "relay init replaced the link")
        let (rc2, _, err2) = try R.runWithin(15, ["run", "--data-dir", dir])
        let named = (etc as NSString).resolvingSymlinksInPath
        #expect(rc2 == 78 && err2.split(separator: "\n").count == 1 && err2.contains("\(named) line 3: duty-cycle = ten"), "\(err2)")
    }

    /// The values the README and the generated relay.conf show are accepted: the relay starts with all of them.
    @Test func everyDocumentedValueIsAccepted() throws {
        let dir = try self.initialised()
        let conf = dir + "/relay.conf"
        let settings = """
            link = tcp-listen:127.0.0.1:0
            group = water-committee
            group = clinic
            quota-mb = 64
            duty-cycle = 10%
            trust = network
            wait-for-links = no
            not-amateur = no
            rnode-frequency = 869525000
            rnode-bandwidth = 125000
            rnode-spreading-factor = 9
            rnode-coding-rate = 5
            rnode-tx-power = 14
            log-level = info

            """
        try (R.text(conf) + settings).write(toFile: conf, atomically: true, encoding: .utf8)
        let log = dir + "/run.log"
        let relay = try R.start(["run", "--data-dir", dir], log: log)
        defer { R.stop(relay) }
        #expect(R.wait(20) { R.text(log).contains("relay running") || !relay.isRunning }, "\(R.text(log))")
        #expect(relay.isRunning && !R.text(log).contains("relay.conf"), "\(R.text(log))")
    }

    /// A running relay told to reload a relay.conf with a typo keeps its settings and logs the line, with the hint.
    @Test func reloadWithAnUnknownKeyKeepsTheRunningSettings() throws {
        let dir = try self.initialised()
        let conf = dir + "/relay.conf"
        let named = (conf as NSString).resolvingSymlinksInPath
        let original = R.text(conf) + "link = tcp-listen:127.0.0.1:0\n"
        try original.write(toFile: conf, atomically: true, encoding: .utf8)
        let log = dir + "/run.log"
        let relay = try R.start(["run", "--data-dir", dir], log: log)
        defer { R.stop(relay) }
        #expect(R.wait(60) { R.text(log).contains("relay running") }, "\(R.text(log))")
        let line = original.split(separator: "\n", omittingEmptySubsequences: false).count
        try (original + "duty_cycle = 1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        kill(relay.processIdentifier, SIGHUP)
        #expect(R.wait(60) { R.text(log).contains("reload refused") }, "\(R.text(log))")
        let text = R.text(log)
        #expect(text.contains("\(named) line \(line): unknown setting 'duty_cycle': did you mean duty-cycle?"), "\(text)")
        #expect(!text.contains("configuration applied") && relay.isRunning, "\(text)")
    }
}
