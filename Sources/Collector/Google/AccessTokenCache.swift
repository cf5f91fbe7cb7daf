import Foundation
import Synchronization
import Telemetry

/// Keeps the current token of a source and fetches the next one before the current one expires:
/// once less than a quarter of its lifetime (at most five minutes) is left. One fetch at a time;
/// the threads that need a token meanwhile wait for it rather than each asking Google.
public final class AccessTokenCache: Sendable {
    public let source: any AccessTokenSource
    private let current = Mutex<(value: String, refreshAt: UInt64)?>(nil)
    /// Held during a fetch, so concurrent callers share one.
    private let fetching = Mutex<Void>(())
    private let fetches = Atomic<Int>(0)

    public init(source: any AccessTokenSource) {
        self.source = source
    }

    /// A token valid for a while yet; fetches one when there is none or it is due for refresh.
    public func token() throws -> String {
        if let fresh = valid() { return fresh }
        return try fetching.withLock { _ throws -> String in
            if let fresh = valid() { return fresh }
            let token = try source.fetch()
            let margin = min(token.lifetime / 4, 300)
            let refreshAt = MonotonicClock.now() + UInt64(max(token.lifetime - margin, 0) * 1e9)
            current.withLock { $0 = (token.value, refreshAt) }
            fetches.add(1, ordering: .relaxed)
            return token.value
        }
    }

    /// Tokens fetched so far (the tests check refreshes with it).
    public var fetchCount: Int { fetches.load(ordering: .relaxed) }

    private func valid() -> String? {
        current.withLock { entry in
            guard let entry, MonotonicClock.now() < entry.refreshAt else { return nil }
            return entry.value
        }
    }
}
