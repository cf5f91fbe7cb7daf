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

    /// A storage that passed its start-up check: the root (fs) or the bucket (s3) takes writes.
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
            // A quarter of the save budget per request leaves room for retries when a request hangs.
            let client: S3Client
            do {
                client = try S3Client(bucket: config.s3Bucket, endpoint: config.s3Endpoint, region: config.s3Region,
                                      credentials: credentials, requestTimeout: max(config.saveBudget / 4, 0.5))
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
        case "pubsub": return try PubSubCrashQueue.configured(config, telemetry: telemetry)
        default: return NullCrashQueue(logger: telemetry.logger("breakwater.crashqueue"))
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
