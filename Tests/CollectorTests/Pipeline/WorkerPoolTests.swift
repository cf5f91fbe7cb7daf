import Collector
import Dispatch
import Foundation
import Telemetry
import Testing

/// The pool's CPU slots and its hand-over while a crash waits on I/O, seen from the work items.
@Suite struct WorkerPoolTests {
    static func pool(workers: Int, queue: Int = 16) -> WorkerPool {
        WorkerPool(workers: workers, queueCapacity: queue, telemetry: Telemetry(sink: CapturingLogSink(), logLevel: .critical, statsd: nil))
    }

    /// Waits up to `seconds` for `semaphore`; true when it was signalled.
    static func signalled(_ semaphore: DispatchSemaphore, within seconds: Double = 5) -> Bool {
        semaphore.wait(timeout: .now() + seconds) == .success
    }

    /// Submits B, which holds the CPU slot until released, then C, and expects C not to run while
    /// B holds it: a pool with `workers: 1` has exactly one slot. Returns B's release.
    static func expectOneSlotLeft(_ pool: WorkerPool, sourceLocation: SourceLocation = #_sourceLocation) -> (release: DispatchSemaphore, cRan: DispatchSemaphore) {
        let bRunning = DispatchSemaphore(value: 0), releaseB = DispatchSemaphore(value: 0), cRan = DispatchSemaphore(value: 0)
        #expect(pool.trySubmit {
            bRunning.signal()
            _ = releaseB.wait(timeout: .now() + 10)
        }, sourceLocation: sourceLocation)
        #expect(Self.signalled(bRunning), sourceLocation: sourceLocation)
        #expect(pool.trySubmit { cRan.signal() }, sourceLocation: sourceLocation)
        #expect(!Self.signalled(cRan, within: 0.3), "a second crash ran on the CPU beside one holding the only slot",
                sourceLocation: sourceLocation)
        return (releaseB, cRan)
    }

    @Test func aCrashWaitingOnIOHandsItsSlotToTheNext() {
        let pool = Self.pool(workers: 1)
        let aWaiting = DispatchSemaphore(value: 0), releaseA = DispatchSemaphore(value: 0)
        #expect(pool.trySubmit {
            WorkerPool.nowWaitingOnIO()
            WorkerPool.nowWaitingOnIO()  // a second call gives back nothing more
            aWaiting.signal()
            _ = releaseA.wait(timeout: .now() + 10)
        })
        #expect(Self.signalled(aWaiting))
        // A gave back its one slot, once: the next crash runs while A waits (B), and only one.
        let (releaseB, cRan) = Self.expectOneSlotLeft(pool)
        releaseB.signal()
        #expect(Self.signalled(cRan))
        releaseA.signal()
        #expect(pool.drain(until: Date() + 5))
        #expect(pool.inFlight == 0)
    }

    @Test func aCrashOnTheCPUKeepsItsSlot() {
        let pool = Self.pool(workers: 1)
        let aRunning = DispatchSemaphore(value: 0), releaseA = DispatchSemaphore(value: 0), bRan = DispatchSemaphore(value: 0)
        #expect(pool.trySubmit {
            aRunning.signal()
            _ = releaseA.wait(timeout: .now() + 10)
        })
        #expect(Self.signalled(aRunning))
        #expect(pool.trySubmit { bRan.signal() })
        #expect(!Self.signalled(bRan, within: 0.3), "one worker runs one crash at a time on the CPU")
        #expect(pool.inFlight == 2)
        releaseA.signal()
        #expect(Self.signalled(bRan))
        #expect(pool.drain(until: Date() + 5))
    }

    @Test func atMostThreadsPerWorkerCrashesWaitAtOnce() {
        let workers = 2, limit = workers * WorkerPool.threadsPerWorker
        let pool = Self.pool(workers: workers)
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), lastRan = DispatchSemaphore(value: 0)
        for _ in 0..<limit {
            #expect(pool.trySubmit {
                WorkerPool.nowWaitingOnIO()
                entered.signal()
                _ = release.wait(timeout: .now() + 10)
            })
        }
        for _ in 0..<limit { #expect(Self.signalled(entered)) }
        #expect(pool.trySubmit { lastRan.signal() })
        #expect(!Self.signalled(lastRan, within: 0.3), "every thread is taken by a crash waiting on I/O")
        #expect(pool.inFlight == limit + 1)
        release.signal()
        #expect(Self.signalled(lastRan), "a thread freed by a finished crash takes the queued one")
        for _ in 1..<limit { release.signal() }
        #expect(pool.drain(until: Date() + 5))
        #expect(pool.inFlight == 0)
    }

    @Test func callsOffThePoolChangeNothing() {
        let pool = Self.pool(workers: 1)
        WorkerPool.nowWaitingOnIO()
        let ran = DispatchSemaphore(value: 0)
        for _ in 0..<3 { #expect(pool.trySubmit { ran.signal() }) }
        for _ in 0..<3 { #expect(Self.signalled(ran)) }
        // Neither that call nor one made off the pool while a crash holds the slot frees a slot.
        let bRunning = DispatchSemaphore(value: 0), releaseB = DispatchSemaphore(value: 0), cRan = DispatchSemaphore(value: 0)
        #expect(pool.trySubmit {
            bRunning.signal()
            _ = releaseB.wait(timeout: .now() + 10)
        })
        #expect(Self.signalled(bRunning))
        WorkerPool.nowWaitingOnIO()
        #expect(pool.trySubmit { cRan.signal() })
        #expect(!Self.signalled(cRan, within: 0.3), "a call off the pool freed the only CPU slot")
        releaseB.signal()
        #expect(Self.signalled(cRan))
        #expect(pool.drain(until: Date() + 5))
        #expect(!pool.trySubmit {})
    }
}
