/// Link failures, each with what the operator can do about it.
public enum LinkError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case permissionDenied(String)
    case busy(String)
    case invalidSpec(String)
    /// The device or peer went away (unplugged, closed, reset).
    case closed(String)
    case io(String)
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
        case .invalidSpec(let s): return s
        case .closed(let p): return "\(p): device went away"
        case .io(let s): return s
        case .timeout(let s): return s
        case .down(let n): return "link \(n) is down"
        case .handshake(let s): return s
        }
    }
}
