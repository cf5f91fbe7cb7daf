import Foundation
import Logging
import NIOConcurrencyHelpers
import Telemetry

/// Saves a crash to storage under the save policy, reporting `save_crash`, `save_crash.bytes` and
/// `store.time`. Says whether the crash is stored; one that is not goes to the outbox, or, without
/// one, must never get a crash ID (the pipeline answers 503 `Discarded=retry_later`).
///
/// Policy: a failed save is retried after an exponential backoff with jitter (half fixed, half
/// random, so collectors that lost storage together do not retry in step) for as long as the
/// next attempt starts within `budget` seconds of the first. A slow attempt can overrun the budget
/// by its own duration: backends bound each request (S3: `S3Client`'s request timeout).
///
/// After a save the budget could not complete, for `outageHold` seconds new crashes are not
/// tried at all (they go straight to the outbox): while storage is down, workers must not each
/// spend the whole budget on it. The outbox's mover ends the hold as soon as it stores a crash.
public final class CrashSaver: Sendable {
    public enum Result: Sendable, Equatable { case stored, failed }

    public let storage: CrashStorage
    private let outageHold: Double
    /// Monotonic nanoseconds until which storage is presumed down.
    private let outageUntil = NIOLockedValueBox<UInt64>(0)
    private let telemetry: Telemetry
    private let logger: Logger
    private let budget: Double
    private let initialBackoff: Double
    private let maxBackoff: Double

    /// - Parameters:
    ///   - budget: seconds a save may take, retries included (`SAVE_BUDGET`).
    ///   - initialBackoff: seconds before the first retry; doubles after each, up to `maxBackoff`.
    ///   - outageHold: seconds after a failed save during which crashes are not tried (0: always try,
    ///     as without an outbox, where a skipped save is a 503).
    public init(storage: CrashStorage, telemetry: Telemetry, budget: Double = CollectorConfiguration().saveBudget,
                initialBackoff: Double = 0.1, maxBackoff: Double = 2, outageHold: Double = 0) {
        self.storage = storage
        self.outageHold = outageHold
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.crashsaver")
        self.budget = budget
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    public func save(_ crash: StoredCrash) -> Result {
        if MonotonicClock.now() < outageUntil.withLockedValue({ $0 }) { return .failed }
        if saveWithinBudget(crash) { return .stored }
        if outageHold > 0 { outageUntil.withLockedValue { $0 = MonotonicClock.now() + UInt64(outageHold * 1e9) } }
        return .failed
    }

    /// Storage answered again (the mover stored a crash): stop skipping saves.
    public func storageRecovered() { outageUntil.withLockedValue { $0 = 0 } }

    /// A save succeeded: counted when the storage keeps crashes (the null storage keeps none, and
    /// dashboards must not show it storing).
    func countSaved(_ crash: StoredCrash) {
        guard storage.keeps else { return }
        telemetry.count(MetricCatalog.saveCrash, ("result", "success"))
        telemetry.count(MetricCatalog.savedBytes, by: crash.storedBytes)
    }

    private func saveWithinBudget(_ crash: StoredCrash) -> Bool {
        telemetry.timed(MetricCatalog.storeTime) {
            let start = MonotonicClock.now()
            var backoff = initialBackoff
            var attempt = 1
            while true {
                do {
                    try storage.save(crash)
                    countSaved(crash)
                    return true
                } catch {
                    let pause = backoff / 2 + Double.random(in: 0...(backoff / 2))
                    let elapsed = Double(MonotonicClock.now() - start) / 1e9
                    // A definitive refusal will not pass by retrying within the budget.
                    guard elapsed + pause < budget, !error.isDefinitive else {
                        telemetry.count(MetricCatalog.saveCrash, ("result", "failure"))
                        logger.error("save failed", metadata: ["crash_id": "\(crash.crashID)", "error": "\(error)",
                                                               "attempts": "\(attempt)", "elapsed_ms": "\(Int(elapsed * 1000))"])
                        return false
                    }
                    telemetry.count(MetricCatalog.saveCrash, ("result", "retry"))
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
