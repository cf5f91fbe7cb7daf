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
        case "rules":
            return try RuleThrottler(contentsOfFile: config.throttleRules, logger: telemetry.logger("breakwater.throttler"))
        default: return NullThrottler(logger: telemetry.logger("breakwater.throttler"))
        }
    }

    /// The start-up rule for a backend that talks to a service: `probe` failing definitively (see
    /// `DefinitiveFailure`: credentials refused, no such bucket) is invalid configuration and stops
    /// start-up; failing any other way (connection refused, timeout, DNS, 5xx) is an outage: the
    /// backend is used anyway, crashes wait in the outbox, and `/__heartbeat__` names the failing
    /// check. Every backend factory below applies it to its start-up check.
    public static func checkAtStart(_ what: String, telemetry: Telemetry, _ probe: () throws -> Void) throws {
        do {
            try probe()
        } catch let error where error.isDefinitive {
            throw StartupError("\(what): \(error)")
        } catch {
            telemetry.logger("breakwater.backends").error("unreachable at start-up; starting degraded (crashes wait in the outbox)",
                                                         metadata: ["backend": "\(what)", "error": "\(error)"])
        }
    }

    /// A storage whose start-up check passed, or failed only for an outage (`checkAtStart`).
    public static func storage(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> CrashStorage {
        switch config.crashStorage {
        case "fs":
            let storage: FilesystemCrashStorage
            do {
                storage = try FilesystemCrashStorage(root: config.fsRoot)
            } catch {
                throw StartupError("CRASHSTORAGE_FS_ROOT \(config.fsRoot) cannot be created: \(error)")
            }
            if case .error(let reason) = storage.check() { throw StartupError(reason) }
            return storage
        case "s3":
            guard !config.s3Bucket.isEmpty else { throw StartupError("CRASHSTORAGE=s3 needs CRASHSTORAGE_S3_BUCKET") }
            guard !config.awsAccessKeyID.isEmpty, !config.awsSecretAccessKey.isEmpty else {
                throw StartupError("CRASHSTORAGE=s3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            let credentials = SigV4Signer.Credentials(accessKeyID: config.awsAccessKeyID, secretAccessKey: config.awsSecretAccessKey,
                                                      sessionToken: config.awsSessionToken.isEmpty ? nil : config.awsSessionToken)
            let client: S3Client
            do {
                client = try S3Client(bucket: config.s3Bucket, endpoint: config.s3Endpoint, region: config.s3Region,
                                      credentials: credentials, requestTimeout: config.storageTimeout,
                                      timeoutPerMiB: config.storageTimeoutPerMiB)
            } catch {
                throw StartupError("\(error)")
            }
            let storage = S3CrashStorage(client: client, telemetry: telemetry)
            try storage.verifyWritable()
            return storage
        case "gcs": return try GCSCrashStorage.configured(config, telemetry: telemetry)
        default: return NullCrashStorage(logger: telemetry.logger("breakwater.crashstorage"))
        }
    }

    /// A queue whose start-up check passed, or failed only for an outage (`checkAtStart`).
    public static func queue(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> CrashQueue {
        switch config.crashQueue {
        case "rabbitmq":
            guard !config.rabbitmqURL.isEmpty else { throw StartupError("CRASHQUEUE=rabbitmq needs RABBITMQ_URL (or CLOUDAMQP_URL)") }
            let queue: RabbitMQCrashQueue
            do {
                // No more connections than workers can use at once.
                queue = try RabbitMQCrashQueue(url: config.rabbitmqURL, queue: config.rabbitmqQueue, telemetry: telemetry,
                                               poolSize: min(config.workers, 4))
            } catch {
                throw StartupError("cannot start the RabbitMQ crash queue: \(error)")
            }
            try checkAtStart("the RabbitMQ crash queue", telemetry: telemetry, queue.connect)
            return queue
        case "pubsub": return try PubSubCrashQueue.configured(config, telemetry: telemetry)
        default: return NullCrashQueue(logger: telemetry.logger("breakwater.crashqueue"))
        }
    }

    /// The local outbox, or nil when `SPOOL_DIR` is empty.
    public static func outbox(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> Outbox? {
        guard !config.spoolDir.isEmpty else { return nil }
        var policy = OutboxPolicy()
        policy.maxAttempts = config.spoolMaxAttempts
        policy.quarantineRefused = config.spoolQuarantineRefused
        policy.maxBackoff = max(config.spoolMaxBackoff, policy.initialBackoff)
        do {
            return try Outbox(directory: config.spoolDir, maxBytes: config.spoolMaxBytes, policy: policy, telemetry: telemetry)
        } catch {
            throw StartupError("SPOOL_DIR \(config.spoolDir) cannot be created: \(error)")
        }
    }
}
