import Foundation
import Synchronization
import Testing
@testable import Collector

/// A backend that hangs holds up neither shutdown past its deadline nor the outbox's other work:
/// a record in hand is left on disk for the next start, and IDs waiting only for the queue are
/// published while the storage hangs.
@Suite struct OutboxHungBackendTests {
    /// Every save hangs for a minute; with `refusingFirst`, the first is refused at once instead
    /// (its crash goes to the outbox).
    final class HangingStorage: CrashStorage {
        let saves = Atomic<Int>(0)
        let hung = DispatchSemaphore(value: 0)
        let refusingFirst: Bool

        init(refusingFirst: Bool) { self.refusingFirst = refusingFirst }

        func save(_ crash: StoredCrash) throws {
            let first = saves.add(1, ordering: .relaxed).oldValue == 0
            if first && refusingFirst { throw Backends.StartupError("storage failing") }
            hung.signal()
            Thread.sleep(forTimeInterval: 60)
        }

        func check() -> HealthStatus { .ok }
        func crashIDs(onDate date: String) throws -> [String] { [] }
    }

    @Test func aMoverStuckOnAHungStorageDoesNotHoldShutdownPastItsDeadline() async throws {
        let storage = HangingStorage(refusingFirst: true)
        let folder = OutboxTests.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder; $0.saveBudget = 0.01 }, storage: storage)
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(OutboxTests.crashForm()))
        #expect(OutboxTests.files(folder, ".crash") == ["\(id).crash"])
        #expect(storage.hung.wait(timeout: .now() + 10) == .success)
        // The mover is inside a save that takes a minute; TestServer.stop gives shutdown 5 s.
        let started = Date()
        try await server.stop()
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(OutboxTests.files(folder, ".crash") == ["\(id).crash"])
    }

    /// The older record waits for a storage that hangs; the newer one, already stored, only for
    /// the queue: its ID is published meanwhile.
    @Test func idsWaitingForTheQueueAreNotHeldUpByAHungStorage() async throws {
        let folder = OutboxTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 20, telemetry: .silent())
        let now = Date().timeIntervalSince1970
        #expect(outbox.add(OutboxTests.crash(), queue: true, receivedAt: now - 10))
        let waiting = CrashID.make(result: .accept, date: Date())
        #expect(outbox.addPublish(waiting, receivedAt: now))
        let storage = HangingStorage(refusingFirst: false)
        let queue = CapturingCrashQueue()
        let mover = OutboxMover(outbox: outbox, saver: CrashSaver(storage: storage, telemetry: .silent()),
                                publisher: QueuePublisher(queue: queue, telemetry: .silent()), telemetry: .silent())
        try mover.start()
        #expect(storage.hung.wait(timeout: .now() + 10) == .success)
        #expect(await OutboxTests.waitUntil(5) { queue.published == [waiting] })
        #expect(!mover.stop(until: Date().addingTimeInterval(0.5)))
    }
}
