import Dispatch
import Foundation
import NIOCore
import Synchronization
import Telemetry

/// Worker threads, each a long-running loop on its own serial Dispatch queue, fed from one bounded
/// queue. The event loops only enqueue; all pipeline work (decode, throttle, store, publish) runs
/// here. A full queue refuses work so the HTTP front can answer 503 at once instead of holding the
/// request.
///
/// `workers` crashes use the CPU at once (decode, hash, JSON). A crash whose pipeline reaches a
/// storage or queue that waits on I/O calls `nowWaitingOnIO()` and hands its CPU slot to the next
/// queued crash while it waits for fsyncs, PUTs and the broker: with a slot per crash for its
/// whole life, storage latency capped throughput at `workers / latency` whatever the CPU could do
/// (docs/performance.md, "Issue 16, sixth pass"). Threads beyond `workers` are started only for
/// that, up to `threadsPerWorker × workers` crashes taken at once; memory stays bounded by
/// `MAX_INFLIGHT_BYTES`, which counts every body whatever holds it.
///
/// Why loops on serial queues rather than one `async` per request: a block per request would let
/// Dispatch grow threads for work that blocks on I/O, and a queued block could not be refused or
/// counted. Here the number of threads is bounded, and the waiting line is ours.
public final class WorkerPool: Sendable {
    public typealias Work = @Sendable () -> Void

    /// Threads per CPU slot: the crashes that may wait on storage or the queue while others decode.
    public static let threadsPerWorker = 4

    private struct State: ~Copyable {
        /// Taken from the front; a taken slot leaves the buffer at once, so a request's body is
        /// freed when a worker takes it, not when the buffer is next compacted.
        var waiting = CircularBuffer<Work>()
        /// Items taken and not finished, on the CPU or waiting on I/O.
        var running = 0
        /// Items holding a CPU slot.
        var onCPU = 0
        /// Threads woken and not yet looking for an item.
        var waking = 0
        /// Idle threads, the last one to go idle on top: waking it reuses a warm thread (its stack,
        /// its malloc arena) instead of rotating through all of them, which cost a small crash 1.2×
        /// the CPU and the process 3–8 MB more resident memory.
        var idle: [Int] = []
        var stopped = false

        /// Takes the next item if a CPU slot is free.
        mutating func take() -> (work: Work, depth: Int)? {
            guard onCPU < slots, let work = waiting.popFirst() else { return nil }
            running += 1
            onCPU += 1
            return (work, waiting.count)
        }

        /// The thread to wake (or start) now, if a free slot with a queued item has no thread
        /// coming for it. Each event (an item queued, a slot handed on) adds at most one such pair,
        /// and a thread that finishes an item looks for the next itself, so one is enough.
        mutating func threadToWake() -> Wake? {
            guard waking < min(waiting.count, slots - onCPU) else { return nil }
            if let thread = idle.popLast() {
                waking += 1
                return .wake(thread)
            }
            guard started < maxThreads else { return nil }
            waking += 1
            started += 1
            return .start(started - 1)
        }

        /// Threads started: `slots` at first, more only once crashes wait on I/O (so a collector
        /// whose backends never wait has no more threads, nor their memory, than `WORKERS`).
        var started: Int
        let slots: Int
        let maxThreads: Int
        init(slots: Int, maxThreads: Int) {
            self.slots = slots
            self.maxThreads = maxThreads
            started = slots
        }
    }

    /// What a pool thread knows about the item it runs, found by `nowWaitingOnIO()`.
    private final class Seat: Sendable {
        let pool: WorkerPool
        let holdsSlot = Atomic(false)
        init(pool: WorkerPool) { self.pool = pool }
    }

    /// The running pool thread's seat, unretained: set while its loop runs (which keeps the seat
    /// alive) and cleared before the loop returns its Dispatch thread. No destructor, since a
    /// Dispatch thread outlives the loop.
    private static let seatKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key left")
        return key
    }()

    private static var currentSeat: Seat? {
        pthread_getspecific(seatKey).map { Unmanaged<Seat>.fromOpaque($0).takeUnretainedValue() }
    }

    private enum Wake {
        case wake(Int)
        case start(Int)
    }

    private let state: Mutex<State>
    /// One per thread: an idle thread sleeps on its own, so the pool chooses which one wakes.
    private let bells: [DispatchSemaphore]
    /// Left when the queue and every thread are idle; `drain` waits on it.
    private let busy = DispatchGroup()
    /// Signalled by each thread loop as it exits, so `drain` can return only after they have.
    private let exited = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let workers: Int
    private let telemetry: Telemetry

    public init(workers: Int, queueCapacity: Int, telemetry: Telemetry) {
        self.capacity = queueCapacity
        self.workers = workers
        self.telemetry = telemetry
        let threads = workers * Self.threadsPerWorker
        state = Mutex(State(slots: workers, maxThreads: threads))
        bells = (0..<threads).map { _ in DispatchSemaphore(value: 0) }
        for i in 0..<workers { start(i, woken: false) }
    }

    /// Queues `work`; false when the queue is full or the pool is stopping.
    public func trySubmit(_ work: @escaping Work) -> Bool {
        let submitted: (depth: Int, woken: Wake?)? = state.withLock { state in
            guard !state.stopped, state.waiting.count < capacity else { return nil }
            state.waiting.append(work)
            busy.enter()
            return (state.waiting.count, state.threadToWake())
        }
        guard let submitted else { return false }
        if let wake = submitted.woken { self.wake(wake) }
        telemetry.gauge(MetricCatalog.workerQueueDepth, Double(submitted.depth))
        return true
    }

    /// Called by a pool item that will now wait on storage or the queue: its CPU slot goes to the
    /// next queued item. Once per item (later calls do nothing), and nothing off the pool's threads.
    public static func nowWaitingOnIO() {
        guard let seat = currentSeat, seat.holdsSlot.exchange(false, ordering: .relaxed) else { return }
        let pool = seat.pool
        let woken = pool.state.withLock { state in
            state.onCPU -= 1
            return state.threadToWake()
        }
        if let woken { pool.wake(woken) }
    }

    /// Sets the `worker_queue.depth` gauge to the requests queued now.
    public func reportDepth() {
        telemetry.gauge(MetricCatalog.workerQueueDepth, Double(state.withLock { $0.waiting.count }))
    }

    /// Requests queued or running.
    public var inFlight: Int {
        state.withLock { $0.waiting.count + $0.running }
    }

    /// Waits until every queued and running item is done, or `deadline` passes; then the threads
    /// exit. True when nothing was left undone.
    @discardableResult
    public func drain(until deadline: Date) -> Bool {
        let done = busy.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success
        let alreadyStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !alreadyStopped else { return done }
        let idle = state.withLock { state in
            defer { state.idle.removeAll() }
            state.waking += state.idle.count
            return state.idle
        }
        for thread in idle { bells[thread].signal() }
        // Threads still on an item exit when it ends; wait for the idle ones only if all are done.
        if done { for _ in 0..<state.withLock({ $0.started }) { exited.wait() } }
        return done
    }

    private func wake(_ wake: Wake) {
        switch wake {
        case .wake(let thread): bells[thread].signal()
        case .start(let thread): start(thread, woken: true)
        }
    }

    /// - Parameter woken: whether the thread was counted in `waking`, as one started for an item.
    private func start(_ thread: Int, woken: Bool) {
        DispatchQueue(label: "breakwater-worker-\(thread)", qos: .userInitiated).async { self.workLoop(thread, woken: woken) }
    }

    private enum Step {
        case run(Work, depth: Int)
        case sleep
        case exit
    }

    private func workLoop(_ thread: Int, woken: Bool) {
        let seat = Seat(pool: self)
        pthread_setspecific(Self.seatKey, Unmanaged.passUnretained(seat).toOpaque())
        defer {
            pthread_setspecific(Self.seatKey, nil)
            withExtendedLifetime(seat) {}
        }
        var finished: Bool? = nil  // the item just run, if any: whether it still held its CPU slot
        var woken = woken
        while true {
            let step: Step = state.withLock { state in
                if woken { state.waking -= 1 }
                if let heldSlot = finished {
                    state.running -= 1
                    if heldSlot { state.onCPU -= 1 }
                }
                if let next = state.take() { return .run(next.work, depth: next.depth) }
                if state.stopped { return .exit }
                state.idle.append(thread)
                return .sleep
            }
            if finished != nil { busy.leave() }
            (finished, woken) = (nil, false)
            switch step {
            case .exit:
                exited.signal()
                return
            case .sleep:
                bells[thread].wait()
                woken = true
            case .run(let work, let depth):
                seat.holdsSlot.store(true, ordering: .relaxed)
                // Lower the depth gauge too, or it would keep showing the last enqueue's depth.
                telemetry.gauge(MetricCatalog.workerQueueDepth, Double(depth))
                work()
                finished = seat.holdsSlot.exchange(false, ordering: .relaxed)
            }
        }
    }
}
