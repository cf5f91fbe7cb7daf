/// Exponential backoff: each failure doubles the delay up to a cap; a success starts over.
/// A value type, not thread-safe: its owner guards it.
struct Backoff: Sendable {
    let initial: Double
    let maximum: Double
    private(set) var current: Double

    init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = maximum
        current = initial
    }

    /// The delay to wait after this failure.
    mutating func next() -> Double {
        defer { current = min(current * 2, maximum) }
        return current
    }

    mutating func reset() { current = initial }
}
