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
        default: return NullCrashQueue()
        }
    }
}
