/// What a heartbeat check reports for one backend.
public enum HealthStatus: Sendable, Equatable {
    case ok
    /// Working, but an operator should look (a non-empty spool or publish backlog).
    case warning(String)
    case error(String)

    public var isFailing: Bool { if case .error = self { return true } else { return false } }
}
