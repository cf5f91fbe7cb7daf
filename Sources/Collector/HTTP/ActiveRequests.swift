import Dispatch
import Foundation
import Synchronization

/// Requests between their head and their answer, on every connection. Shutdown waits for this to
/// reach zero so a crash whose body is still arriving is finished, not cut off.
public final class ActiveRequests: Sendable {
    private let count = Atomic<Int>(0)
    /// Entered per active request; `wait` blocks on it.
    private let group = DispatchGroup()

    public init() {}

    func begin() {
        group.enter()
        count.add(1, ordering: .relaxed)
    }

    func end() {
        count.subtract(1, ordering: .relaxed)
        group.leave()
    }

    public var current: Int { count.load(ordering: .relaxed) }

    /// Waits until no request is active or `deadline` passes; true when none is.
    @discardableResult
    public func wait(until deadline: Date) -> Bool {
        group.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success
    }
}
