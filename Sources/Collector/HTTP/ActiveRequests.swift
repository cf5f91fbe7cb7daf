import Foundation

/// Requests between their head and their answer, on every connection. Shutdown waits for this to
/// reach zero so a crash whose body is still arriving is finished, not cut off.
public final class ActiveRequests: @unchecked Sendable {
    private let condition = NSCondition()
    private var count = 0

    public init() {}

    func begin() {
        condition.lock()
        count += 1
        condition.unlock()
    }

    func end() {
        condition.lock()
        count -= 1
        condition.broadcast()
        condition.unlock()
    }

    public var current: Int {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    /// Waits until no request is active or `deadline` passes; true when none is.
    @discardableResult
    public func wait(until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count > 0 {
            if !condition.wait(until: deadline) { break }
        }
        return count == 0
    }
}
