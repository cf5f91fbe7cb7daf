import Logging

/// The default throttler: accepts every crash, logging one line per crash it looked at.
public struct NullThrottler: Throttler {
    private let logger = Logger(label: "breakwater.throttler")

    public init() {}

    public func throttle(_ crash: CrashReport) -> ThrottleDecision {
        logger.debug("null throttler: accept", metadata: ["product": "\(crash.field("ProductName") ?? "")"])
        return ThrottleDecision(.accept, rule: "ACCEPT_ALL")
    }
}
