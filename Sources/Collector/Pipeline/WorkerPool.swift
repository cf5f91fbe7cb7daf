import Foundation
import NIOConcurrencyHelpers
import Telemetry

/// A fixed set of worker threads fed from a bounded queue. The event loops only enqueue;
/// all pipeline work (decode, throttle, store, publish) runs here. A full queue refuses work
/// so the HTTP front can answer 503 at once instead of holding the request.
public final class WorkerPool: @unchecked Sendable {
    private let condition = NSCondition()
    /// Queued work, taken at `head`. A taken slot is emptied at once, so a request's body is freed
    /// when it is answered, not when the array is next compacted.
    private var pending: [(() -> Void)?] = []
    private var head = 0
    private var running = 0
    private var stopped = false
    private let capacity: Int
    private var threads: [Thread] = []
    private let telemetry: Telemetry

    public init(workers: Int, queueCapacity: Int, telemetry: Telemetry) {
        self.capacity = queueCapacity
        self.telemetry = telemetry
        for i in 0..<workers {
            let thread = Thread { [unowned self] in self.workLoop() }
            thread.name = "breakwater-worker-\(i)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Queues `work`; false when the queue is full or the pool is stopping.
    public func trySubmit(_ work: @escaping () -> Void) -> Bool {
        condition.lock()
        let waiting = pending.count - head
        guard !stopped, waiting < capacity else {
            condition.unlock()
            return false
        }
        pending.append(work)
        condition.signal()
        condition.unlock()
        telemetry.gauge(MetricCatalog.workerQueueDepth, Double(waiting + 1))
        return true
    }

    /// Requests queued or running.
    public var inFlight: Int {
        condition.lock()
        defer { condition.unlock() }
        return pending.count - head + running
    }

    /// Waits until every queued and running item is done, or `deadline` passes; then the workers exit.
    @discardableResult
    public func drain(until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while pending.count - head + running > 0 {
            if !condition.wait(until: deadline) { break }
        }
        stopped = true
        condition.broadcast()
        return pending.count - head + running == 0
    }

    private func workLoop() {
        while true {
            condition.lock()
            while head == pending.count && !stopped { condition.wait() }
            if head == pending.count && stopped {
                condition.unlock()
                return
            }
            let work = pending[head]!
            pending[head] = nil
            head += 1
            if head == pending.count || (head > 1024 && head * 2 > pending.count) {
                pending.removeFirst(head)
                head = 0
            }
            running += 1
            let waiting = pending.count - head
            condition.unlock()
            // Lower the depth gauge too, or it would keep showing the last enqueue's depth.
            telemetry.gauge(MetricCatalog.workerQueueDepth, Double(waiting))

            work()

            condition.lock()
            running -= 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
