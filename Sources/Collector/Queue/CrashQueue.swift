/// Where crash IDs go for processing. `publish` is synchronous, called from worker threads
/// concurrently, and returns only once the broker has the message; otherwise it throws.
public protocol CrashQueue: Sendable {
    func publish(_ crashID: String) throws
    /// A cheap probe for `/__heartbeat__`.
    func check() -> HealthStatus
    /// Publishes several IDs in order (the outbox drain), in as few calls as the queue allows.
    /// Returns how many from the front the queue has: all of them unless `failure` is set.
    func publish(batch crashIDs: [String]) -> (published: Int, failure: Error?)
    /// Whether a successful `publish` puts the ID anywhere (false for the null queue), so the
    /// audit line's `queued` never claims a crash was queued when nothing was. A queue that does
    /// waits on its broker: the worker pool lets the next crash use the CPU meanwhile.
    var queues: Bool { get }
}

extension CrashQueue {
    /// One call per ID, for queues without a batch call.
    public func publish(batch crashIDs: [String]) -> (published: Int, failure: Error?) {
        for (index, id) in crashIDs.enumerated() {
            do { try publish(id) } catch { return (index, error) }
        }
        return (crashIDs.count, nil)
    }

    public var queues: Bool { true }
}
