import NIOConcurrencyHelpers
import Telemetry

/// Keeps a storage probe's answer for a few seconds, so load balancers polling `/__heartbeat__`
/// cost one probe per interval instead of one per poll.
final class CachedHealthCheck: @unchecked Sendable {
    private let ttlNanoseconds: UInt64
    private let probe: @Sendable () -> HealthStatus
    private let lock = NIOLock()
    private var last: (at: UInt64, status: HealthStatus)?

    init(ttl: Double = 5, probe: @escaping @Sendable () -> HealthStatus) {
        ttlNanoseconds = UInt64(ttl * 1e9)
        self.probe = probe
    }

    /// Concurrent callers wait for one probe rather than each running their own.
    func status() -> HealthStatus {
        lock.withLock {
            let now = MonotonicClock.now()
            if let last, now - last.at < ttlNanoseconds { return last.status }
            let status = probe()
            last = (now, status)
            return status
        }
    }
}
