import Foundation
import Logging
import Telemetry

/// Puts a stored crash's ID on the queue, retrying within the publish budget, reporting
/// `publish_crash` (`result:success|retry|failure`) and `publish.time`. What the broker did not
/// take within the budget goes to the publish backlog, which keeps retrying in the background:
/// the crash is stored, so the client still gets its crash ID.
public final class QueuePublisher: Sendable {
    public let queue: CrashQueue
    public let backlog: PublishBacklog
    /// Seconds a publish may spend retrying before the ID goes to the backlog. An attempt
    /// already started finishes (bounded by the queue's own timeouts).
    public let budget: Double
    private let telemetry: Telemetry
    private let logger: Logger

    /// - Parameter backlog: where unqueued IDs wait; an in-memory one when nil. Starts draining into `queue`.
    public init(queue: CrashQueue, telemetry: Telemetry, backlog: PublishBacklog? = nil, budget: Double = 3) {
        self.queue = queue
        self.backlog = backlog ?? PublishBacklog(telemetry: telemetry)
        self.budget = budget
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.publisher")
        self.backlog.startDraining(into: queue)
    }

    /// Returns true when the broker has the ID now, false when it went to the backlog.
    public func publish(_ crashID: String) -> Bool {
        telemetry.timed(MetricCatalog.publishTime) {
            let deadline = Date(timeIntervalSinceNow: budget)
            var delay = Backoff(initial: 0.05, maximum: 1)
            while true {
                do {
                    try queue.publish(crashID)
                    telemetry.count(MetricCatalog.publishCrash, [("result", "success")])
                    return true
                } catch {
                    // A non-empty backlog means the broker is already known to be failing: one
                    // attempt, so workers are not all held for the whole budget.
                    let remaining = deadline.timeIntervalSinceNow
                    if remaining > 0 && backlog.count == 0 {
                        telemetry.count(MetricCatalog.publishCrash, [("result", "retry")])
                        logger.warning("publish failed; retrying", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                        Thread.sleep(forTimeInterval: min(delay.next(), remaining))
                        continue
                    }
                    telemetry.count(MetricCatalog.publishCrash, [("result", "failure")])
                    logger.error("publish failed; crash ID goes to the publish backlog",
                                 metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                    backlog.add(crashID)
                    return false
                }
            }
        }
    }

    /// Graceful shutdown: gives the backlog until `deadline` to reach the queue, then stops
    /// retrying. Returns whether nothing is left.
    @discardableResult
    public func flush(until deadline: Date) -> Bool {
        backlog.stop(waitingUntil: deadline)
    }

    /// For `/__heartbeat__`: warning while crash IDs wait in the backlog, error above its threshold.
    public func check() -> HealthStatus { backlog.check() }
}
