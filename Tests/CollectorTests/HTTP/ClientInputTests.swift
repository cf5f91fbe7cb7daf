import CrashClient
import Foundation
import Testing
@testable import Collector

/// What real crash reporters send is accepted (every compression, nested dumps), and what a
/// hostile client controls cannot corrupt telemetry, overwrite a stored dump or hold a worker's
/// health check.
@Suite struct ClientInputTests {
    static let dump = Fixtures.bytes("linux-mini.dmp")

    static func notes(_ raw: [String: Any]?) -> [String] {
        ((raw?["metadata"] as? [String: Any])?["collector_notes"] as? [String]) ?? []
    }

    static func checksums(_ raw: [String: Any]?) -> [String: String] {
        ((raw?["metadata"] as? [String: Any])?["dump_checksums"] as? [String: String]) ?? [:]
    }

    /// `dump_names` and `dump_checksums` describe exactly the stored bytes.
    static func expectConsistent(_ crash: StoredCrash, _ raw: [String: Any]?) {
        let stored = Dictionary(uniqueKeysWithValues: crash.dumps.map { ($0.name, RawCrash.sha256Hex($0.bytes)) })
        #expect(checksums(raw) == stored)
        #expect(Set(crash.dumps.map { StorageKeys.dump($0.name, crash.crashID) }).count == crash.dumps.count)
    }

    @Test func compressedAndNestedMinidumpPartsAreStoredDecompressed() async throws {
        let server = try await TestServer.start()
        let wrapped: [(String, [UInt8])] = [
            ("gzip", Fixtures.bytes("compressed/linux-mini.dmp.gz")), ("zstd", Fixtures.bytes("compressed/linux-mini.dmp.zst")),
            ("xz", Fixtures.bytes("compressed/linux-mini.dmp.xz")), ("bzip2", Fixtures.bytes("compressed/linux-mini.dmp.bz2")),
            ("nested", MinidumpUnwrappingTests.nested(Self.dump)),
        ]
        for (kind, bytes) in wrapped {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            form.file("upload_file_minidump", bytes)
            let id = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
            let crash = try #require(server.captured[id])
            #expect(crash.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump], "\(kind)")
            let raw = server.captured.rawCrash(id)
            #expect(Self.notes(raw) == [kind == "nested" ? "Unwrapped upload_file_minidump from a nested multipart body."
                                                         : "Decompressed upload_file_minidump (\(kind))."], "\(kind)")
            Self.expectConsistent(crash, raw)
        }
        // The notes name a dump as stored, never by the part's name as sent (here 10 KiB, odd bytes).
        let longName = "upload_file_minidump_content/../\u{1}é" + String(repeating: "x", count: 10_000)
        var odd = MultipartBody()
        odd.field("ProductName", "Test")
        odd.file(longName, Fixtures.bytes("compressed/linux-mini.dmp.gz"))
        let oddID = try BreakpadIntakeTests.crashID(of: try await server.submit(odd.finished))
        let oddCrash = try #require(server.captured[oddID])
        #expect(oddCrash.dumps.map(\.name) == ["upload_file_minidump_contentxx"])
        #expect(Self.notes(server.captured.rawCrash(oddID)) == ["Decompressed upload_file_minidump_contentxx (gzip)."])
        // A cut compressed dump is refused, not stored as garbage.
        var cut = MultipartBody()
        cut.field("ProductName", "Test")
        cut.file("upload_file_minidump", Array(Fixtures.bytes("compressed/linux-mini.dmp.zst").prefix(500)))
        try await HostileInputTests.expectMalformed(server, "bad_dump_compression", contentType: cut.contentType, body: cut.finished.bytes)
        try await server.stop()
    }

    @Test func sentryMinidumpsArriveCompressedToo() async throws {
        let server = try await SentryTests.start()
        // The bare dump as the body, itself xz-compressed, the request zstd-encoded.
        let response = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey",
                                                headers: [("Content-Type", "application/octet-stream"), ("Content-Encoding", "zstd")],
                                                body: Zstd.compress(Fixtures.bytes("compressed/linux-mini.dmp.xz")))
        #expect(response.status == 200)
        let (crash, raw) = try SentryTests.stored(server, eventID: response.body)
        #expect(SentryTests.dump(crash, "upload_file_minidump") == Self.dump)
        #expect(Self.notes(raw) == ["Decompressed upload_file_minidump (xz)."])
        #expect(raw["metadata"].flatMap { ($0 as? [String: Any])?["payload_compressed"] as? String } == "1")

        // An envelope whose minidump attachment is gzip, plus an attachment that claims its name.
        let minidump = Fixtures.bytes("compressed/linux-mini.dmp.gz")
        let log = Array("log".utf8)
        var envelope = Array("{\"event_id\":\"0123456789abcdef0123456789abcdef\"}\n".utf8)
        envelope += Array("{\"type\":\"attachment\",\"length\":\(log.count),\"filename\":\"upload_file_minidump\"}\n".utf8) + log + [10]
        envelope += Array("{\"type\":\"attachment\",\"length\":\(minidump.count),\"attachment_type\":\"event.minidump\",\"filename\":\"m.dmp\"}\n".utf8)
            + minidump + [10]
        let answer = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth, ("Content-Type", "application/x-sentry-envelope")],
                                              body: envelope)
        #expect(answer.status == 200)
        let (stored, storedRaw) = try SentryTests.stored(server, eventID: "0123456789abcdef0123456789abcdef")
        #expect(SentryTests.dump(stored, "upload_file_minidump") == Self.dump)
        #expect(SentryTests.dump(stored, "upload_file_minidump_2") == log)
        Self.expectConsistent(stored, storedRaw)
        try await server.stop()
    }

    /// `Content-Encoding: zstd` on /submit, the generic endpoint and the Sentry endpoints.
    @Test func zstdContentEncodingOnEveryEndpoint() async throws {
        let server = try await SentryTests.start { $0.maxDecompressedBytes = 8 << 20 }
        var form = MultipartBody()
        form.field("ProductName", "Zstd")
        form.file("upload_file_minidump", Self.dump)
        for path in ["/submit", "/generic/submit"] {
            let response = try await server.request(.POST, path, headers: [("Content-Type", form.contentType), ("Content-Encoding", "zstd")],
                                                    body: Zstd.compress(form.finished.bytes))
            let id = try BreakpadIntakeTests.crashID(of: response)
            #expect(server.captured[id]?.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump], "\(path)")
            #expect((server.captured.rawCrash(id)?["metadata"] as? [String: Any])?["payload_compressed"] as? String == "1")
        }
        let event = Array(#"{"event_id":"fedcba9876543210fedcba9876543210","release":"1.0"}"#.utf8)
        let store = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                             body: Zstd.compress(event))
        #expect(store.status == 200)
        #expect(try SentryTests.stored(server, eventID: "fedcba9876543210fedcba9876543210").raw["Version"] as? String == "1.0")
        let envelope = Array("{}\n{\"type\":\"event\"}\n{\"event_id\":\"aaaabbbbccccddddeeeeffff00001111\"}\n".utf8)
        let posted = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                              body: Zstd.compress(envelope))
        #expect(posted.status == 200)
        _ = try SentryTests.stored(server, eventID: "aaaabbbbccccddddeeeeffff00001111")

        let broken = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                              body: Array(Zstd.compress(event).dropLast(4)))
        #expect(broken.status == 400 && broken.body.contains("bad_zstd"))
        let bomb = try await server.request(.POST, "/submit", headers: [("Content-Type", form.contentType), ("Content-Encoding", "zstd")],
                                            body: Fixtures.bytes("compressed/zeros-64MiB.zst"))
        #expect(bomb.status == 413)
        // The sampler reports the bytes held against the in-flight budget.
        #expect(await server.statsd.waitForLine(containing: "breakwater.inflight.bytes:0|g") != nil)
        try await server.stop()
    }

    /// Two parts can never share a storage key: `dump` is reserved, and names that would merge are
    /// renamed, with `dump_names` and `dump_checksums` matching the stored bytes.
    @Test func storageKeysAreInjective() async throws {
        let server = try await TestServer.start()
        var reserved = MultipartBody()
        reserved.field("ProductName", "Test")
        reserved.file("upload_file_minidump", Self.dump)
        reserved.file("dump", Array("other".utf8))
        try await HostileInputTests.expectMalformed(server, "invalid_dump_name", contentType: reserved.contentType, body: reserved.finished.bytes)

        let long = "upload_file_minidump_browser_" + "x"
        var merging = MultipartBody()
        merging.field("ProductName", "Test")
        merging.file("upload_file_minidump", Self.dump)
        merging.file("upload_file_minidump", Array("second".utf8))
        merging.file(long + "1", Array("one".utf8))
        merging.file(long + "2", Array("two".utf8))
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(merging.finished))
        let crash = try #require(server.captured[id])
        #expect(crash.dumpNames == ["upload_file_minidump", "upload_file_minidump_2", "upload_file_minidump_browser_x",
                                    "upload_file_minidump_browser_2"])
        #expect(crash.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump, Array("second".utf8), Array("one".utf8), Array("two".utf8)])
        Self.expectConsistent(crash, server.captured.rawCrash(id))
        try await server.stop()
    }

    /// An item type crafted to inject statsd lines is counted as `other`; no injected line is sent.
    @Test func clientTextCannotInjectStatsdLinesOrSeries() async throws {
        let server = try await SentryTests.start()
        var envelope = Array("{}\n".utf8)
        for i in 0..<20 {
            envelope += Array("{\"type\":\"x\(i)\\nbreakwater.save_crash:1|c|#result:INJECTED\",\"length\":2}\n{}\n".utf8)
        }
        envelope += Array("{\"type\":\"session\",\"length\":2}\n{}\n".utf8)
        let response = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth], body: envelope)
        #expect(response.status == 200)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:session", atLeast: 1) > 0)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:other", atLeast: 20) == 20)
        #expect(!server.statsd.lines.contains { $0.contains("INJECTED") })
        let metrics = try await server.request(.GET, "/metrics")
        #expect(!metrics.body.contains("INJECTED"))
        #expect(metrics.body.contains(#"breakwater_ignored_item_total{type="other"} 20"#))
        try await server.stop()
    }

    /// The generic endpoint reads urlencoded forms a field at a time under the same limits.
    @Test func genericURLEncodedFormsHonourTheLimits() async throws {
        let server = try await TestServer.start { $0.maxParts = 100; $0.maxAnnotations = 50; $0.maxAnnotationBytes = 1000 }
        func post(_ body: String) async throws -> TestServer.Response {
            try await server.request(.POST, "/generic/submit", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
        }
        let ok = try await post("ProductName=Test&Comments=a+b%21&Nul=x%00y")
        let id = try BreakpadIntakeTests.crashID(of: ok)
        let raw = server.captured.rawCrash(id)
        #expect(raw?["Comments"] as? String == "a b!" && raw?["Nul"] as? String == "xy")
        // One name repeated: a single annotation, but 20,000 fields.
        for (body, reason) in [(Array(repeating: "a=b", count: 20_000).joined(separator: "&"), "too_many_parts"),
                               ((0..<60).map { "k\($0)=v" }.joined(separator: "&"), "too_many_annotations"),
                               ("ProductName=" + String(repeating: "%41", count: 2000), "annotation_too_large")] {
            let response = try await post(body)
            #expect(response.status == 400 && response.body == "Discarded=malformed_\(reason)", "\(reason): \(response.body)")
        }
        try await server.stop()
    }

    /// With crashes held by a storage that hangs, `/__heartbeat__` still answers its
    /// JSON at once, from the heartbeat's own queue.
    @Test func heartbeatNeverWaitsForWorkers() async throws {
        let storage = HangingStorage()
        let server = try await TestServer.start(configure: { $0.workers = 1; $0.workerQueue = 1; $0.saveBudget = 30 }, storage: storage)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let held = Task { try await server.submit(form.finished) }
        let queued = Task { try await server.submit(form.finished) }
        for _ in 0..<500 where !storage.entered { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(storage.entered)
        for _ in 0..<5 {
            let heartbeat = try await server.request(.GET, "/__heartbeat__")
            #expect(heartbeat.status == 200)
            #expect(heartbeat.headers.first(name: "Content-Type") == "application/json")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(heartbeat.body.utf8)) as? [String: Any])
            #expect(json["status"] as? String == "ok")
            #expect((json["checks"] as? [String: Any])?["storage"] as? String == "ok")
        }
        storage.release()
        _ = try await held.value
        _ = try await queued.value
        try await server.stop()
    }
}

/// Storage whose first save blocks until released (a hung backend holding the only worker).
final class HangingStorage: CrashStorage, @unchecked Sendable {
    private let gate = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var started = false

    var entered: Bool { lock.withLock { started } }

    func release() { gate.signal() }

    func save(_ crash: StoredCrash) throws {
        lock.withLock { started = true }
        gate.wait()
        gate.signal()
    }

    func check() -> HealthStatus { .ok }
    func crashIDs(onDate date: String) throws -> [String] { [] }
}
