import Foundation
import Testing
@testable import Collector

/// `/submit` through the in-process server into real storage: the filesystem and moto's S3
/// (signature checking on). What a client sent is what lands under the design's keys, and a
/// crash that cannot be stored gets 503 `Discarded=retry_later`, never a crash ID.
@Suite(.serialized) struct StorageEndToEndTests {
    static let mainDump = Fixtures.bytes("test.dmp")
    static let browserDump = Fixtures.bytes("linux-mini.dmp")

    static func form(dump: [UInt8] = mainDump) -> MultipartBody {
        var form = MultipartBody()
        form.field("ProductName", "Firefox")
        form.field("Version", "120.0")
        form.file("upload_file_minidump", dump)
        form.file("upload_file_minidump_browser", browserDump)
        return form.finished
    }

    /// Checks the four objects of crash `id` read through `read` (nil: no such object) and the
    /// `save_crash` statsd counters.
    static func expectStored(_ id: String, on server: TestServer, read: (String) throws -> [UInt8]?) async throws {
        let day = CrashID.dateFolder(of: id)
        #expect(try read("v1/dump/\(id)") == mainDump)
        #expect(try read("v1/upload_file_minidump_browser/\(id)") == browserDump)
        let names = try #require(try read("v1/dump_names/\(id)"))
        #expect(names == Array(#"["upload_file_minidump","upload_file_minidump_browser"]"#.utf8))
        let rawBytes = try #require(try read("v1/raw_crash/\(day)/\(id)"))
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(rawBytes)) as? [String: Any])
        #expect(raw["uuid"] as? String == id)
        #expect(raw["ProductName"] as? String == "Firefox")
        let metadata = try #require(raw["metadata"] as? [String: Any])
        #expect((metadata["dump_checksums"] as? [String: String])?.keys.sorted() == ["upload_file_minidump", "upload_file_minidump_browser"])
        let bytes = mainDump.count + browserDump.count + names.count + rawBytes.count
        // Counters are summed between flushes: with other crashes stored in the same 200 ms, the
        // totals include theirs.
        #expect(await server.statsd.waitForCount("breakwater.save_crash", tags: "result:success", atLeast: 1) >= 1)
        #expect(await server.statsd.waitForCount("breakwater.save_crash.bytes", atLeast: bytes) >= bytes)
    }

    static func expectRetryLater(_ response: TestServer.Response, on server: TestServer) async {
        #expect(response.status == 503)
        #expect(response.body == "Discarded=retry_later")
        #expect(response.headers.first(name: "Retry-After") != nil)
        #expect(server.capturedQueue.published.isEmpty)
        #expect(server.auditLines().contains { $0["outcome"] as? String == "retry_later" })
        #expect(await server.statsd.waitForCount("breakwater.save_crash", tags: "result:failure", atLeast: 1) > 0)
    }

    @Test func filesystemStoresWhatWasSubmitted() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("breakwater-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try await TestServer.start(storage: try FilesystemCrashStorage(root: root))
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.form(), gzip: true))
        try await Self.expectStored(id, on: server) { FileManager.default.contents(atPath: "\(root)/\($0)").map(Array.init) }
        #expect(server.capturedQueue.published == [id])
        try await server.stop()
    }

    @Test func filesystemFullDiskAnswers503() async throws {
        let disk = try SmallDisk.mount(size: "64k")
        defer { disk.unmount() }
        let server = try await TestServer.start(configure: { $0.saveBudget = 0.5 },
                                                storage: try FilesystemCrashStorage(root: "\(disk.path)/crashes"))
        // 116 KiB of dump on a 64 KiB disk.
        let response = try await server.submit(Self.form(dump: Fixtures.bytes("pipeline-inlines-macos-segv.dmp")))
        await Self.expectRetryLater(response, on: server)
        #expect(FilesystemCrashStorageTests.files(under: disk.path) == [])
        try await server.stop()
    }

    @Test func s3StoresWhatWasSubmitted() async throws {
        let env = try S3TestEnvironment.load()
        let direct = try env.client()
        let server = try await TestServer.start(storage: S3CrashStorage(client: try env.client(), telemetry: .silent()))
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.form(), gzip: true))
        try await Self.expectStored(id, on: server) { try S3CrashStorageTests.object($0, direct) }
        try await server.stop()
    }

    /// S3 unreachable: 503 within the budget, the heartbeat says so, nothing lands in the bucket;
    /// reachable again, the next crash is stored.
    @Test func s3DownAnswers503ThenRecovers() async throws {
        let env = try S3TestEnvironment.load()
        let bucket = "breakwater-down-\(UInt32.random(in: 0...UInt32.max))"
        let direct = try env.client(bucket: bucket)
        #expect(try await direct.send(.PUT, key: "").get().status == 200)
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.port)
        defer { try? proxy.stop() }
        let storage = S3CrashStorage(client: try env.client(endpoint: "http://127.0.0.1:\(proxy.port)", bucket: bucket, requestTimeout: 0.5),
                                     telemetry: .silent())
        let server = try await TestServer.start(configure: { $0.saveBudget = 1.5 }, storage: storage)

        try proxy.stop()
        let start = Date()
        let response = try await server.submit(Self.form())
        #expect(Date().timeIntervalSince(start) < 1.5 + 1)
        await Self.expectRetryLater(response, on: server)
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.status == 503)
        #expect(heartbeat.body.contains(#""storage":{"detail":"S3 bucket \#(bucket)"#))
        #expect(try direct.listKeys(prefix: "") == [])

        try proxy.start()
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.form()))
        try await Self.expectStored(id, on: server) { try S3CrashStorageTests.object($0, direct) }
        try await server.stop()
    }

    /// A wrong secret (rotated keys): the server refuses the signature, the client gets 503 and
    /// the log names S3's error code.
    @Test func s3WrongSecretAnswers503AndLogsTheCode() async throws {
        let env = try S3TestEnvironment.load()
        let server = try await TestServer.start(configure: { $0.saveBudget = 0.3 },
                                                storage: S3CrashStorage(client: try env.client(secret: "wrong"), telemetry: .silent()))
        await Self.expectRetryLater(try await server.submit(Self.form()), on: server)
        #expect(server.logs.lines.contains { $0.contains("save failed") && $0.contains("SignatureDoesNotMatch") })
        try await server.stop()
    }
}
