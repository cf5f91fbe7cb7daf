import Dispatch
import Foundation
import NIOCore
import Synchronization
import Telemetry

/// A fixed number of workers, each a long-running loop on its own serial Dispatch queue, fed from
/// one bounded queue. The event loops only enqueue; all pipeline work (decode, throttle, store,
/// publish) runs here. A full queue refuses work so the HTTP front can answer 503 at once instead
/// of holding the request.
///
/// Why loops on serial queues rather than one `async` per request: a block per request would let
/// Dispatch grow threads for work that blocks on I/O, and a queued block could not be refused or
/// counted. Here the number of threads is exactly `workers`, and the waiting line is ours.
public final class WorkerPool: Sendable {
    public typealias Work = @Sendable () -> Void

    private struct State: ~Copyable {
        /// Taken from the front; a taken slot leaves the buffer at once, so a request's body is
        /// freed when a worker takes it, not when the buffer is next compacted.
        var waiting = CircularBuffer<Work>()
        var running = 0
        var stopped = false
    }

    private let state = Mutex(State())
    /// One signal per queued item (and one per worker at stop): a worker sleeps here when idle.
    private let available = DispatchSemaphore(value: 0)
    /// Left when the queue and every worker are idle; `drain` waits on it.
    private let busy = DispatchGroup()
    /// Signalled by each worker loop as it exits, so `drain` can return only after they have.
    private let exited = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let workers: Int
    private let telemetry: Telemetry

    public init(workers: Int, queueCapacity: Int, telemetry: Telemetry) {
        self.capacity = queueCapacity
        self.workers = workers
        self.telemetry = telemetry
        for i in 0..<workers {
            DispatchQueue(label: "breakwater-worker-\(i)", qos: .userInitiated).async { self.workLoop() }
        }
    }

    /// Queues `work`; false when the queue is full or the pool is stopping.
    public func trySubmit(_ work: @escaping Work) -> Bool {
        let depth: Int? = state.withLock { state in
            guard !state.stopped, state.waiting.count < capacity else { return nil }
            state.waiting.append(work)
            busy.enter()
            return state.waiting.count
        }
        guard let depth else { return false }
        available.signal()
        telemetry.gauge(MetricCatalog.workerQueueDepth, Double(depth))
        return true
    }

    /// Requests queued or running.
    public var inFlight: Int {
        state.withLock { $0.waiting.count + $0.running }
    }

    /// Waits until every queued and running item is done, or `deadline` passes; then the workers
    /// exit. True when nothing was left undone.
    @discardableResult
    public func drain(until deadline: Date) -> Bool {
        let done = busy.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success
        let alreadyStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !alreadyStopped else { return done }
        for _ in 0..<workers { available.signal() }
        // Workers still on an item exit when it ends; wait for the idle ones only if all are done.
        if done { for _ in 0..<workers { exited.wait() } }
        return done
    }

    private func workLoop() {
        while true {
            available.wait()
            let next: (work: Work, depth: Int)? = state.withLock { state in
                guard let work = state.waiting.popFirst() else { return nil }
                state.running += 1
                return (work, state.waiting.count)
            }
            guard let next else {
                // Only a stop wakes a worker with nothing queued.
                exited.signal()
                return
            }
            // Lower the depth gauge too, or it would keep showing the last enqueue's depth.
            telemetry.gauge(MetricCatalog.workerQueueDepth, Double(next.depth))
            next.work()
            state.withLock { $0.running -= 1 }
            busy.leave()
        }
    }
}
