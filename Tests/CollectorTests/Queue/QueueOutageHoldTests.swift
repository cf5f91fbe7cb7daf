import Foundation
import Testing
@testable import Collector

/// While the queue is known down and an outbox can hold the IDs, crashes are not offered to it:
/// an attempt at a broker that hangs would hold each worker for the broker's own timeouts.
@Suite struct QueueOutageHoldTests {
    /// A queue that hangs for 1.5 s on every publish, then fails.
    final class HangingQueue: CrashQueue {
        func publish(_ crashID: String) throws {
            Thread.sleep(forTimeInterval: 1.5)
            throw Backends.StartupError("queue hung")
        }
        func check() -> HealthStatus { .error("hung") }
    }

    @Test func afterAFailedPublishNewIDsGoStraightToTheOutbox() async throws {
        let folder = OutboxTests.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder; $0.publishBudget = 0.2 }, queue: HangingQueue())
        var started = Date()
        let first = try BreakpadIntakeTests.crashID(of: try await server.submit(OutboxTests.crashForm()))
        #expect(Date().timeIntervalSince(started) >= 1.5)
        started = Date()
        let second = try BreakpadIntakeTests.crashID(of: try await server.submit(OutboxTests.crashForm()))
        // Not offered to the hung queue: answered once its outbox record is durable.
        #expect(Date().timeIntervalSince(started) < 1.0)
        for id in [first, second] {
            let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == id })
            #expect(audit["outcome"] as? String == "accepted" && audit["queued"] as? Bool == false)
            #expect(server.captured[id] != nil)
        }
        #expect(Set(OutboxTests.files(folder, ".state").map { String($0.prefix(36)) }).isSuperset(of: [first, second]))
        // The outbox's failed probes keep the hold past its first 5 s while the queue hangs.
        try await Task.sleep(nanoseconds: 6_500_000_000)
        started = Date()
        _ = try BreakpadIntakeTests.crashID(of: try await server.submit(OutboxTests.crashForm()))
        #expect(Date().timeIntervalSince(started) < 1.0)
        try await server.stop()
    }
}
