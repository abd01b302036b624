import CourierWire

/// A change of the federation's network key (SPEC 3.7) as the engine sees it: a key that replaces the current one
/// from a moment on, and the key that an earlier change replaced, still accepted until a moment. The operators
/// agree the moment; the key travels by hand (a join code) to every member that stays, so a removed member is
/// cut off once the replaced key is no longer accepted.
public struct KeyRotation: Sendable, Hashable {
    /// How long after a switch the replaced key is still accepted, unless the operator retires it sooner: a member
    /// whose clock runs late, or that was offline at the switch and got the new key later, is not cut off at once.
    public static let replacedKeyAcceptedFor: Double = 7 * 86_400

    /// The key that replaces the current one at `switchAt` (Unix seconds).
    public var next: NetworkKey?
    public var switchAt: Double
    /// The key a finished change replaced, accepted until `previousUntil` (Unix seconds).
    public var previous: NetworkKey?
    public var previousUntil: Double

    public init(next: NetworkKey? = nil, switchAt: Double = .infinity, previous: NetworkKey? = nil, previousUntil: Double = -.infinity) {
        self.next = next
        self.switchAt = switchAt
        self.previous = previous
        self.previousUntil = previousUntil
    }

    /// The key packets are sealed under at `now`, and every key a received packet may be sealed under (the sending
    /// key first). Before the switch the next key is accepted already: a member whose clock runs early has switched.
    public func keys(current: NetworkKey, at now: Double) -> (send: NetworkKey, accept: [NetworkKey]) {
        var accept: [NetworkKey]
        let send: NetworkKey
        if let n = self.next, now >= self.switchAt {
            send = n
            accept = [n]
            if now < self.switchAt + Self.replacedKeyAcceptedFor { accept.append(current) }
        } else {
            send = current
            accept = [current] + (self.next.map { [$0] } ?? [])
        }
        if let p = self.previous, now < self.previousUntil, !accept.contains(p) { accept.append(p) }
        return (send, accept)
    }
}
