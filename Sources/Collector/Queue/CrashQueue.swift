/// Where crash IDs go for processing. `publish` is synchronous, called from worker threads
/// concurrently, and returns only once the broker has the message; otherwise it throws.
public protocol CrashQueue: Sendable {
    func publish(_ crashID: String) throws
    /// A cheap probe for `/__heartbeat__`.
    func check() -> HealthStatus
    /// Whether a successful `publish` puts the ID anywhere (false for the null queue), so the
    /// audit line's `queued` never claims a crash was queued when nothing was.
    var queues: Bool { get }
}

extension CrashQueue {
    public var queues: Bool { true }
}
