import Logging

/// The default storage: keeps nothing, logging one line per crash it was asked to store.
public struct NullCrashStorage: CrashStorage {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "breakwater.crashstorage")) { self.logger = logger }

    public func save(_ crash: StoredCrash) throws {
        logger.info("null storage: crash not kept", metadata: ["crash_id": "\(crash.crashID)", "dumps": "\(crash.dumpNames.joined(separator: ","))"])
    }

    public func check() -> HealthStatus { .ok }

    public func crashIDs(onDate date: String) throws -> [String] { [] }

    /// A log line is no wait worth a thread hop (handing the CPU slot on doubled a small crash's CPU).
    public var waitsOnIO: Bool { false }
    public var keeps: Bool { false }
}
