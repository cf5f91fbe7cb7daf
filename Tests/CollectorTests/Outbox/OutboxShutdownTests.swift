import Foundation
import Synchronization
import Testing
@testable import Collector

/// Shutdown is bounded by its deadline even when the outbox mover is stuck on a backend that
/// hangs: the record in hand is left on disk for the next start, never waited for.
@Suite struct OutboxShutdownTests {
    /// Refuses the first save (the crash goes to the outbox); every later one hangs for a minute.
    final class HangingStorage: CrashStorage {
        let saves = Atomic<Int>(0)
        let hung = DispatchSemaphore(value: 0)

        func save(_ crash: StoredCrash) throws {
            guard saves.add(1, ordering: .relaxed).oldValue > 0 else { throw Backends.StartupError("storage failing") }
            hung.signal()
            Thread.sleep(forTimeInterval: 60)
        }

        func check() -> HealthStatus { .ok }
        func crashIDs(onDate date: String) throws -> [String] { [] }
    }

    @Test func aMoverStuckOnAHungStorageDoesNotHoldShutdownPastItsDeadline() async throws {
        let storage = HangingStorage()
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
}
