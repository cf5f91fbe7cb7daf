import NIOCore
import Synchronization

/// One request's share of `InflightBytes`: the wire bytes the HTTP front handed over with the
/// request, and the decompressed bytes decoders reserve before producing them. Released whole
/// when the request is answered.
public final class MemoryLease: Sendable {
    private let budget: InflightBytes?
    private let held: Mutex<Int>

    /// - Parameters:
    ///   - budget: the shared cap; nil for a lease without one (tools, decoder tests, the fuzzer).
    ///   - holding: bytes already reserved from `budget` that this lease now owns.
    public init(budget: InflightBytes?, holding: Int = 0) {
        self.budget = budget
        held = Mutex(holding)
    }

    /// A lease with no cap.
    public static var unlimited: MemoryLease { MemoryLease(budget: nil) }

    public var bytes: Int { held.withLock { $0 } }

    /// Reserves `count` more bytes, or throws `InflightBytes.Exhausted`.
    public func reserve(_ count: Int) throws {
        guard count > 0 else { return }
        if let budget, !budget.reserve(count) { throw InflightBytes.Exhausted() }
        held.withLock { $0 += count }
    }

    /// Returns `count` bytes to the budget (memory freed before the request ends).
    public func release(_ count: Int) {
        held.withLock { $0 -= count }
        budget?.release(count)
    }

    /// Returns everything to the budget.
    public func releaseAll() {
        let count = held.withLock { held in
            defer { held = 0 }
            return held
        }
        budget?.release(count)
    }

    /// A new buffer of `capacity` bytes, reserved first.
    public func allocate(_ capacity: Int) throws -> ByteBuffer {
        try reserve(capacity)
        let buffer = ByteBufferAllocator().buffer(capacity: capacity)
        try reserve(buffer.capacity - capacity)
        return buffer
    }

    /// Grows `buffer` to at least `capacity` bytes, reserving the growth before any of it is written.
    public func grow(_ buffer: inout ByteBuffer, to capacity: Int) throws {
        let before = buffer.capacity
        guard capacity > before else { return }
        try reserve(capacity - before)
        buffer.reserveCapacity(capacity)
        try reserve(buffer.capacity - capacity)
    }
}
