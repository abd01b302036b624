import CourierLinks
import Testing

/// `mqtt:HOST[:PORT][,topic=ROOT][,tls][,cafile=PATH][,user=U][,password-file=PATH][,mtu=N]`.
@Suite struct MQTTSpecTests {
    @Test func mqttLinkSpecsParseWithTheirOptions() throws {
        let plain = try LinkConfig("mqtt:broker.example.org")
        guard case .mqtt(let m) = plain.spec else { Issue.record("not an mqtt spec: \(plain)"); return }
        #expect(m.host == "broker.example.org" && m.port == 1883 && m.topicRoot == "courier" && !m.tls && m.user == nil)
        #expect(plain.description == "mqtt:broker.example.org:1883" && plain.mtu == nil)

        let full = try LinkConfig("mqtt:10.0.0.5:1884,topic=valleys/courier,user=ga1,password-file=/etc/courier/mqtt.pw,mtu=4096")
        guard case .mqtt(let f) = full.spec else { Issue.record("not an mqtt spec: \(full)"); return }
        #expect(f.host == "10.0.0.5" && f.port == 1884 && f.topicRoot == "valleys/courier" && f.user == "ga1")
        #expect(f.passwordFile == "/etc/courier/mqtt.pw" && full.mtu == 4096)
        // The link's name (in `relay status`) has the topic root, so two roots on one broker are two links.
        #expect(full.spec.description == "mqtt:10.0.0.5:1884,topic=valleys/courier")
        #expect(try LinkConfig(full.description) == full, "the description parses back: \(full.description)")

        // TLS: port 8883 unless given; a CA file implies TLS.
        guard case .mqtt(let t) = try LinkConfig("mqtt:broker.example.org,tls").spec else { Issue.record("tls"); return }
        #expect(t.tls && t.port == 8883 && t.caFile == nil)
        guard case .mqtt(let c) = try LinkConfig("mqtt:[::1]:8884,cafile=/etc/ssl/ca.pem").spec else { Issue.record("cafile"); return }
        #expect(c.tls && c.host == "::1" && c.port == 8884 && c.caFile == "/etc/ssl/ca.pem")
        #expect(try LinkConfig("mqtt:[::1]:8884,cafile=/etc/ssl/ca.pem").spec.description == "mqtt:[::1]:8884")

        for bad in ["mqtt:", "mqtt:host:0", "mqtt:host:port", "mqtt:2001:db8::1", "mqtt:host,topic=a/+", "mqtt:host,topic=#",
                    "mqtt:host,topic=/x", "mqtt:host,topic=", "mqtt:host,qos=2", "mqtt:host,user", "mqtt:host,mtu=10", "mqtt:host,tls=no"] {
            let e = #expect(throws: LinkError.self, "\(bad)") { try LinkConfig(bad) }
            #expect(e?.description.contains("bad link") == true, "\(bad): \(e?.description ?? "")")
        }
        // The other link types still take only mtu=N.
        let e = #expect(throws: LinkError.self) { try LinkConfig("tcp:host:1,topic=x") }
        #expect(e?.description.contains("the only option is mtu=N") == true)
    }
}
