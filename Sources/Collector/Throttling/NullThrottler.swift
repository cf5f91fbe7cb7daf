import Logging

/// The default throttler: accepts every crash, logging one `info` line per crash it looked at
/// (the seed's requirement holds at the default `LOG_LEVEL`).
public struct NullThrottler: Throttler {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "breakwater.throttler")) { self.logger = logger }

    public func throttle(_ crash: CrashReport) -> ThrottleDecision {
        // A client's product name, cut to 64 bytes: the line is written for every crash.
        let product = String(decoding: (crash.field("ProductName") ?? "").utf8.prefix(64), as: UTF8.self)
        logger.info("null throttler: accept", metadata: ["product": "\(product)"])
        return ThrottleDecision(.accept, rule: "ACCEPT_ALL")
    }
}
