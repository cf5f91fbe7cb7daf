import Foundation
import NIOCore
import Testing
import Telemetry
@testable import Collector

/// The local outbox: a crash storage or the queue cannot take is recorded durably and
/// acknowledged, then stored and queued by the mover; a full outbox means 503, never a lost crash;
/// one crash storage refuses for good is quarantined without holding up the others.
@Suite struct OutboxTests {
    struct FixedThrottler: Throttler {
        let decision: ThrottleDecision
        func throttle(_ crash: CrashReport) -> ThrottleDecision { decision }
    }

    static func temporaryFolder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func crashForm(_ dump: [UInt8] = Fixtures.bytes("linux-mini.dmp")) -> MultipartBody {
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", dump)
        return form.finished
    }

    static func waitUntil(_ timeout: Double = 10, _ condition: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return condition()
    }

    static func files(_ folder: String, _ suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(suffix) }
    }

    static func crash(_ id: String = CrashID.make(result: .accept, date: Date())) -> StoredCrash {
        StoredCrash(crashID: id, rawCrash: Array("{\"uuid\":\"\(id)\"}".utf8),
                    dumps: [CrashDump(name: "upload_file_minidump", bytes: ByteBuffer(bytes: Fixtures.bytes("test.dmp")))])
    }

    @Test func crashIsKeptWhileStorageIsDownThenStoredAndQueued() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let folder = Self.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder; $0.saveBudget = 0.3 }, storage: storage)
        let dump = Fixtures.bytes("linux-mini.dmp")
        let first = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm(dump)))
        // Inside the outage hold the next crash goes straight to the outbox.
        let second = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm(dump)))
        #expect(storage.all.isEmpty)
        #expect(Self.files(folder, ".crash").count == 2)
        #expect(server.auditLines().filter { $0["outcome"] as? String == "spooled" }.count == 2)
        #expect(server.capturedQueue.published.isEmpty)
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.body.contains("\"spool\":{\"detail\":\"2 crashes waiting to be stored"), "\(heartbeat.body)")

        storage.failing = false
        #expect(await Self.waitUntil { storage[first] != nil && storage[second] != nil })
        #expect(await Self.waitUntil { server.capturedQueue.published.count == 2 })
        #expect(Set(server.capturedQueue.published) == [first, second])
        let stored = try #require(storage[first])
        #expect(Array(stored.dumps[0].bytes.readableBytesView) == dump)
        #expect(server.captured.rawCrash(first)?["uuid"] as? String == first)
        #expect(await Self.waitUntil { Self.files(folder, ".crash").isEmpty && Self.files(folder, ".state").isEmpty })
        try await server.stop()
    }

    /// Stored, but the broker refuses: the client still gets its crash ID, the ID waits in the
    /// outbox as a `publish` record, and is queued once the broker takes it.
    @Test func storedCrashWaitsForTheQueueInTheOutbox() async throws {
        let queue = CapturingCrashQueue()
        queue.failing = true
        let folder = Self.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder; $0.publishBudget = 0.2 }, queue: queue)
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm()))
        #expect(server.captured[id] != nil)
        let record = try #require(Outbox.list(directory: folder).first?.record)
        #expect(record.crashID == id && record.state == .publish)
        #expect(server.auditLines().contains { $0["crash_id"] as? String == id && $0["queued"] as? Bool == false })
        queue.failing = false
        #expect(await Self.waitUntil { queue.published == [id] })
        #expect(await Self.waitUntil { Outbox.list(directory: folder).isEmpty })
        try await server.stop()
    }

    /// Without an outbox a crash stored but not queued is not acknowledged: the client resends.
    @Test func withoutAnOutboxAnUnqueuedCrashIsA503() async throws {
        let queue = CapturingCrashQueue()
        queue.failing = true
        let server = try await TestServer.start(configure: { $0.publishBudget = 0.2 }, queue: queue)
        let response = try await server.submit(Self.crashForm())
        #expect(response.status == 503 && response.body == "Discarded=retry_later")
        try await server.stop()
    }

    @Test func deferredCrashIsStoredButNotQueued() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await TestServer.start(configure: { $0.spoolDir = Self.temporaryFolder(); $0.saveBudget = 0.2 },
                                                throttler: FixedThrottler(decision: ThrottleDecision(.defer, rule: "later")),
                                                storage: storage)
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm()))
        #expect(id.dropLast(6).hasSuffix("1"))
        storage.failing = false
        #expect(await Self.waitUntil { storage[id] != nil })
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(server.capturedQueue.published.isEmpty)
        try await server.stop()
    }

    /// What a SIGKILL can leave: a body, a body whose `publish` state was already written (stored:
    /// only the queue is owed), a `publish` state alone, a stale `store` state, a torn temporary,
    /// and a body cut short. Each is finished by the next start, the torn body quarantined.
    @Test func whatAnEarlierProcessLeftIsFinishedAtStart() async throws {
        let folder = Self.temporaryFolder()
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        let toStore = Self.crash(), storedAlready = Self.crash(), toPublish = Self.crash(), torn = Self.crash()
        #expect(outbox.add(toStore, queue: true, receivedAt: 1))
        #expect(outbox.addPublish(storedAlready.crashID, receivedAt: 2))
        #expect(outbox.addPublish(toPublish.crashID, receivedAt: 3))
        // A `publish` state next to the body it replaces (killed between the two steps).
        try DurableFile.write(OutboxCrashFile.encode(storedAlready, queue: true, receivedAt: 2), to: "\(folder)/\(storedAlready.crashID).crash")
        // A stale `store` state without its body.
        var stale = OutboxRecord(crashID: CrashID.make(result: .accept, date: Date()), state: .store, queue: true, receivedAt: 4)
        stale.attempts = 3
        try DurableFile.write(ByteBuffer(bytes: stale.encoded), to: "\(folder)/\(stale.crashID).state")
        // A temporary a kill left mid-write, and a body cut short (a damaged disk).
        _ = FileManager.default.createFile(atPath: "\(folder)/.tmp-1-2", contents: Data("BWOUTBOX1\n{".utf8))
        var body = OutboxCrashFile.encode(torn, queue: true, receivedAt: 5)
        body.moveWriterIndex(to: body.writerIndex - 100)
        try DurableFile.write(body, to: "\(folder)/\(torn.crashID).crash")

        let storage = CapturingCrashStorage()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder }, storage: storage)
        #expect(await Self.waitUntil { Set(server.capturedQueue.published) == [toStore.crashID, storedAlready.crashID, toPublish.crashID] })
        #expect(storage[toStore.crashID]?.dumps.first?.bytes == toStore.dumps[0].bytes)
        // Already stored: only queued, not stored again.
        #expect(storage[storedAlready.crashID] == nil)
        #expect(await Self.waitUntil { Outbox.list(directory: folder).map { "\($0.record.crashID) \($0.quarantined)" } == ["\(torn.crashID) true"] })
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/\(stale.crashID).state"))
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/.tmp-1-2"))
        #expect(storage[torn.crashID] == nil && server.capturedQueue.published.count == 3)
        try await server.stop()
    }

    /// One crash storage refuses for good (403) ahead of twenty others: the twenty are stored and
    /// queued, the refused one is quarantined, shown by the heartbeat and `Outbox.list`, and
    /// stored once it is put back in line after the refusal is lifted.
    @Test func aRefusedCrashIsQuarantinedWithoutHoldingUpTheOthers() async throws {
        let folder = Self.temporaryFolder()
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        let refused = Self.crash(), others = (0..<20).map { _ in Self.crash() }
        #expect(outbox.add(refused, queue: true, receivedAt: 1))
        for (n, crash) in others.enumerated() { #expect(outbox.add(crash, queue: true, receivedAt: Double(2 + n))) }
        let storage = CapturingCrashStorage()
        storage.refused = [refused.crashID]
        let server = try await TestServer.start(configure: { $0.spoolDir = folder }, storage: storage)
        #expect(await Self.waitUntil { Set(server.capturedQueue.published) == Set(others.map(\.crashID)) })
        #expect(await Self.waitUntil { server.collector.pipeline.outbox?.summary.quarantined == 1 })
        let listed = Outbox.list(directory: folder)
        #expect(listed.count == 1 && listed[0].quarantined && listed[0].record.crashID == refused.crashID)
        #expect(listed[0].record.lastError.contains("403"))
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.status == 200 && heartbeat.body.contains("1 crashes quarantined"), "\(heartbeat.body)")
        #expect(server.logs.lines.contains { $0.contains("crash quarantined") && $0.contains(refused.crashID) })

        storage.refused = []
        #expect(try Outbox.retry(directory: folder, crashIDs: []) == [refused.crashID])
        #expect(await Self.waitUntil { server.capturedQueue.published.contains(refused.crashID) })
        #expect(storage[refused.crashID] != nil)
        #expect(await Self.waitUntil { server.collector.pipeline.outbox?.summary == Outbox.Summary() })
        #expect(throws: Outbox.NotQuarantined.self) { try Outbox.retry(directory: folder, crashIDs: [refused.crashID]) }
        try await server.stop()
    }

    /// A record that keeps failing while storage's check passes is quarantined after
    /// `SPOOL_MAX_ATTEMPTS`; its backoff grows per record.
    @Test func tooManyAttemptsQuarantine() throws {
        let folder = Self.temporaryFolder()
        var policy = OutboxPolicy()
        policy.maxAttempts = 3
        policy.initialBackoff = 10
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, policy: policy, telemetry: .silent())
        let crash = Self.crash()
        #expect(outbox.add(crash, queue: true, receivedAt: 1))
        var due: [Double] = []
        for attempt in 1...3 {
            let record = try #require(outbox.takeDue(now: .infinity, store: true, publish: true))
            #expect(record.attempts == 2 * (attempt - 1))
            // An outage (strike: false) never counts toward quarantine.
            #expect(!outbox.failed(record, error: "outage", strike: false, definitive: false))
            let again = try #require(outbox.takeDue(now: .infinity, store: true, publish: true))
            due.append(again.nextAttempt - Date().timeIntervalSince1970)
            #expect(outbox.failed(again, error: "HTTP 400 timeout", strike: true, definitive: false) == (attempt == 3))
        }
        #expect(due[1] > 10 && due[2] > 20, "\(due)")
        #expect(outbox.summary.quarantined == 1 && outbox.summary.count == 0)
        #expect(Outbox.list(directory: folder).first?.record.attempts == 6)
    }

    /// `SPOOL_MAX_BYTES` between a small crash and a big one: with storage down the small crash
    /// is kept in the outbox and acknowledged, the big one does not fit and is answered 503 with
    /// `Retry-After`, the outbox saying why, and nothing of it left on disk.
    @Test func fullOutboxAnswers503() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let folder = Self.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = folder; $0.spoolMaxBytes = 10_000; $0.saveBudget = 0.2 },
                                                storage: storage)
        let big = Self.crashForm()
        #expect(big.bytes.count > 20_000)
        let small = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm(Array("MDMP tiny".utf8))))
        #expect(Self.files(folder, ".crash") == ["\(small).crash"])
        #expect(server.auditLines().contains { $0["crash_id"] as? String == small && $0["outcome"] as? String == "spooled" })

        let response = try await server.submit(big)
        #expect(response.status == 503)
        #expect(response.body == "Discarded=retry_later")
        #expect(response.headers.first(name: "Retry-After") != nil)
        let refused = server.auditLines().filter { $0["outcome"] as? String == "retry_later" }
        #expect(refused.count == 1 && refused.first?["reason"] as? String == "storage_unavailable", "\(refused)")
        let refusedID = try #require(refused.first?["crash_id"] as? String)
        #expect(server.logs.lines.contains { $0.contains("outbox full (SPOOL_MAX_BYTES)") && $0.contains(refusedID) })
        #expect(Self.files(folder, ".crash") == ["\(small).crash"])
        #expect(Outbox.list(directory: folder).map(\.record.crashID) == [small])
        try await server.stop()
    }

    /// An outbox on a full disk: the write fails, the client gets 503, nothing half-written is left.
    @Test func outboxDiskFullAnswers503() async throws {
        let disk = try SmallDisk.mount(size: "64k")
        defer { disk.unmount() }
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await TestServer.start(configure: { $0.spoolDir = disk.path; $0.saveBudget = 0.2 }, storage: storage)
        let response = try await server.submit(Self.crashForm(Fixtures.bytes("pipeline-inlines-macos-segv.dmp")))
        #expect(response.status == 503)
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path).filter { $0 != "quarantine" && $0 != ".lock" }.isEmpty)
        try await server.stop()
    }

    /// The gauges: size, bytes, oldest age (which grows while a record is stuck), quarantine and
    /// the IDs waiting for the queue.
    @Test func gaugesReportTheOutbox() async throws {
        let statsd = try StatsdReceiver()
        defer { statsd.close() }
        let telemetry = Telemetry(sink: CapturingLogSink(), statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05))
        let outbox = try Outbox(directory: Self.temporaryFolder(), maxBytes: 1 << 24, telemetry: telemetry)
        #expect(outbox.add(Self.crash(), queue: true, receivedAt: Date().timeIntervalSince1970 - 120))
        #expect(outbox.addPublish(CrashID.make(result: .accept, date: Date()), receivedAt: Date().timeIntervalSince1970))
        outbox.reportGauges()
        telemetry.flush()
        for line in ["breakwater.spool.size:2|g", "breakwater.spool.quarantined:0|g", "breakwater.publish_backlog.size:1|g",
                     "breakwater.spool.oldest_age:12", "breakwater.spool.bytes:"] {
            #expect(await statsd.waitForLine(containing: line) != nil, "\(line)")
        }
    }

    /// The sampler refreshes the gauges on its timer, so a stuck record ages visibly without writes.
    @Test func theSamplerRefreshesTheGauges() async throws {
        let statsd = try StatsdReceiver()
        defer { statsd.close() }
        let telemetry = Telemetry(sink: CapturingLogSink(), statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05))
        let outbox = try Outbox(directory: Self.temporaryFolder(), maxBytes: 1 << 24, telemetry: telemetry)
        #expect(outbox.add(Self.crash(), queue: true, receivedAt: Date().timeIntervalSince1970 - 2))
        let sampler = Sampler(checks: [], telemetry: telemetry, gauges: { outbox.reportGauges() }, interval: 0.5)
        sampler.start()
        defer { sampler.stop() }
        #expect(await statsd.waitForLine(containing: "breakwater.spool.oldest_age:2.") != nil)
        #expect(await statsd.waitForLine(containing: "breakwater.spool.oldest_age:3.") != nil)
    }

    /// On by default (`./spool`); an empty `SPOOL_DIR` turns it off.
    @Test func theOutboxIsOnByDefault() async throws {
        #expect(try await CollectorConfiguration.load(environment: [:]).spoolDir == "./spool")
        #expect(try await CollectorConfiguration.load(environment: ["SPOOL_DIR": ""]).spoolDir == "")
        #expect(try await CollectorConfiguration.load(environment: ["SPOOL_DIR": "/tmp/x"]).spoolDir == "/tmp/x")
    }

    /// A storage request's deadline is a floor plus an allowance per MiB of its body.
    @Test func theStorageTimeoutGrowsWithTheObject() throws {
        let client = try S3Client(bucket: "b", endpoint: "http://127.0.0.1:1", region: "us-east-1",
                                  credentials: .init(accessKeyID: "k", secretAccessKey: "s"), requestTimeout: 2, timeoutPerMiB: 1)
        #expect(client.deadline(forBodyBytes: 0) == .seconds(2))
        #expect(client.deadline(forBodyBytes: 100 << 20) == .seconds(102))
        let config = CollectorConfiguration()
        #expect(config.storageTimeout == 2 && config.storageTimeoutPerMiB == 1)
    }
}
