/// Link failures, each with what the operator can do about it.
public enum LinkError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case permissionDenied(String)
    case busy(String)
    /// Another process holds the device's exclusive lock (flock); its pid when /proc/locks tells it.
    case held(String, pid: Int32?)
    case invalidSpec(String)
    /// The device or peer went away (unplugged, closed, reset).
    case closed(String)
    case io(String)
    /// Nothing accepts connections at a TCP address (the TNC or the other relay is not running).
    case unreachable(String, reason: String)
    case timeout(String)
    /// The link is down: nothing was sent (the packet stays queued in the store).
    case down(String)
    /// The device did not answer as the driver expects (e.g. no RNode firmware).
    case handshake(String)

    public var description: String {
        switch self {
        case .notFound(let p): return "\(p): no such device; check the cable and `relay ports`"
        case .permissionDenied(let p):
            return "\(p): permission denied; add the user to the 'dialout' group (sudo usermod -aG dialout $USER, then log in again)"
        case .busy(let p): return "\(p): in use by another program (ModemManager, a terminal, another relay); stop it and retry"
        case .held(let p, let pid?): return "\(p): in use by process \(pid) (another relay?); stop it (kill \(pid)) or give this relay another port"
        case .held(let p, nil): return "\(p): in use by another process (another relay?); stop it or give this relay another port"
        case .invalidSpec(let s): return s
        case .closed(let p): return "\(p): device went away"
        case .io(let s): return s
        case .unreachable(let a, let why): return "\(a): cannot connect (\(why)); is the TNC or the relay there running?"
        case .timeout(let s): return s
        case .down(let n): return "link \(n) is down"
        case .handshake(let s): return s
        }
    }
}
