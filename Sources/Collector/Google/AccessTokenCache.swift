import Dispatch
import Foundation
import Synchronization
import Telemetry

/// Keeps the current token of a source and fetches the next one before the current one expires:
/// once less than a quarter of its lifetime (at most five minutes) is left, one fetch starts in the
/// background while every caller goes on with the current token. Callers wait only when there is
/// no token left that is still valid (at start, or after the token endpoint failed for the whole
/// margin), then for one fetch shared by all; a failed fetch is remembered for a few seconds, so
/// the callers queued behind it fail at once instead of each waiting out its own timeout.
public final class AccessTokenCache: Sendable {
    public let source: any AccessTokenSource

    private struct Entry {
        let value: String
        /// When a background refresh is due.
        var refreshAt: UInt64
        /// When the token stops being used (a little before Google's expiry).
        let expiresAt: UInt64
    }

    private struct Failure: Error, CustomStringConvertible {
        let description: String
        let at: UInt64
    }

    private let current = Mutex<Entry?>(nil)
    /// Held during a fetch, so concurrent callers share one.
    private let fetching = Mutex<Failure?>(nil)
    private let refreshing = Atomic<Bool>(false)
    private let fetches = Atomic<Int>(0)

    /// How long a failed fetch answers the callers that waited for it.
    static let failureMemory: UInt64 = 2_000_000_000
    /// How long after a failed background refresh the next one starts.
    static let refreshRetry: UInt64 = 10_000_000_000

    public init(source: any AccessTokenSource) {
        self.source = source
    }

    /// A valid token: the current one (refreshed in the background once due), or a fetched one
    /// when none is valid.
    public func token() throws -> String {
        if let entry = current.withLock({ $0 }), MonotonicClock.now() < entry.expiresAt {
            if MonotonicClock.now() >= entry.refreshAt { refreshInBackground() }
            return entry.value
        }
        return try fetching.withLock { failure throws -> String in
            let now = MonotonicClock.now()
            if let entry = current.withLock({ $0 }), now < entry.expiresAt { return entry.value }
            if let failure, now - failure.at < Self.failureMemory { throw failure }
            do {
                failure = nil
                return try fetch()
            } catch {
                failure = Failure(description: "\(error)", at: MonotonicClock.now())
                throw error
            }
        }
    }

    /// Tokens fetched so far (the tests check refreshes with it).
    public var fetchCount: Int { fetches.load(ordering: .relaxed) }

    /// One refresh at a time, off the caller's thread. A failure leaves the current token in use
    /// and tries again `refreshRetry` later.
    private func refreshInBackground() {
        guard refreshing.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            defer { refreshing.store(false, ordering: .releasing) }
            fetching.withLock { _ in
                guard let entry = current.withLock({ $0 }), MonotonicClock.now() >= entry.refreshAt else { return }
                if (try? fetch()) == nil {
                    current.withLock { $0?.refreshAt = MonotonicClock.now() + Self.refreshRetry }
                }
            }
        }
    }

    private func fetch() throws -> String {
        let token = try source.fetch()
        let now = MonotonicClock.now()
        let margin = min(token.lifetime / 4, 300)
        let entry = Entry(value: token.value,
                          refreshAt: now + UInt64(max(token.lifetime - margin, 0) * 1e9),
                          expiresAt: now + UInt64(max(token.lifetime - min(token.lifetime / 20, 30), 0) * 1e9))
        current.withLock { $0 = entry }
        fetches.add(1, ordering: .relaxed)
        return token.value
    }
}
