/// What a throttler decided for one crash (see DESIGN.md, "Throttle results").
public enum ThrottleResult: String, Sendable, Codable, CaseIterable {
    case accept, `defer`, reject, fakeaccept

    /// The crash ID's throttle digit: 0 accept, 1 defer (others never reach storage; they get 0).
    public var digit: Character { self == .defer ? "1" : "0" }
    /// Stored: accept and defer.
    public var isStored: Bool { self == .accept || self == .defer }
    /// Queued for processing: accept only.
    public var isQueued: Bool { self == .accept }
}

public struct ThrottleDecision: Sendable, Equatable {
    public var result: ThrottleResult
    /// The rule that decided, e.g. `has_comments`, `NO_MATCH`, or `ACCEPT_ALL` for the null throttler.
    public var rule: String

    public init(_ result: ThrottleResult, rule: String) {
        self.result = result
        self.rule = rule
    }
}

/// Decides the fate of a crash from its annotations. Must be cheap and thread-safe:
/// every worker calls it concurrently.
public protocol Throttler: Sendable {
    func throttle(_ crash: CrashReport) -> ThrottleDecision
}
