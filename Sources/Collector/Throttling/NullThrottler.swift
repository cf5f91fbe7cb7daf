import Logging

/// The default throttler: accepts every crash, logging one `info` line per crash it looked at
/// (the seed's requirement holds at the default `LOG_LEVEL`).
public struct NullThrottler: Throttler {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "breakwater.throttler")) { self.logger = logger }

    public func throttle(_ crash: CrashReport) -> ThrottleDecision {
        // A client's product name, cut short: the line is written for every crash.
        logger.info("null throttler: accept", metadata: ["product": "\(crash.field("ProductName")?.prefix(64) ?? "")"])
        return ThrottleDecision(.accept, rule: "ACCEPT_ALL")
    }
}
