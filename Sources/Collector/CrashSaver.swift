import Logging
import Telemetry

/// Saves a crash to storage under the save policy, reporting `save_crash` and `store.time`.
/// Returns whether the crash is safely stored; a crash that is not must never get a crash ID.
public final class CrashSaver: Sendable {
    public let storage: CrashStorage
    private let telemetry: Telemetry
    private let logger: Logger

    public init(storage: CrashStorage, telemetry: Telemetry) {
        self.storage = storage
        self.telemetry = telemetry
        self.logger = telemetry.logger("breakwater.crashsaver")
    }

    public func save(_ crash: StoredCrash) -> Bool {
        telemetry.timed(MetricCatalog.storeTime) {
            do {
                try storage.save(crash)
                telemetry.count(MetricCatalog.saveCrash, [("result", "success")])
                return true
            } catch {
                telemetry.count(MetricCatalog.saveCrash, [("result", "failure")])
                logger.error("save failed", metadata: ["crash_id": "\(crash.crashID)", "error": "\(error)"])
                return false
            }
        }
    }
}
