import Foundation

/// A fixed number of connection slots, each lent to one thread at a time: rabbitmq-c
/// connections must never be used by two threads at once. A slot may be empty (not yet
/// opened, or dropped after a failure); the borrower opens it.
final class AMQPConnectionPool: @unchecked Sendable {
    final class Slot {
        var connection: AMQPConnection?
    }

    private let condition = NSCondition()
    private var free: [Slot]

    init(size: Int) {
        free = (0..<max(size, 1)).map { _ in Slot() }
    }

    /// Runs `body` with a slot of its own, waiting up to `timeout` seconds for one to be free.
    /// Returns nil when none became free in time.
    func withSlot<T>(timeout: Double, _ body: (Slot) throws -> T) rethrows -> T? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        while free.isEmpty {
            if !condition.wait(until: deadline) && free.isEmpty {
                condition.unlock()
                return nil
            }
        }
        // The most recently used slot first: its connection is the likeliest to be open.
        let slot = free.removeLast()
        condition.unlock()
        defer {
            condition.lock()
            free.append(slot)
            condition.signal()
            condition.unlock()
        }
        return try body(slot)
    }
}
