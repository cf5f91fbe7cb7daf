import Foundation
import Testing
@testable import Collector

/// After a failed publish the outbox probes the queue with one ID before it sends batches again:
/// a batch a hung queue timed out on may still be delivered, and a hundred IDs resent each time
/// multiply the duplicates by the length of the outage.
@Suite struct OutboxProbeTests {
    /// Records the size of every batch; the first `failures` batches fail with nothing published.
    final class BatchQueue: CrashQueue, @unchecked Sendable {
        // @unchecked: every field is behind `lock`.
        private let lock = NSLock()
        private var sizes: [Int] = []
        private var failures: Int

        init(failures: Int) { self.failures = failures }

        func publish(_ crashID: String) throws {
            if publish(batch: [crashID]).failure != nil { throw Backends.StartupError("queue failing") }
        }

        func publish(batch crashIDs: [String]) -> (published: Int, failure: Error?) {
            lock.withLock {
                sizes.append(crashIDs.count)
                guard failures == 0 else {
                    failures -= 1
                    return (0, Backends.StartupError("queue failing"))
                }
                return (crashIDs.count, nil)
            }
        }

        func check() -> HealthStatus { .ok }
        var batches: [Int] { lock.withLock { sizes } }
    }

    @Test func aFailedBatchIsFollowedByAProbeOfOne() async throws {
        let folder = OutboxTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 20, telemetry: .silent())
        for _ in 0..<40 { #expect(outbox.addPublish(CrashID.make(result: .accept, date: Date()), receivedAt: Date().timeIntervalSince1970)) }
        let queue = BatchQueue(failures: 1)
        let mover = OutboxMover(outbox: outbox, saver: CrashSaver(storage: NullCrashStorage(), telemetry: .silent()),
                                publisher: QueuePublisher(queue: queue, telemetry: .silent()), telemetry: .silent())
        try mover.start()
        #expect(await OutboxTests.waitUntil(20) { outbox.count == 0 })
        mover.stop()
        #expect(queue.batches.first == 40)
        #expect(queue.batches.dropFirst().first == 1)
        #expect(queue.batches.reduce(0, +) == 80)
    }
}
