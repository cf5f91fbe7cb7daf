import Logging
import Telemetry

/// Puts a stored crash's ID on the queue, reporting `publish_crash` and `publish.time`.
/// Returns whether the broker has it.
public final class QueuePublisher: Sendable {
    public let queue: CrashQueue
    private let telemetry: Telemetry
    private let logger: Logger

    public init(queue: CrashQueue, telemetry: Telemetry) {
        self.queue = queue
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.publisher")
    }

    public func publish(_ crashID: String) -> Bool {
        telemetry.timed(MetricCatalog.publishTime) {
            do {
                try queue.publish(crashID)
                telemetry.count(MetricCatalog.publishCrash, [("result", "success")])
                return true
            } catch {
                telemetry.count(MetricCatalog.publishCrash, [("result", "failure")])
                logger.error("publish failed", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                return false
            }
        }
    }
}
