import Foundation
import Testing
import Telemetry
@testable import Collector

/// The save policy: retries with backoff inside the budget, and its metrics.
@Suite struct CrashSaverTests {
    /// Fails its first `failures` saves, then stores.
    final class FlakyStorage: CrashStorage, @unchecked Sendable {
        private let lock = NSLock()
        private var remaining: Int
        private(set) var attempts: [Date] = []

        init(failures: Int) { remaining = failures }

        func save(_ crash: StoredCrash) throws {
            try lock.withLock {
                attempts.append(Date())
                if remaining > 0 {
                    remaining -= 1
                    throw Backends.StartupError("storage unavailable")
                }
            }
        }

        func check() -> HealthStatus { .ok }
        func crashIDs(onDate date: String) throws -> [String] { [] }
    }

    static func telemetry() throws -> (Telemetry, StatsdReceiver) {
        let statsd = try StatsdReceiver()
        return (Telemetry(sink: CapturingLogSink(), statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05)), statsd)
    }

    @Test func retriesUntilStorageTakesTheCrash() async throws {
        let (telemetry, statsd) = try Self.telemetry()
        defer { statsd.close() }
        let storage = FlakyStorage(failures: 2)
        let crash = StorageFixtures.crash([("upload_file_minidump", "test.dmp")])
        #expect(CrashSaver(storage: storage, telemetry: telemetry, budget: 5).save(crash) == .stored)
        #expect(storage.attempts.count == 3)
        telemetry.flush()
        let bytes = StorageKeys.objects(of: crash).reduce(0) { $0 + $1.bytes.readableBytes }
        for line in ["breakwater.save_crash:1|c|#result:retry", "breakwater.save_crash:1|c|#result:success",
                     "breakwater.save_crash.bytes:\(bytes)|c", "breakwater.store.time:"] {
            #expect(await statsd.waitForLine(containing: line) != nil, "\(line)")
        }
    }

    /// Backoff doubles (0.1 s, 0.2 s, 0.4 s, … with jitter) and no attempt starts after the budget.
    @Test func givesUpWithinTheBudget() async throws {
        let (telemetry, statsd) = try Self.telemetry()
        defer { statsd.close() }
        let storage = FlakyStorage(failures: .max)
        let start = Date()
        #expect(CrashSaver(storage: storage, telemetry: telemetry, budget: 1).save(StorageFixtures.crash()) == .failed)
        #expect(Date().timeIntervalSince(start) < 1.1)
        telemetry.flush()
        let gaps = zip(storage.attempts.dropFirst(), storage.attempts).map { $0.timeIntervalSince($1) }
        #expect((3...5).contains(storage.attempts.count), "\(gaps)")
        #expect(gaps.first.map { (0.05...0.2).contains($0) } == true, "\(gaps)")
        #expect(zip(gaps.dropFirst(), gaps).allSatisfy { $0 >= $1 * 0.9 }, "\(gaps)")
        #expect(await statsd.waitForCount("breakwater.save_crash", tags: "result:failure", atLeast: 1) > 0)
    }
}
