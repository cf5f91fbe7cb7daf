import Foundation
import Logging
import NIOConcurrencyHelpers
import Telemetry

/// Saves a crash to storage under the save policy, reporting `save_crash`, `save_crash.bytes` and
/// `store.time`. Says whether the crash is safely stored, or spooled locally; a crash that is
/// neither must never get a crash ID (the pipeline answers 503 `Discarded=retry_later` and the
/// client sends it again).
///
/// Policy: a failed save is retried after an exponential backoff with jitter (half fixed, half
/// random, so collectors that lost storage together do not retry in step) for as long as the
/// next attempt starts within `budget` seconds of the first. A slow attempt can overrun the budget
/// by its own duration: backends bound each request (S3: `S3Client`'s request timeout).
///
/// With a spool, a crash the budget could not save is spooled instead, and for `outageHold`
/// seconds after that new crashes go straight to the spool: while storage is down, workers must
/// not each spend the whole budget on it. The `SpoolDrainer` moves them to storage later.
public final class CrashSaver: Sendable {
    public enum Result: Sendable, Equatable { case stored, spooled, failed }

    public let spool: CrashSpool?
    private let outageHold: Double
    /// Monotonic nanoseconds until which storage is presumed down.
    private let outageUntil = NIOLockedValueBox<UInt64>(0)
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
                initialBackoff: Double = 0.1, maxBackoff: Double = 2, spool: CrashSpool? = nil, outageHold: Double = 5) {
        self.storage = storage
        self.spool = spool
        self.outageHold = outageHold
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.crashsaver")
        self.budget = budget
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// - Parameter queue: whether the crash is to be queued once stored (kept with a spooled crash).
    public func save(_ crash: StoredCrash, queue: Bool = true) -> Result {
        if let spool, MonotonicClock.now() < outageUntil.withLockedValue({ $0 }) {
            return spool.write(crash, queue: queue) ? .spooled : .failed
        }
        if saveWithinBudget(crash) { return .stored }
        guard let spool else { return .failed }
        outageUntil.withLockedValue { $0 = MonotonicClock.now() + UInt64(outageHold * 1e9) }
        return spool.write(crash, queue: queue) ? .spooled : .failed
    }

    /// Storage answered again (the drainer saved a crash): stop sending crashes straight to the spool.
    public func storageRecovered() { outageUntil.withLockedValue { $0 = 0 } }

    private func saveWithinBudget(_ crash: StoredCrash) -> Bool {
        telemetry.timed(MetricCatalog.storeTime) {
            let start = MonotonicClock.now()
            var backoff = initialBackoff
            var attempt = 1
            while true {
                do {
                    try storage.save(crash)
                    telemetry.count(MetricCatalog.saveCrash, [("result", "success")])
                    telemetry.count(MetricCatalog.savedBytes, by: crash.storedBytes)
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
