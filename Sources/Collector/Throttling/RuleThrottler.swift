import Foundation
import Logging

/// The rule throttler (`THROTTLER=rules`): tries the rules of a rule file in order; the first
/// rule that matches and decides wins, `continue` goes on, and the file's default (reject with
/// rule `NO_MATCH` unless set) covers the rest. Immutable after load, so workers share it freely.
public struct RuleThrottler: Throttler {
    let rules: [ThrottleRule]
    let fallback: ThrottleDecision
    private let random: ThrottleRandomSource
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// Loads `path`, refusing a bad file with a `ThrottleRuleError` naming file, rule and problem.
    /// - Parameters:
    ///   - random: dice for percentage results.
    ///   - now: the clock BuildID ages are measured against.
    public init(contentsOfFile path: String, random: ThrottleRandomSource = SystemThrottleRandom(),
                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "breakwater.throttler")) throws {
        self.init(try ThrottleRuleFile.load(contentsOfFile: path), random: random, now: now, logger: logger)
    }

    /// Rules from text; `file` names it in errors.
    public init(text: String, file: String, random: ThrottleRandomSource = SystemThrottleRandom(),
                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "breakwater.throttler")) throws {
        self.init(try ThrottleRuleFile.parse(text, file: file), random: random, now: now, logger: logger)
    }

    private init(_ set: ThrottleRuleSet, random: ThrottleRandomSource, now: @escaping @Sendable () -> Date, logger: Logger) {
        rules = set.rules
        fallback = set.fallback
        self.random = random
        self.now = now
        self.logger = logger
    }

    public func throttle(_ crash: CrashReport) -> ThrottleDecision {
        let decision = decide(crash)
        // No crash ID exists yet (it carries the result); a client-chosen one or the product names the crash.
        logger.debug("\(crash.field("uuid") ?? crash.field("ProductName") ?? "crash"): matched by \(decision.rule); returned \(decision.result.rawValue.uppercased())")
        return decision
    }

    private func decide(_ crash: CrashReport) -> ThrottleDecision {
        let now = self.now()
        for rule in rules where rule.condition.matches(nil, in: crash, now: now) {
            if case .decide(let result) = rule.outcome.resolve(random) {
                return ThrottleDecision(result, rule: rule.name)
            }
        }
        return fallback
    }
}
