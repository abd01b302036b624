import Foundation

/// `relay drill simulate --report FILE`: one self-contained HTML page (no scripts, no external files) with the
/// figures and three inline SVG plots: delivery over time, airtime per relay, and a map of the mesh coloured by
/// when the first alert arrived.
extension DrillResult {
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A colour from green (early) through yellow to red (late), for a fraction 0...1.
    static func heat(_ t: Double) -> String {
        let x = min(max(t, 0), 1)
        let r = Int(min(1, 2 * x) * 215 + 20)
        let g = Int(min(1, 2 * (1 - x)) * 170 + 30)
        return String(format: "#%02x%02x%02x", r, g, 50)
    }

    public func html(radio: Scenario.RadioSpec, seed: UInt64) -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Drill \(Self.esc(self.name))</title>
            <style>
            body{font-family:sans-serif;margin:24px;color:#222;background:#fff}
            h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px}
            pre{background:#f4f4f0;padding:10px;font-size:12px;overflow-x:auto}
            .plots{display:flex;flex-wrap:wrap;gap:18px} figure{margin:0} figcaption{font-size:12px;color:#555}
            svg text{font-size:11px;fill:#333}
            </style></head><body>
            <h1>Drill: \(Self.esc(self.name))</h1>
            <p>\(self.relays) relays, \(Self.f(self.duration)) s simulated, \(Self.esc(Self.describe(radio))), seed \(seed).
            Delivered <b>\(self.delivered) of \(self.sent)</b> copies (\(Self.percent(self.deliveryRatio))); latency p50
            \(Self.seconds(self.latencyP50)), p95 \(Self.seconds(self.latencyP95)); \(self.transmissions) transmissions,
            \(Self.f(self.airtime)) s of airtime, \(self.collisions) receptions lost to collisions.</p>
            <div class="plots">

            """
        h += "<figure style=\"width:540px\">\(self.deliverySVG())<figcaption>Copies delivered over time (shaded: disruptions).</figcaption></figure>\n"
        h += "<figure style=\"width:320px\">\(self.mapSVG())<figcaption>\(self.mapCaption())</figcaption></figure>\n"
        h += "<figure style=\"width:540px\">\(self.airtimeSVG())<figcaption>Airtime per relay (seconds, whole run).</figcaption></figure>\n"
        h += "</div>\n<h2>Figures</h2>\n<pre>"
        h += self.text(radio: radio, seed: seed).map(Self.esc).joined(separator: "\n")
        h += "</pre>\n</body></html>\n"
        return h
    }

    func mapCaption() -> String {
        guard let o = self.alertOrigin, let at = self.alertAt else { return "The mesh (no alert in this scenario)." }
        return "The mesh, coloured by when the alert from \(Self.esc(o)) (sent at \(Self.f(at)) s) arrived: green early, red late, grey never; the ring marks its sender."
    }

    func deliverySVG() -> String {
        let w = 540.0, hgt = 320.0, l = 56.0, r = 26.0, t = 14.0, b = 36.0
        let pw = w - l - r, ph = hgt - t - b
        let maxY = Double(max(self.sent, 1))
        func x(_ s: Double) -> Double { l + pw * min(max(s / max(self.duration, 1), 0), 1) }
        func y(_ n: Double) -> Double { t + ph * (1 - n / maxY) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\">"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" fill=\"#ffffff\"/>"
        for d in self.disruptions {
            s += "<rect x=\"\(Self.f(x(d.start)))\" y=\"\(Self.f(t))\" width=\"\(Self.f(max(1, x(d.end) - x(d.start))))\" height=\"\(Self.f(ph))\" fill=\"#f3c9a8\" opacity=\"0.6\"><title>\(Self.esc(d.label))</title></rect>"
        }
        s += "<line x1=\"\(l)\" y1=\"\(t + ph)\" x2=\"\(l + pw)\" y2=\"\(t + ph)\" stroke=\"#333\"/><line x1=\"\(l)\" y1=\"\(t)\" x2=\"\(l)\" y2=\"\(t + ph)\" stroke=\"#333\"/>"
        for k in 0...4 {
            let v = maxY * Double(k) / 4
            s += "<text x=\"\(Self.f(l - 6))\" y=\"\(Self.f(y(v) + 4))\" text-anchor=\"end\">\(Int(v.rounded()))</text>"
            let tv = self.duration * Double(k) / 4
            s += "<text x=\"\(Self.f(x(tv)))\" y=\"\(Self.f(t + ph + 16))\" text-anchor=\"middle\">\(Int(tv.rounded())) s</text>"
        }
        s += "<line x1=\"\(l)\" y1=\"\(Self.f(y(maxY)))\" x2=\"\(l + pw)\" y2=\"\(Self.f(y(maxY)))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
        var pts = "\(Self.f(x(0))),\(Self.f(y(0)))"
        var n = 0.0
        for tm in self.deliveryTimes {
            pts += " \(Self.f(x(tm))),\(Self.f(y(n)))"
            n += 1
            pts += " \(Self.f(x(tm))),\(Self.f(y(n)))"
        }
        pts += " \(Self.f(x(self.duration))),\(Self.f(y(n)))"
        s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>"
        s += "<text x=\"\(Self.f(l + pw))\" y=\"\(Self.f(y(maxY) - 3))\" text-anchor=\"end\">sent: \(self.sent) copies</text>"
        s += "</svg>"
        return s
    }

    func airtimeSVG() -> String {
        let w = 540.0, hgt = 240.0, l = 56.0, r = 14.0, t = 14.0, b = 40.0
        let pw = w - l - r, ph = hgt - t - b
        let maxA = max(self.perRelay.map(\.airtime).max() ?? 0, 0.001)
        let n = max(self.perRelay.count, 1)
        let bw = pw / Double(n)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\">"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" fill=\"#ffffff\"/>"
        for (i, rl) in self.perRelay.enumerated() {
            let bh = ph * rl.airtime / maxA
            s += "<rect x=\"\(Self.f(l + Double(i) * bw))\" y=\"\(Self.f(t + ph - bh))\" width=\"\(Self.f(max(bw * 0.8, 0.5)))\" height=\"\(Self.f(bh))\" fill=\"#6a8f3a\"><title>\(Self.esc(rl.name)): \(Self.f(rl.airtime)) s</title></rect>"
        }
        s += "<line x1=\"\(l)\" y1=\"\(t + ph)\" x2=\"\(l + pw)\" y2=\"\(t + ph)\" stroke=\"#333\"/><line x1=\"\(l)\" y1=\"\(t)\" x2=\"\(l)\" y2=\"\(t + ph)\" stroke=\"#333\"/>"
        for k in 0...4 {
            let v = maxA * Double(k) / 4
            s += "<text x=\"\(Self.f(l - 6))\" y=\"\(Self.f(t + ph * (1 - Double(k) / 4) + 4))\" text-anchor=\"end\">\(Self.f(v))</text>"
        }
        if self.perRelay.count <= 24 {
            for (i, rl) in self.perRelay.enumerated() {
                let cx = l + (Double(i) + 0.4) * bw
                s += "<text x=\"\(Self.f(cx))\" y=\"\(Self.f(t + ph + 12))\" text-anchor=\"end\" transform=\"rotate(-35 \(Self.f(cx)) \(Self.f(t + ph + 12)))\">\(Self.esc(rl.name))</text>"
            }
        } else {
            s += "<text x=\"\(Self.f(l + pw / 2))\" y=\"\(Self.f(t + ph + 16))\" text-anchor=\"middle\">\(self.perRelay.count) relays in file order</text>"
        }
        s += "</svg>"
        return s
    }

    func mapSVG() -> String {
        let w = 320.0, hgt = 320.0, m = 24.0
        let xs = self.perRelay.map(\.x), ys = self.perRelay.map(\.y)
        let minX = xs.min() ?? 0, maxX = xs.max() ?? 1, minY = ys.min() ?? 0, maxY = ys.max() ?? 1
        let span = max(maxX - minX, maxY - minY, 1)
        func px(_ v: Double) -> Double { m + (w - 2 * m) * (v - minX) / span }
        func py(_ v: Double) -> Double { hgt - m - (hgt - 2 * m) * (v - minY) / span }
        let arrivals = self.perRelay.compactMap(\.alertArrival)
        let start = self.alertAt ?? 0
        let last = max((arrivals.max() ?? start) - start, 1)
        let radius = self.perRelay.count > 300 ? 2.0 : self.perRelay.count > 50 ? 3.5 : 7.0
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\">"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" fill=\"#eef2f5\"/>"
        for rl in self.perRelay {
            let isOrigin = rl.name == self.alertOrigin
            let fill: String
            let tip: String
            if isOrigin {
                fill = "#1f5fa8"
                tip = "\(rl.name): sent the alert"
            } else if let a = rl.alertArrival {
                fill = Self.heat((a - start) / last)
                tip = "\(rl.name): alert after \(Self.f(a - start)) s"
            } else {
                fill = "#9a9a9a"
                tip = "\(rl.name): \(self.alertOrigin == nil ? "no alert" : "never got the alert")"
            }
            s += "<circle cx=\"\(Self.f(px(rl.x)))\" cy=\"\(Self.f(py(rl.y)))\" r=\"\(radius)\" fill=\"\(fill)\" stroke=\"#222\" stroke-width=\"0.5\"><title>\(Self.esc(tip))</title></circle>"
            if isOrigin {
                s += "<circle cx=\"\(Self.f(px(rl.x)))\" cy=\"\(Self.f(py(rl.y)))\" r=\"\(radius * 2)\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>"
            }
        }
        s += "<text x=\"\(m)\" y=\"14\">\(Int(span.rounded())) m across; last arrival \(Self.f(arrivals.isEmpty ? 0 : last)) s after the alert</text>"
        s += "</svg>"
        return s
    }
}
