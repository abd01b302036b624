import Foundation
import Testing

/// `relay drill simulate`: a scenario file run with the real engine on the simulated radio channel.
@Suite(.serialized, .timeLimit(.minutes(20))) struct DrillTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    @Test func simulateTheTriangleOfTrustAsJSON() throws {
        let file = Self.scenarios.appendingPathComponent("triangle-of-trust.json").path
        let (code, out, err) = try R.run(["drill", "simulate", file, "--json"])
        #expect(code == 0, "\(err)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1, "one JSON object: \(out)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        for key in ["delivered", "sent", "delivery_ratio", "latency_p50_s", "latency_p95_s", "transmissions", "airtime_s",
                    "collisions", "recovery_s"] {
            #expect(o[key] != nil, "key \(key)")
        }
        let sent = try #require(o["sent"] as? Int)
        let delivered = try #require(o["delivered"] as? Int)
        let ratio = try #require(o["delivery_ratio"] as? Double)
        // 41 messages: 36 to one relay; an alert, an aid request and three sets of minutes to the 11 others each.
        #expect(sent == 36 + 5 * 11)
        // Everything arrives but perhaps some copies of the three assemblies' minutes (about 2 KB each, to all 11
        // others), sent 300 s before the drill ends: a flood that size over SF9 may still be on its way at the end.
        #expect(delivered >= sent - 33 && delivered <= sent, "\(delivered) of \(sent)")
        #expect(abs(ratio - Double(delivered) / Double(sent)) < 0.001)
        let p50 = try #require(o["latency_p50_s"] as? Double)
        let p95 = try #require(o["latency_p95_s"] as? Double)
        #expect(p50 > 0 && p50 <= p95 && p95 < 7_200)
        let tx = try #require(o["transmissions"] as? Int)
        let airtime = try #require(o["airtime_s"] as? Double)
        #expect(tx > 0 && airtime > 0 && airtime < Double(tx) * 1.0, "SF9 packets of at most 255 bytes last under a second")
        #expect((o["collisions"] as? Int).map { $0 >= 0 } == true)
        let recovery = try #require(o["recovery_s"] as? [Any])
        #expect(recovery.count == 2, "the partition and east-1's outage")
        #expect((recovery.first as? Double).map { $0 > 0 } == true, "the partition's recovery: \(recovery)")
    }

    @Test func aMissingOrBadScenarioIsOneLineAndItsExitCode() throws {
        let dir = R.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (missing, _, err1) = try R.run(["drill", "simulate", dir + "/nothing.json"])
        #expect(missing == 66)
        #expect(err1.split(separator: "\n").count == 1 && err1.contains("nothing.json"), "\(err1)")
        let bad = dir + "/bad.json"
        try Data(#"{"name": "x", "seed": 1, "duration": 60, "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5}, "nodes": [{"id": "a", "x": 0, "y": 0}], "traffic": [{"at": 1, "from": "zed", "to": "everyone", "kind": "alert", "bytes": 10}]}"#.utf8)
            .write(to: URL(fileURLWithPath: bad))
        let (code, out, err2) = try R.run(["drill", "simulate", bad])
        #expect(code == 65)
        #expect(out.isEmpty)
        #expect(err2.split(separator: "\n").count == 1 && err2.contains("traffic[0].from") && err2.contains("zed"), "\(err2)")
    }

    /// `--compare`: the same scenario with naive flooding, Meshtastic-style managed flooding and the engine. Six
    /// relays along a valley, an alert from one end: managed flooding stops at its hop limit of 3.
    @Test func compareStrategiesOnAValley() throws {
        let dir = R.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let nodes = (0..<6).map { #"{"id": "v\#($0)", "x": \#($0 * 4_000), "y": 0}"# }.joined(separator: ",")
        let file = dir + "/chain.json"
        try Data("""
            {"name": "chain", "seed": 2, "duration": 900, "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5},
             "nodes": [\(nodes)], "traffic": [{"at": 120, "from": "v0", "to": "everyone", "kind": "alert", "bytes": 90}]}
            """.utf8).write(to: URL(fileURLWithPath: file))
        let (code, out, err) = try R.run(["drill", "simulate", file, "--compare", "--json"])
        #expect(code == 0, "\(err)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let rows = try #require(o["strategies"] as? [[String: Any]])
        #expect(rows.map { $0["strategy"] as? String } == ["naive", "managed", "courier"])
        #expect(rows.map { $0["delivered"] as? Int } == [5, 4, 5], "\(rows)")
        #expect(rows.allSatisfy { ($0["sent"] as? Int) == 5 })
        let (bad, _, err2) = try R.run(["drill", "simulate", file, "--strategy", "gossip"])
        #expect(bad == 64 && err2.contains("gossip") && err2.split(separator: "\n").count == 1, "\(err2)")
    }

    /// Headless Chromium (Debian's `chromium` package), if installed.
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/local/bin/chromium"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Decodes a PNG (8-bit RGB or RGBA, Python's zlib only) and prints: width, height, distinct colours in a sample
    /// of its pixels, and the share of sampled pixels that are not the most common colour.
    static let pngProbe = #"""
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos+4]); kind = data[pos+4:pos+8]; body = data[pos+8:pos+8+n]; pos += 12 + n
    if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT': idat += body
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat); stride = w * bpp
prev = bytearray(stride); colours = {}; i = 0
for y in range(h):
    f = raw[i]; row = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = row[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: row[x] = (row[x] + a) & 255
        elif f == 2: row[x] = (row[x] + b) & 255
        elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp * 4):
        k = bytes(row[x:x+3]); colours[k] = colours.get(k, 0) + 1
    prev = row
top = max(colours.values()); total = sum(colours.values())
print(w, h, len(colours), round(1 - top / total, 4))
"""#

    /// `--report` writes one self-contained page; headless Chromium renders it to a 1200x900 screenshot that shows
    /// the plots (many colours, a good share of the page not background).
    @Test(.enabled(if: DrillTests.chromium != nil, "chromium is not installed (apt-get install chromium): the report's screenshot test is skipped"))
    func theReportRendersInHeadlessChromium() throws {
        let dir = R.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = Self.scenarios.appendingPathComponent("triangle-of-trust.json").path
        let html = dir + "/report.html"
        let (code, out, err) = try R.run(["drill", "simulate", file, "--report", html])
        #expect(code == 0, "\(err)")
        #expect(out.contains("report: \(html)"))
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.components(separatedBy: "<svg ").count - 1 == 3, "three inline plots")
        #expect(!page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"), "self-contained")
        let shot = dir + "/shot.png"
        let (c2, _, e2) = try R.exec(Self.chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir)/profile",
                                                     "--screenshot=\(shot)", "--window-size=1200,900", "file://\(html)"], deadline: 120)
        #expect(c2 == 0, "\(e2)")
        #expect(FileManager.default.fileExists(atPath: shot))
        try Self.pngProbe.write(toFile: dir + "/probe.py", atomically: true, encoding: .utf8)
        let (c3, probe, e3) = try R.exec("/usr/bin/env", ["python3", dir + "/probe.py", shot], deadline: 120)
        #expect(c3 == 0, "\(e3)")
        let f = probe.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        try #require(f.count == 4, "\(probe)")
        #expect(f[0] == 1200 && f[1] == 900, "the window's size: \(probe)")
        #expect(f[2] >= 20, "many colours, not one flat one: \(probe)")
        #expect(f[3] >= 0.05, "a good share of the page is not background: \(probe)")
    }
}
