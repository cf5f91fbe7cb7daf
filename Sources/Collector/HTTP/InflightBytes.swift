import NIOConcurrencyHelpers

/// The cap on request bytes held in memory across all in-flight requests. Each connection
/// reserves what it buffers; past the cap the request is refused 503 instead of buffered.
public final class InflightBytes: Sendable {
    private let held = NIOLockedValueBox(0)
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public func reserve(_ bytes: Int) -> Bool {
        held.withLockedValue { held in
            guard held + bytes <= limit else { return false }
            held += bytes
            return true
        }
    }

    public func release(_ bytes: Int) { held.withLockedValue { $0 -= bytes } }

    public var current: Int { held.withLockedValue { $0 } }
}
