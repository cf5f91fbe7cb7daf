import Foundation
import NIOCore
import Testing
import Telemetry
@testable import Collector

/// The local spool: a crash storage cannot take is spooled and acknowledged, then moved to
/// storage (and queued) once storage answers; a full spool means 503, never a lost crash.
@Suite struct SpoolTests {
    struct FixedThrottler: Throttler {
        let decision: ThrottleDecision
        func throttle(_ crash: CrashReport) -> ThrottleDecision { decision }
    }

    static func temporaryFolder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
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

    @Test func crashIsSpooledWhileStorageIsDownThenStoredAndQueued() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let spool = Self.temporaryFolder()
        let server = try await TestServer.start(configure: { $0.spoolDir = spool; $0.saveBudget = 0.3 }, storage: storage)
        let dump = Fixtures.bytes("linux-mini.dmp")
        let first = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm(dump)))
        // Inside the outage hold the next crash goes straight to the spool.
        let second = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.crashForm(dump)))
        #expect(storage.all.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".crash") }.count == 2)
        #expect(server.auditLines().filter { $0["outcome"] as? String == "spooled" }.count == 2)
        #expect(server.capturedQueue.published.isEmpty)
        #expect(await server.statsd.waitForLine(containing: "breakwater.spool.size:2|g") != nil)
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.body.contains("\"spool\":{\"detail\":\"2 crashes spooled"))

        storage.failing = false
        #expect(await Self.waitUntil { storage[first] != nil && storage[second] != nil })
        #expect(await Self.waitUntil { server.capturedQueue.published.count == 2 })
        #expect(Set(server.capturedQueue.published) == [first, second])
        let stored = try #require(storage[first])
        #expect(Array(stored.dumps[0].bytes.readableBytesView) == dump)
        #expect(server.captured.rawCrash(first)?["uuid"] as? String == first)
        #expect(await Self.waitUntil { (try? FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".crash") }.isEmpty) == true })
        try await server.stop()
    }

    @Test func deferredCrashIsStoredButNotQueuedAfterTheSpool() async throws {
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

    @Test func crashesLeftByAnEarlierProcessArePickedUpAtStart() async throws {
        let folder = Self.temporaryFolder()
        let spool = try CrashSpool(directory: folder, maxBytes: 1 << 20, telemetry: .silent())
        let id = CrashID.make(result: .accept, date: Date())
        let dump = ByteBuffer(bytes: Fixtures.bytes("test.dmp"))
        #expect(spool.write(StoredCrash(crashID: id, rawCrash: Array("{\"uuid\":\"\(id)\"}".utf8),
                                        dumps: [CrashDump(name: "upload_file_minidump", bytes: dump)]), queue: true))
        let server = try await TestServer.start { $0.spoolDir = folder }
        #expect(await Self.waitUntil { server.captured[id] != nil })
        #expect(server.captured[id]?.dumps.first?.bytes == dump)
        #expect(await Self.waitUntil { server.capturedQueue.published == [id] })
        try await server.stop()
    }

    @Test func fullSpoolAnswers503() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await TestServer.start(configure: { $0.spoolDir = Self.temporaryFolder(); $0.spoolMaxBytes = 10_000; $0.saveBudget = 0.2 },
                                                storage: storage)
        let response = try await server.submit(Self.crashForm())
        #expect(response.status == 503)
        #expect(response.body == "Discarded=retry_later")
        #expect(response.headers.first(name: "Retry-After") != nil)
        #expect(server.auditLines().contains { $0["outcome"] as? String == "retry_later" })
        try await server.stop()
    }

    /// A spool on a full disk: the write fails, the client gets 503, nothing half-written is left.
    @Test func spoolDiskFullAnswers503() async throws {
        let disk = try SmallDisk.mount(size: "64k")
        defer { disk.unmount() }
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await TestServer.start(configure: { $0.spoolDir = disk.path; $0.saveBudget = 0.2 }, storage: storage)
        let response = try await server.submit(Self.crashForm(Fixtures.bytes("pipeline-inlines-macos-segv.dmp")))
        #expect(response.status == 503)
        // No crash file, whole or half-written (the publish backlog's journal lives here too).
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path).filter { $0.hasSuffix(".crash") || $0.hasPrefix(".tmp-") }.isEmpty)
        try await server.stop()
    }
}
