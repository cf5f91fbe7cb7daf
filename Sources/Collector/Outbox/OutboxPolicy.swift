/// When the mover tries a record again and when it gives up on it (`SPOOL_*` settings).
public struct OutboxPolicy: Sendable {
    /// Seconds before a record's second attempt; doubles after each failure up to `maxBackoff`.
    public var initialBackoff: Double = 1
    public var maxBackoff: Double = 300
    /// Failed store attempts, made while storage's own check passed, before the record is
    /// quarantined; 0 never quarantines for attempts.
    public var maxAttempts = 20
    /// Whether a crash storage refuses definitively (a 4xx other than 408/429) is quarantined at once.
    public var quarantineRefused = true

    public init() {}

    /// The pause after a record's `attempts`-th failure: half fixed, half random, so records that
    /// failed together are not retried in step.
    func backoff(afterAttempts attempts: Int) -> Double {
        let full = min(maxBackoff, initialBackoff * Double(1 << min(max(attempts - 1, 0), 30)))
        return full / 2 + Double.random(in: 0...(full / 2))
    }
}
