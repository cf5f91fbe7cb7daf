import Foundation
import Logging
import NIOConcurrencyHelpers
import Telemetry

/// Puts a stored crash's ID on the queue, retrying within the publish budget, reporting
/// `publish_crash` (`result:success|retry|failure`) and `publish.time`. An ID the broker did not
/// take goes to the outbox (the pipeline's part), whose mover keeps offering it.
///
/// After a publish the budget could not complete, for `outageHold` seconds the broker is known to
/// be failing: with an outbox to hold the IDs, new ones are not offered to it at all (an attempt
/// at a hung broker takes its own timeouts, past the budget, and every worker would wait on one);
/// without one, each gets a single attempt. The outbox's mover probes it meanwhile.
public final class QueuePublisher: Sendable {
    public let queue: CrashQueue
    /// Seconds a publish may spend retrying. An attempt already started finishes (bounded by the
    /// queue's own timeouts).
    public let budget: Double
    private let outageHold: Double
    /// Whether IDs skip the broker during the hold (an outbox keeps them).
    private let skipsWhileDown: Bool
    /// Monotonic nanoseconds until which the queue is presumed down.
    private let outageUntil = NIOLockedValueBox<UInt64>(0)
    private let telemetry: Telemetry
    private let logger: Logger

    public init(queue: CrashQueue, telemetry: Telemetry, budget: Double = 3, outageHold: Double = 5, skipsWhileDown: Bool = false) {
        self.queue = queue
        self.budget = budget
        self.outageHold = outageHold
        self.skipsWhileDown = skipsWhileDown
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.publisher")
    }

    /// Returns true once the broker confirmed the ID.
    public func publish(_ crashID: String) -> Bool {
        let held = MonotonicClock.now() < outageUntil.withLockedValue { $0 }
        if held && skipsWhileDown { return false }
        return telemetry.timed(MetricCatalog.publishTime) {
            let deadline = Date(timeIntervalSinceNow: budget)
            var delay = Backoff(initial: 0.05, maximum: 1)
            while true {
                do {
                    try queue.publish(crashID)
                    countPublished()
                    return true
                } catch {
                    let remaining = deadline.timeIntervalSinceNow
                    if remaining > 0 && !held {
                        telemetry.count(MetricCatalog.publishCrash, ("result", "retry"))
                        logger.warning("publish failed; retrying", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                        Thread.sleep(forTimeInterval: min(delay.next(), remaining))
                        continue
                    }
                    telemetry.count(MetricCatalog.publishCrash, ("result", "failure"))
                    logger.error("publish failed", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                    if !held { queueFailed() }
                    return false
                }
            }
        }
    }

    /// Publishes succeeded: counted when the queue puts IDs anywhere (not the null queue).
    func countPublished(_ count: Int = 1) {
        if queue.queues { telemetry.count(MetricCatalog.publishCrash, ("result", "success"), by: count) }
    }

    /// The queue is failing (a publish ran out of budget, or the outbox's probe failed): hold back
    /// for `outageHold` seconds from now. The probes keep the hold while the outage lasts.
    public func queueFailed() {
        outageUntil.withLockedValue { $0 = MonotonicClock.now() + UInt64(outageHold * 1e9) }
    }

    /// The broker took an ID again (the mover published one): stop holding back.
    public func queueRecovered() { outageUntil.withLockedValue { $0 = 0 } }
}
