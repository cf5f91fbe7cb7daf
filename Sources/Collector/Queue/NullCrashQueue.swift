import Logging

/// The default queue: publishes nowhere, logging one line per crash ID it was given.
public struct NullCrashQueue: CrashQueue {
    private let logger = Logger(label: "breakwater.crashqueue")

    public init() {}

    public func publish(_ crashID: String) throws {
        logger.info("null queue: crash not queued", metadata: ["crash_id": "\(crashID)"])
    }

    public func check() -> HealthStatus { .ok }
}
