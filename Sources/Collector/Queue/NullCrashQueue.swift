import Logging

/// The default queue: publishes nowhere, logging one line per crash ID it was given.
public struct NullCrashQueue: CrashQueue {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "breakwater.crashqueue")) { self.logger = logger }

    public var queues: Bool { false }

    public func publish(_ crashID: String) throws {
        logger.info("null queue: crash not queued", metadata: ["crash_id": "\(crashID)"])
    }

    public func check() -> HealthStatus { .ok }
}
