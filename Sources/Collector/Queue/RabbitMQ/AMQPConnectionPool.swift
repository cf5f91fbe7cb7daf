import Dispatch
import Synchronization

/// A fixed number of connection slots, each lent to one thread at a time: rabbitmq-c
/// connections must never be used by two threads at once. A slot may be empty (not yet
/// opened, or dropped after a failure); the borrower opens it.
final class AMQPConnectionPool: Sendable {
    // @unchecked: a slot is only touched by the one thread that borrowed it from the pool, and the
    // pool's Mutex orders each hand-over, which is the rule rabbitmq-c connections need.
    final class Slot: @unchecked Sendable {
        var connection: AMQPConnection?
    }

    private let free: Mutex<[Slot]>
    /// One permit per free slot: borrowers wait here, not on the Mutex.
    private let permits: DispatchSemaphore

    init(size: Int) {
        let slots = (0..<max(size, 1)).map { _ in Slot() }
        free = Mutex(slots)
        permits = DispatchSemaphore(value: slots.count)
    }

    /// Runs `body` with a slot of its own, waiting up to `timeout` seconds for one to be free.
    /// Returns nil when none became free in time.
    func withSlot<T>(timeout: Double, _ body: (Slot) throws -> T) rethrows -> T? {
        guard permits.wait(timeout: .now() + timeout) == .success else { return nil }
        // The most recently used slot first: its connection is the likeliest to be open.
        let slot = free.withLock { $0.removeLast() }
        defer {
            free.withLock { $0.append(slot) }
            permits.signal()
        }
        return try body(slot)
    }
}
