import Foundation
import Logging
import Telemetry

/// Saves a crash to storage under the save policy, reporting `save_crash`, `save_crash.bytes` and
/// `store.time`. Returns whether the crash is safely stored; a crash that is not must never get a
/// crash ID (the pipeline answers 503 `Discarded=retry_later` and the client sends it again).
///
/// Policy: a failed save is retried after an exponential backoff with jitter (half fixed, half
/// random, so collectors that lost storage together do not retry in step) for as long as the
/// next attempt starts within `budget` seconds of the first. A slow attempt can overrun the budget
/// by its own duration: backends bound each request (S3: `S3Client`'s request timeout).
public final class CrashSaver: Sendable {
    public let storage: CrashStorage
    private let telemetry: Telemetry
    private let logger: Logger
    private let budget: Double
    private let initialBackoff: Double
    private let maxBackoff: Double

    /// - Parameters:
    ///   - budget: seconds a save may take, retries included (`SAVE_BUDGET`).
    ///   - initialBackoff: seconds before the first retry; doubles after each, up to `maxBackoff`.
    public init(storage: CrashStorage, telemetry: Telemetry, budget: Double = CollectorConfiguration().saveBudget,
                initialBackoff: Double = 0.1, maxBackoff: Double = 2) {
        self.storage = storage
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.crashsaver")
        self.budget = budget
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    public func save(_ crash: StoredCrash) -> Bool {
        telemetry.timed(MetricCatalog.storeTime) {
            let start = MonotonicClock.now()
            var backoff = initialBackoff
            var attempt = 1
            while true {
                do {
                    try storage.save(crash)
                    telemetry.count(MetricCatalog.saveCrash, [("result", "success")])
                    telemetry.count(MetricCatalog.savedBytes, by: StorageKeys.objects(of: crash).reduce(0) { $0 + $1.bytes.readableBytes })
                    return true
                } catch {
                    let pause = backoff / 2 + Double.random(in: 0...(backoff / 2))
                    let elapsed = Double(MonotonicClock.now() - start) / 1e9
                    guard elapsed + pause < budget else {
                        telemetry.count(MetricCatalog.saveCrash, [("result", "failure")])
                        logger.error("save failed", metadata: ["crash_id": "\(crash.crashID)", "error": "\(error)",
                                                               "attempts": "\(attempt)", "elapsed_ms": "\(Int(elapsed * 1000))"])
                        return false
                    }
                    telemetry.count(MetricCatalog.saveCrash, [("result", "retry")])
                    logger.warning("save failed, retrying", metadata: ["crash_id": "\(crash.crashID)", "error": "\(error)",
                                                                       "attempt": "\(attempt)"])
                    Thread.sleep(forTimeInterval: pause)
                    backoff = min(backoff * 2, maxBackoff)
                    attempt += 1
                }
            }
        }
    }
}
