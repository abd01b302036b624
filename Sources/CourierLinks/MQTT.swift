#if canImport(Glibc)
import Glibc
#endif
import CMosquitto
import Foundation
import Logging
import Synchronization

/// A link through an MQTT broker (libmosquitto): every gateway of a federation that reaches the broker hears every
/// packet the others publish, as on a shared radio channel with a large MTU and no airtime budget.
///
/// Topics: each relay publishes to `ROOT/<federation fingerprint>/<node short id>` and subscribes to
/// `ROOT/<federation fingerprint>/+`, ignoring its own topic (its echoes). Two federations on one broker use
/// different topics; the payload is the Courier packet exactly as on any other link (authenticated, and for a sealed
/// federation encrypted), so the broker learns which gateways talk and how much, nothing of what they say.
/// QoS 1 both ways. The connection runs on its own thread (`mosquitto_loop`), reconnecting with backoff; the link is
/// up once the broker has acknowledged the subscription.
public final class MQTTLink: Link, @unchecked Sendable {
    public let name: String
    public let properties: LinkProperties
    public let events: AsyncStream<LinkEvent>
    private let continuation: AsyncStream<LinkEvent>.Continuation
    public let settings: MQTTSettings
    /// Where this relay publishes (`ROOT/<federation>/<node>`) and what it subscribes to (`ROOT/<federation>/+`), for
    /// the network key packets are sealed under. While the federation changes key (SPEC 3.7) the link subscribes to
    /// the topics of every accepted key too (`networkKeysChanged`), and publishes under the key in use.
    public var publishTopic: String { self.state.withLock { $0.topics.publish } }
    public var subscribeTopic: String { self.state.withLock { $0.topics.subscribe[0] } }
    private let node: String
    private let clientID: String
    private let password: String?
    private let backoff: Backoff
    private let logger: Logger
    /// Seconds between pings when nothing else crosses the connection: a broker that vanished without closing
    /// the connection (a lost route) is noticed within about 1.5 times this.
    static let keepalive: Int32 = 20
    /// A connection counts as working (the next failure starts the backoff again) once it stayed up this long.
    static let stableAfter = 10.0

    private struct State {
        var stopped = false
        var subscribed = false
        var connection: LinkConnection
        var counters = LinkCounters()
        /// Our own packets the broker sent back (we subscribe to the topic we publish under).
        var echoes = 0
        /// Why the broker turned us away (CONNACK or SUBACK refused), set by the callbacks.
        var refusal: String?
        var connectedOnce = false
        /// The topics for the keys in force: where we publish, what we subscribe to (the sending key's first), and
        /// our own topics under every accepted key (their messages are our echoes).
        var topics: Topics
        /// The message id of the subscription whose acknowledgement brings the link up.
        var upMid: Int32 = -1
    }
    struct Topics {
        var publish: String
        var subscribe: [String]
        var own: Set<String>
    }
    private func topics(sending: String, accepting: [String]) -> Topics {
        let feds = [sending] + accepting.filter { $0 != sending }
        let base = self.settings.topicRoot
        return Topics(publish: "\(base)/\(sending)/\(self.node)", subscribe: feds.map { "\(base)/\($0)/+" },
                      own: Set(feds.map { "\(base)/\($0)/\(self.node)" }))
    }
    private let state: Mutex<State>
    /// The libmosquitto client. Created in `init`, destroyed by the loop thread when it ends; `send` holds this
    /// lock while it publishes so the client is never freed under it. (The callbacks never take it.)
    private let client = NSLock()
    private var mosq: OpaquePointer?

    static let libraryReady: Bool = {
        mosquitto_lib_init()
        return true
    }()

    /// `federation`: the federation's fingerprint (hex); `node`: this relay's short id (hex).
    public init(name: String, settings: MQTTSettings, federation: String, node: String, properties: LinkProperties,
                backoff: Backoff, logger: Logger) throws(LinkError) {
        _ = Self.libraryReady
        self.name = name
        self.settings = settings
        self.properties = properties
        self.backoff = backoff
        self.logger = logger
        self.node = node
        let base = "\(settings.topicRoot)/\(federation)"
        let topics = Topics(publish: "\(base)/\(node)", subscribe: ["\(base)/+"], own: ["\(base)/\(node)"])
        // At most 23 characters, the limit MQTT 3.1.1 lets brokers impose.
        self.clientID = "cr-\(federation.prefix(8))-\(node.prefix(8))"
        if let file = settings.passwordFile {
            guard access(file, R_OK) == 0, let data = FileManager.default.contents(atPath: file) else {
                let why = errno == 0 ? "unreadable" : String(cString: strerror(errno))
                throw .invalidSpec("\(name): cannot read password-file=\(file) (\(why)); put the broker password on its first line, readable by the relay's user")
            }
            self.password = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        } else {
            self.password = nil
        }
        (self.events, self.continuation) = AsyncStream.makeStream(of: LinkEvent.self, bufferingPolicy: .bufferingNewest(4_096))
        let peer = "broker \(settings.host):\(settings.port)\(settings.tls ? " (TLS)" : ""), topic \(topics.subscribe[0])"
        self.state = Mutex(State(connection: LinkConnection(peer: peer, state: .connecting, since: Date().timeIntervalSince1970), topics: topics))

        guard let m = mosquitto_new(self.clientID, true, nil) else {
            throw .io("\(name): cannot create an MQTT client (libmosquitto: out of memory?)")
        }
        self.mosq = m
        do throws(LinkError) {
            try self.configure(m)
        } catch {
            mosquitto_destroy(m)
            self.mosq = nil
            throw error
        }
    }

    private func configure(_ m: OpaquePointer) throws(LinkError) {
        func check(_ rc: Int32, _ what: String) throws(LinkError) {
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw .invalidSpec("\(self.name): \(what): \(Self.describe(rc, errno: errno))")
            }
        }
        mosquitto_user_data_set(m, Unmanaged.passUnretained(self).toOpaque())
        try check(mosquitto_threaded_set(m, true), "libmosquitto threads")
        try check(mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311), "MQTT version")
        if let u = self.settings.user {
            try check(mosquitto_username_pw_set(m, u, self.password), "user name")
        } else if self.password != nil {
            throw .invalidSpec("\(self.name): password-file needs user=U too")
        }
        if self.settings.tls {
            let ca = self.settings.caFile
            if let ca, !FileManager.default.isReadableFile(atPath: ca) {
                throw .invalidSpec("\(self.name): cafile=\(ca): cannot read it; give the PEM file of the broker's certificate authority")
            }
            try check(mosquitto_tls_set(m, ca, ca == nil ? "/etc/ssl/certs" : nil, nil, nil, nil), "TLS set-up")
        }
        mosquitto_connect_callback_set(m) { _, obj, rc in MQTTLink.from(obj)?.connected(rc) }
        mosquitto_subscribe_callback_set(m) { _, obj, mid, count, granted in MQTTLink.from(obj)?.subscribed(mid: mid, count: count, granted: granted) }
        mosquitto_message_callback_set(m) { _, obj, message in
            guard let message else { return }
            MQTTLink.from(obj)?.received(message.pointee)
        }
    }

    static func from(_ obj: UnsafeMutableRawPointer?) -> MQTTLink? {
        obj.map { Unmanaged<MQTTLink>.fromOpaque($0).takeUnretainedValue() }
    }

    deinit {
        if let m = self.mosq { mosquitto_destroy(m) }
    }

    public var isUp: Bool { self.state.withLock { $0.subscribed } }
    public var counters: LinkCounters { self.state.withLock { $0.counters } }
    public var connection: LinkConnection? { self.state.withLock { $0.connection } }
    /// Our own packets the broker echoed back (ignored).
    public var echoes: Int { self.state.withLock { $0.echoes } }

    private var stopped: Bool { self.state.withLock { $0.stopped } }

    public func start() {
        // The thread keeps the link alive until it has destroyed the client.
        let t = Thread { [self] in self.run() }
        t.name = "courier.link.\(self.name)"
        t.start()
    }

    public func stop() {
        self.state.withLock { $0.stopped = true }
    }

    // MARK: the connection thread

    private func run() {
        guard let m = self.client.withLock({ self.mosq }) else {
            self.continuation.finish()
            return
        }
        let s = self.settings
        var attempt = 0
        var lastLogged = ""
        while !self.stopped {
            self.state.withLock { $0.refusal = nil }
            // Blocking: resolves the name and opens the TCP (and TLS) connection, queues CONNECT.
            let rc = mosquitto_connect(m, s.host, Int32(s.port), Self.keepalive)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                let why = Self.describe(rc, errno: errno)
                let delay = self.backoff.delay(attempt: attempt)
                self.failed(why)
                if why != lastLogged {
                    self.logger.warning("link cannot connect to the MQTT broker; retrying", metadata: [
                        "link": "\(self.name)", "error": "\(why)", "retry": "\(Self.seconds(delay)), then up to every \(Self.seconds(self.backoff.maximum))",
                    ])
                    lastLogged = why
                }
                self.sleep(delay)
                attempt += 1
                continue
            }
            let opened = Date()
            var reason = "stopped"
            while !self.stopped {
                let rc = mosquitto_loop(m, 250, 1)
                let refusal = self.state.withLock { $0.refusal }
                if let refusal {
                    reason = refusal
                    break
                }
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    reason = "connection to the broker lost: \(Self.describe(rc, errno: errno))"
                    break
                }
            }
            // Closes the connection (a DISCONNECT when it is still open) before trying again or ending.
            self.disconnect(m)
            if self.stopped { break }
            let wasUp = self.state.withLock { st -> Bool in
                defer { st.subscribed = false }
                return st.subscribed
            }
            let worked = wasUp && Date().timeIntervalSince(opened) >= Self.stableAfter
            attempt = worked ? 0 : attempt + 1
            let delay = self.backoff.delay(attempt: attempt)
            self.failed(reason)
            if wasUp {
                self.logger.warning("link down; will reconnect", metadata: ["link": "\(self.name)", "reason": "\(reason)", "retry": "\(Self.seconds(delay))"])
                self.continuation.yield(.down(reason))
                lastLogged = ""
            } else if reason != lastLogged {
                self.logger.warning("link: the MQTT broker turned the connection down; retrying", metadata: [
                    "link": "\(self.name)", "reason": "\(reason)", "retry": "\(Self.seconds(delay))",
                ])
                lastLogged = reason
            }
            self.sleep(delay)
        }
        self.client.withLock {
            mosquitto_destroy(m)
            self.mosq = nil
        }
        self.state.withLock { $0.subscribed = false }
        self.continuation.finish()
    }

    private func disconnect(_ m: OpaquePointer) {
        guard mosquitto_disconnect(m) == MOSQ_ERR_SUCCESS.rawValue else { return }
        // Lets the loop write the DISCONNECT and close the socket (it returns an error once it is closed).
        for _ in 0..<4 where mosquitto_loop(m, 100, 1) == MOSQ_ERR_SUCCESS.rawValue {}
    }

    /// Records a failure for `relay status`: connecting (never connected yet) or reconnecting since when.
    private func failed(_ why: String) {
        let now = Date().timeIntervalSince1970
        self.state.withLock { st in
            // A relay that never reached the broker is still "connecting" since its start.
            if st.connection.state == .connected {
                st.connection.state = .reconnecting
                st.connection.since = now
            }
            st.connection.lastError = why
            st.connection.lastErrorAt = now
            st.connection.failedAttempts += 1
        }
    }

    // MARK: callbacks (on the connection thread, inside mosquitto_loop)

    private func connected(_ rc: Int32) {
        guard rc == 0 else {
            let why = "the broker refused the connection: \(String(cString: mosquitto_connack_string(rc)))"
            self.state.withLock { $0.refusal = why }
            return
        }
        guard let m = self.mosq else { return }
        let topics = self.state.withLock { $0.topics.subscribe }
        for (i, topic) in topics.enumerated() {
            var mid: Int32 = 0
            let sub = mosquitto_subscribe(m, &mid, topic, 1)
            if sub != MOSQ_ERR_SUCCESS.rawValue {
                let why = "cannot subscribe to \(topic): \(Self.describe(sub, errno: errno))"
                self.state.withLock { $0.refusal = why }
                return
            }
            if i == 0 { self.state.withLock { $0.upMid = mid } }
        }
    }

    /// The federation's keys changed (SPEC 3.7; fingerprints): publish under the key in use, and hear the gateways
    /// still under another accepted key. A gateway left with a retired key is no longer subscribed to at all.
    public func networkKeysChanged(sending: String, accepting: [String]) {
        let new = self.topics(sending: sending, accepting: accepting)
        let (old, up) = self.state.withLock { st -> (Topics, Bool) in
            defer { st.topics = new }
            return (st.topics, st.subscribed)
        }
        guard new.subscribe != old.subscribe || new.publish != old.publish else { return }
        self.logger.notice("link follows the network keys", metadata: [
            "link": "\(self.name)", "publishing": "\(new.publish)", "subscribed": "\(new.subscribe.joined(separator: " "))",
        ])
        // Connected: change the subscriptions now (a connection made later subscribes to the new topics itself).
        guard up else { return }
        self.client.withLock {
            guard let m = self.mosq else { return }
            for t in new.subscribe where !old.subscribe.contains(t) { _ = mosquitto_subscribe(m, nil, t, 1) }
            for t in old.subscribe where !new.subscribe.contains(t) { _ = mosquitto_unsubscribe(m, nil, t) }
        }
    }

    private func subscribed(mid: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
        let (main, topic) = self.state.withLock { ($0.upMid == mid, $0.topics.subscribe[0]) }
        guard count >= 1, let granted, granted[0] <= 2 else {
            let why = "the broker refused the subscription to \(main ? topic : "another accepted key's topic") (not authorised? check its ACL)"
            if main { self.state.withLock { $0.refusal = why } } else { self.logger.warning("link: \(why)", metadata: ["link": "\(self.name)"]) }
            return
        }
        // The other accepted keys' topics: nothing more to do.
        guard main else { return }
        let now = Date().timeIntervalSince1970
        let reconnect = self.state.withLock { st -> Bool in
            let again = st.connectedOnce
            st.subscribed = true
            st.connectedOnce = true
            st.connection.state = .connected
            st.connection.since = now
            st.connection.failedAttempts = 0
            if again { st.counters.reconnects += 1 }
            return again
        }
        self.logger.info("link up", metadata: [
            "link": "\(self.name)", "via": "mqtt, \(reconnect ? "reconnected, " : "")publishing to \(self.publishTopic), QoS \(granted[0])",
        ])
        self.continuation.yield(.up)
    }

    private func received(_ message: mosquitto_message) {
        guard let topic = message.topic.map({ String(cString: $0) }) else { return }
        let count = Int(message.payloadlen)
        let echo = self.state.withLock { st -> Bool in
            guard st.topics.own.contains(topic) else { return false }
            st.echoes += 1
            return true
        }
        if echo { return }
        guard count > 0, let payload = message.payload else {
            self.state.withLock { $0.counters.framingErrors += 1 }
            self.logger.debug("refused frame", metadata: ["link": "\(self.name)", "reason": "empty MQTT message", "topic": "\(topic)"])
            return
        }
        let bytes = Array(UnsafeRawBufferPointer(start: payload, count: count))
        self.state.withLock { st in
            st.counters.framesIn += 1
            st.counters.bytesIn += count
        }
        self.continuation.yield(.frame(bytes))
    }

    // MARK: sending

    public func send(_ packet: [UInt8]) async throws(LinkError) {
        guard self.isUp else { throw .down(self.name) }
        let rc: Int32 = self.client.withLock {
            guard let m = self.mosq else { return MOSQ_ERR_NO_CONN.rawValue }
            return packet.withUnsafeBytes { mosquitto_publish(m, nil, self.publishTopic, Int32(packet.count), $0.baseAddress, 1, false) }
        }
        switch rc {
        case MOSQ_ERR_SUCCESS.rawValue:
            self.state.withLock { st in
                st.counters.framesOut += 1
                st.counters.bytesOut += packet.count
            }
        case MOSQ_ERR_NO_CONN.rawValue, MOSQ_ERR_CONN_LOST.rawValue:
            throw .down(self.name)
        default:
            throw .io("\(self.name): publish failed: \(Self.describe(rc, errno: errno))")
        }
    }

    // MARK: helpers

    static func describe(_ rc: Int32, errno e: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(e)) }
        let text = String(cString: mosquitto_strerror(rc))
        switch rc {
        case MOSQ_ERR_TLS.rawValue:
            return "\(text) (the broker's certificate does not check out against cafile= or the system's CAs, or the port does not speak TLS)"
        case MOSQ_ERR_EAI.rawValue: return "\(text) (the broker's name does not resolve: check it and DNS)"
        default: return text
        }
    }

    static func seconds(_ s: Double) -> String { s < 10 ? String(format: "%.1f s", s) : String(format: "%.0f s", s) }

    /// Sleeps in small steps so `stop()` takes effect quickly.
    private func sleep(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !self.stopped && Date() < end { Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow))) }
    }
}
