import Foundation
import Telemetry

/// Chooses each backend from configuration. The only place that knows every implementation.
public enum Backends {
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public static func throttler(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> Throttler {
        switch config.throttler {
        default: return NullThrottler()
        }
    }

    public static func storage(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> CrashStorage {
        switch config.crashStorage {
        default: return NullCrashStorage()
        }
    }

    public static func queue(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> CrashQueue {
        switch config.crashQueue {
        case "rabbitmq":
            guard !config.rabbitmqURL.isEmpty else { throw StartupError("CRASHQUEUE=rabbitmq needs RABBITMQ_URL (or CLOUDAMQP_URL)") }
            do {
                // No more connections than workers can use at once.
                return try RabbitMQCrashQueue(url: config.rabbitmqURL, queue: config.rabbitmqQueue, telemetry: telemetry,
                                              poolSize: min(config.workers, 4))
            } catch {
                throw StartupError("cannot start the RabbitMQ crash queue: \(error)")
            }
        default: return NullCrashQueue()
        }
    }

    /// Where crash IDs wait when the queue did not take them in time: `SPOOL_DIR/publish-backlog`,
    /// surviving restarts, or memory when no spool folder is set.
    public static func publishBacklog(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> PublishBacklog {
        guard !config.spoolDir.isEmpty else { return PublishBacklog(telemetry: telemetry) }
        let path = (config.spoolDir as NSString).appendingPathComponent("publish-backlog")
        do {
            return try PublishBacklog(path: path, telemetry: telemetry)
        } catch {
            throw StartupError("cannot open the publish backlog \(path): \(error)")
        }
    }
}
