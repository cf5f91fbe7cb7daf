/// Where percentage splits get their random numbers. Injected so tests can be deterministic;
/// workers call it concurrently, so implementations must be thread-safe.
public protocol ThrottleRandomSource: Sendable {
    /// A number drawn uniformly from [0, 1).
    func next() -> Double
}

/// The production source: the system generator, which needs no shared state.
public struct SystemThrottleRandom: ThrottleRandomSource {
    public init() {}

    public func next() -> Double { Double.random(in: 0..<1) }
}
