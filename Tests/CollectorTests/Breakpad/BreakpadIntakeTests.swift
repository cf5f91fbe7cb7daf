import Crypto
import Foundation
import Testing
@testable import Collector
import CrashClient

/// `/submit` end to end: a real HTTP client against the in-process server, asserting the answer,
/// the stored raw crash, the audit line and the statsd packets.
@Suite struct BreakpadIntakeTests {
    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Asserts an accepted answer and returns the crash ID.
    static func crashID(of response: TestServer.Response) throws -> String {
        #expect(response.status == 200)
        #expect(response.body.hasPrefix("CrashID=bp-") && response.body.hasSuffix("\n"))
        let id = String(response.body.dropFirst("CrashID=bp-".count).dropLast())
        #expect(id.wholeMatch(of: #/[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{6}[0-9]{6}/#) != nil)
        return id
    }

    @Test func crashpadGzippedMultipart() async throws {
        let server = try await TestServer.start()
        let dump = Fixtures.bytes("simple-crashpad.dmp")
        var form = MultipartBody()
        form.field("prod", "Electron")
        form.field("ProductName", "Electron")
        form.field("ver", "30.0.1")
        form.file("upload_file_minidump", dump)
        let response = try await server.submit(form.finished, gzip: true, headers: [("User-Agent", "Crashpad/0.8.0")])
        let id = try Self.crashID(of: response)

        #expect(id.hasSuffix("0" + CrashID.yymmdd(Date())))
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "Electron")
        #expect(raw["uuid"] as? String == id)
        #expect(raw["version"] as? Int == 2)
        #expect((raw["submitted_timestamp"] as? String)?.hasSuffix("+00:00") == true)
        let metadata = try #require(raw["metadata"] as? [String: Any])
        #expect(metadata["payload"] as? String == "multipart")
        #expect(metadata["payload_compressed"] as? String == "1")
        #expect(metadata["user_agent"] as? String == "Crashpad/0.8.0")
        #expect(metadata["throttle_rule"] as? String == "ACCEPT_ALL")
        #expect((metadata["dump_checksums"] as? [String: String])?["upload_file_minidump"] == Self.sha256(dump))
        let stored = try #require(server.captured[id])
        #expect(Array(stored.dumps[0].bytes.readableBytesView) == dump)
        #expect(server.capturedQueue.published == [id])

        let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == id })
        #expect(audit["outcome"] as? String == "accepted")
        #expect(audit["endpoint"] as? String == "breakpad")
        #expect(audit["dumps"] as? [String] == ["upload_file_minidump"])
        #expect(audit["queued"] as? Bool == true)
        try await server.stop()
    }

    /// Keys are written in the order of their UTF-8 bytes, which is code point order, as Python's
    /// `sort_keys` writes Antenna's raw crashes: `e` + combining acute (65 CC 81) before `f`, where
    /// Swift's String order (canonical equivalence) would put it after, as `é`.
    @Test func rawCrashKeysAreInCodePointOrder() async throws {
        let server = try await TestServer.start()
        var form = MultipartBody()
        for name in ["f", "e\u{301}x", "ä", "Z", "ProductName", "é"] { form.field(name, "1") }
        form.file("upload_file_minidump", Fixtures.bytes("test.dmp"))
        let id = try Self.crashID(of: try await server.submit(form.finished))
        let raw = String(decoding: try #require(server.captured[id]).rawCrash, as: UTF8.self)
        let keys = raw.matches(of: #/"([^"]+)":/#).map { String($0.output.1) }.filter { !$0.contains("_") }
        #expect(keys == ["ProductName", "Z", "e\u{301}x", "f", "metadata", "payload", "uuid", "version", "ä", "é"])
        try await server.stop()
    }

    @Test func mozillaExtraJSONAndTwoDumps() async throws {
        let server = try await TestServer.start()
        let main = Fixtures.bytes("test.dmp"), browser = Fixtures.bytes("linux-mini.dmp")
        var form = MultipartBody()
        form.json("extra", #"{"ProductName":"Firefox","Version":"120.0","ReleaseChannel":"release","Email":"someone@example.com","TelemetryEnvironment":"{\"a\":1}"}"#)
        form.file("upload_file_minidump", main)
        form.file("upload_file_minidump_browser", browser)
        let id = try Self.crashID(of: try await server.submit(form.finished))
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "Firefox")
        #expect(raw["Email"] == nil)
        let metadata = try #require(raw["metadata"] as? [String: Any])
        #expect(metadata["payload"] as? String == "json")
        #expect(metadata["collector_notes"] as? [String] == ["Removed Email from raw crash."])
        let sums = try #require(metadata["dump_checksums"] as? [String: String])
        #expect(sums == ["upload_file_minidump": Self.sha256(main), "upload_file_minidump_browser": Self.sha256(browser)])
        #expect(Set(server.captured[id]!.dumpNames) == ["upload_file_minidump", "upload_file_minidump_browser"])
        try await server.stop()
    }

    @Test func breakpadLinuxPlainPost() async throws {
        let server = try await TestServer.start()
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.field("Version", "1.0")
        form.field("ptime", "1234")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        let id = try Self.crashID(of: try await server.submit(form.finished))
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ptime"] as? String == "1234")
        #expect((raw["metadata"] as? [String: Any])?["payload_compressed"] as? String == "0")
        try await server.stop()
    }

    /// Every malformed reason of the design: exact status and body, nothing stored, counted, audited.
    @Test func malformedReasons() async throws {
        let server = try await TestServer.start { $0.submitterToken = "s3cret" }
        var good = MultipartBody()
        good.field("ProductName", "Test")
        let boundaryType = good.contentType
        var badJSON = MultipartBody(); badJSON.json("extra", "{not json")
        var arrayJSON = MultipartBody(); arrayJSON.json("extra", "[1,2]")
        var onlyDump = MultipartBody(); onlyDump.file("upload_file_minidump", [1, 2, 3])
        var reservedDump = MultipartBody(); reservedDump.field("ProductName", "T"); reservedDump.file("raw_crash", [1])
        var badUUID = MultipartBody(); badUUID.field("ProductName", "T"); badUUID.field("uuid", "not-a-uuid")
        var clientUUID = MultipartBody(); clientUUID.field("ProductName", "T"); clientUUID.field("uuid", "de1bb258-cbbf-4589-a673-34f800160918")

        let cases: [(reason: String, status: Int, body: String, headers: [(String, String)], payload: [UInt8])] = [
            ("no_content_type", 400, "Discarded=malformed_no_content_type", [], good.finished.bytes),
            ("wrong_content_type", 400, "Discarded=malformed_wrong_content_type", [("Content-Type", "application/x-www-form-urlencoded")], Array("a=b".utf8)),
            ("no_boundary", 400, "Discarded=malformed_no_boundary", [("Content-Type", "multipart/form-data")], good.finished.bytes),
            ("no_content_length", 400, "Discarded=malformed_no_content_length", [("Content-Type", boundaryType)], []),
            ("bad_gzip", 400, "Discarded=malformed_bad_gzip", [("Content-Type", boundaryType), ("Content-Encoding", "gzip")], good.finished.bytes),
            ("invalid_payload_structure", 400, "Discarded=malformed_invalid_payload_structure", [("Content-Type", boundaryType)], good.bytes),
            ("invalid_json", 400, "Discarded=malformed_invalid_json", [("Content-Type", badJSON.contentType)], badJSON.finished.bytes),
            ("invalid_json_value", 400, "Discarded=malformed_invalid_json_value", [("Content-Type", arrayJSON.contentType)], arrayJSON.finished.bytes),
            ("no_annotations", 400, "Discarded=malformed_no_annotations", [("Content-Type", onlyDump.contentType)], onlyDump.finished.bytes),
            ("invalid_dump_name", 400, "Discarded=malformed_invalid_dump_name", [("Content-Type", reservedDump.contentType)], reservedDump.finished.bytes),
            ("invalid_uuid", 400, "Discarded=malformed_invalid_uuid", [("Content-Type", badUUID.contentType), ("Authorization", "Bearer s3cret")], badUUID.finished.bytes),
            ("unauthorized_uuid", 401, "Discarded=unauthorized_uuid", [("Content-Type", clientUUID.contentType), ("Authorization", "Bearer wrong")], clientUUID.finished.bytes),
        ]
        for c in cases {
            let response = try await server.request(.POST, "/submit", headers: c.headers, body: c.payload)
            #expect(response.status == c.status, "\(c.reason)")
            #expect(response.body == c.body, "\(c.reason)")
            #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:\(c.reason)", atLeast: 1) > 0, "\(c.reason)")
            #expect(server.auditLines().contains { $0["reason"] as? String == c.reason && $0["status"] as? Int == c.status }, "\(c.reason)")
        }
        #expect(server.captured.all.isEmpty)
        #expect(server.capturedQueue.published.isEmpty)

        // The same client crash ID with the right token is honoured.
        let honoured = try await server.submit(clientUUID.finished, headers: [("Authorization", "Bearer s3cret")])
        #expect(honoured.body == "CrashID=bp-de1bb258-cbbf-4589-a673-34f800160918\n")
        try await server.stop()
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let server = try await TestServer.start { $0.maxRequestBytes = 50_000 }
        try await Self.expectTooLarge(server, dump: Fixtures.bytes("pipeline-inlines-macos-segv.dmp"))
        try await server.stop()
    }

    /// Submits a crash carrying `dump`: 413 `too_large`, counted, audited once, nothing stored.
    static func expectTooLarge(_ server: TestServer, dump: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", dump)
        let response = try await server.submit(form.finished)
        #expect(response.status == 413 && response.body == "Discarded=too_large", sourceLocation: sourceLocation)
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1,
                sourceLocation: sourceLocation)
        expectOneAuditLine(server, reason: "too_large", outcome: "too_large", status: 413, sourceLocation: sourceLocation)
        #expect(server.captured.all.isEmpty, sourceLocation: sourceLocation)
    }

    /// The one audit line of a crash refused with `reason`, checked against what the client saw.
    static func expectOneAuditLine(_ server: TestServer, reason: String, outcome: String, status: Int, endpoint: String = "breakpad",
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = server.auditLines().filter { $0["reason"] as? String == reason }
        #expect(lines.count == 1, "\(lines)", sourceLocation: sourceLocation)
        #expect(lines.first?["endpoint"] as? String == endpoint && lines.first?["outcome"] as? String == outcome
                && lines.first?["status"] as? Int == status, "\(lines)", sourceLocation: sourceLocation)
    }

    /// A 200 MiB gzip bomb against an 8 MiB `MAX_DECOMPRESSED_BYTES`: 413, counted and audited.
    /// Memory stays bounded: with a 16 MiB in-flight budget, inflating past the cap would run out
    /// of budget (503) before it was done, so a 413 means inflation stopped at the cap.
    @Test func gzipBombIs413WithBoundedMemory() async throws {
        let server = try await TestServer.start { $0.maxDecompressedBytes = 8 << 20; $0.maxInflightBytes = 16 << 20 }
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", [UInt8](repeating: 0, count: 200 << 20))
        let bomb = Deflater.compress(form.finished.bytes)
        #expect(bomb.count < 1 << 20)
        let response = try await server.request(.POST, "/submit", headers: [("Content-Type", form.contentType), ("Content-Encoding", "gzip")], body: bomb)
        #expect(response.status == 413)
        #expect(response.body == "Discarded=too_large")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        Self.expectOneAuditLine(server, reason: "too_large", outcome: "too_large", status: 413)
        #expect(server.statsd.counted("breakwater.overload", tags: "reason:memory") == 0)
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    /// A minidump part that is itself a zstd bomb (64 MiB of zeros in a few KB) is refused at
    /// `MAX_DECOMPRESSED_BYTES`, like a compressed body.
    @Test func compressedDumpBombIs413() async throws {
        let server = try await TestServer.start { $0.maxDecompressedBytes = 8 << 20 }
        try await Self.expectTooLarge(server, dump: Fixtures.bytes("compressed/zeros-64MiB.zst"))
        try await server.stop()
    }

    /// Stock Crashpad uploads chunked, without Content-Length: `MAX_REQUEST_BYTES` holds as the
    /// chunks arrive, not only against a declared length. The same upload under the limit is taken.
    @Test func chunkedBodyOverTheLimitIs413() async throws {
        let server = try await TestServer.start { $0.maxRequestBytes = 50_000 }
        var small = CrashpadRequest(dump: Fixtures.bytes("linux-mini.dmp"))
        small.chunkSize = 4096
        let taken = try RawConnection(port: server.port)
        taken.send(small.bytes)
        #expect(taken.readAll(timeout: 5).contains("CrashID=bp-"))

        // Random bytes: gzip cannot shrink them under the limit.
        var crashpad = CrashpadRequest(dump: (0..<200_000).map { _ in UInt8.random(in: 0...255) })
        crashpad.chunkSize = 16 << 10
        let bytes = crashpad.bytes
        #expect(bytes.count > 150_000)
        let connection = try RawConnection(port: server.port)
        connection.send(bytes)
        let (answer, closed) = connection.readUntilClosed(timeout: 5)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(40))")
        #expect(answer.hasSuffix("Discarded=too_large"))
        #expect(closed)
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        Self.expectOneAuditLine(server, reason: "too_large", outcome: "too_large", status: 413)
        #expect(server.captured.all.count == 1)
        try await server.stop()
    }

    /// Past `MAX_INFLIGHT_BYTES`, `/submit` answers what a Breakpad client retries: 503
    /// `Discarded=retry_later` with `Retry-After`, counted as `overload` (`reason:memory`) and
    /// audited; for a declared length at the head, and for a chunked body as it arrives. What was
    /// reserved comes back: a small crash is taken afterwards.
    @Test func overTheInflightBudgetIs503() async throws {
        let server = try await TestServer.start { $0.maxInflightBytes = 64 << 10 }
        let declared = try RawConnection(port: server.port)
        declared.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 100_000))
        var chunked = CrashpadRequest(dump: (0..<100_000).map { _ in UInt8.random(in: 0...255) })
        chunked.chunkSize = 16 << 10
        let streamed = try RawConnection(port: server.port)
        streamed.send(chunked.bytes)
        for (name, connection) in [("declared", declared), ("chunked", streamed)] {
            let answer = connection.readAll(timeout: 5)
            #expect(answer.hasPrefix("HTTP/1.1 503"), "\(name): \(answer.prefix(40))")
            #expect(answer.contains("\r\nRetry-After: 30\r\n"), "\(name)")
            #expect(answer.hasSuffix("\r\n\r\nDiscarded=retry_later"), "\(name)")
        }
        #expect(await server.statsd.waitForCount("breakwater.overload", tags: "reason:memory", atLeast: 2) == 2)
        let lines = server.auditLines().filter { $0["reason"] as? String == "memory" }
        #expect(lines.count == 2 && lines.allSatisfy {
            $0["endpoint"] as? String == "breakpad" && $0["outcome"] as? String == "retry_later" && $0["status"] as? Int == 503
        }, "\(lines)")
        #expect(server.statsd.counted("breakwater.malformed", tags: "reason:memory") == 0)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        _ = try Self.crashID(of: try await server.submit(form.finished))
        try await server.stop()
    }

    /// A Breakpad JSON part is parsed only once 48 times its size is reserved: one that could never
    /// fit `MAX_INFLIGHT_BYTES` is 413, counted and audited, as on the Sentry endpoints.
    @Test func aJSONPartBeyondTheParseBudgetIs413() async throws {
        let server = try await TestServer.start { $0.maxInflightBytes = 4 << 20 }
        var form = MultipartBody()
        form.json("extra", #"{"ProductName":"T","Comments":""# + String(repeating: "c", count: 100_000) + #""}"#)  // 100 KB: 4.8 MB to parse
        let response = try await server.submit(form.finished)
        #expect(response.status == 413)
        #expect(response.body == "Discarded=too_large")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        Self.expectOneAuditLine(server, reason: "too_large", outcome: "too_large", status: 413)
        #expect(server.captured.all.isEmpty)
        // 60 KB of JSON (2.9 MB to parse) fits.
        var fits = MultipartBody()
        fits.json("extra", #"{"ProductName":"T","Comments":""# + String(repeating: "c", count: 60_000) + #""}"#)
        _ = try Self.crashID(of: try await server.submit(fits.finished))
        try await server.stop()
    }

    @Test func statsdPacketsForOneCrash() async throws {
        let server = try await TestServer.start()
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        _ = try Self.crashID(of: try await server.submit(form.finished))
        for fragments in [["breakwater.incoming_crash:1|c|#endpoint:breakpad"], ["breakwater.throttle:1|c|#result:accept"],
                          ["breakwater.throttle_rule:1|c|#rule:ACCEPT_ALL"], ["breakwater.crash_size:", "|h|#payload:uncompressed"],
                          ["breakwater.decode.time:", "|ms"], ["breakwater.throttle.time:", "|ms"], ["breakwater.store.time:", "|ms"],
                          ["breakwater.publish.time:", "|ms"], ["breakwater.request.time:", "|ms"],
                          ["breakwater.save_crash:1|c|#result:success"], ["breakwater.publish_crash:1|c|#result:success"],
                          ["breakwater.response:1|c|#status:200"]] {
            #expect(await server.statsd.waitForLine(containingAll: fragments) != nil, "\(fragments)")
        }
        #expect(server.statsd.datagrams.allSatisfy { $0.count <= 1432 })
        try await server.stop()
    }

    @Test func fullWorkerQueueAnswers503() async throws {
        let storage = CapturingCrashStorage()
        storage.delay = 1.0
        let server = try await TestServer.start(configure: { $0.workers = 1; $0.workerQueue = 1 }, storage: storage)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let body = form.finished
        // One worker's threads all wait on the slow storage, one more crash waits in the queue.
        let responses = try await withThrowingTaskGroup(of: TestServer.Response.self) { group in
            for _ in 0..<WorkerPool.threadsPerWorker + 3 { group.addTask { try await server.submit(body) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let busy = responses.filter { $0.status == 503 }
        #expect(busy.count >= 2)
        #expect(busy.allSatisfy { $0.body == "Discarded=retry_later" && $0.headers.first(name: "Retry-After") != nil })
        #expect(responses.filter { $0.status == 200 }.count >= 1)
        #expect(await server.statsd.waitForCount("breakwater.overload", tags: "reason:queue_full", atLeast: busy.count) == busy.count)
        #expect(server.auditLines().contains { $0["outcome"] as? String == "retry_later" && $0["reason"] as? String == "queue_full" })
        try await server.stop()
    }

    @Test func storageFailureIs503NeverACrashID() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await TestServer.start(configure: { $0.saveBudget = 0.5 }, storage: storage)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let response = try await server.submit(form.finished)
        #expect(response.status == 503)
        #expect(response.body == "Discarded=retry_later")
        #expect(response.headers.first(name: "Retry-After") != nil)
        #expect(server.capturedQueue.published.isEmpty)
        try await server.stop()
    }

    @Test func inFlightRequestIsAnsweredDuringShutdown() async throws {
        let storage = CapturingCrashStorage()
        storage.delay = 1.0
        let server = try await TestServer.start(storage: storage)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let body = form.finished
        let response = Task { try await server.submit(body) }
        // Shut down only once the request is on a worker.
        let end = Date().addingTimeInterval(10)
        while server.collector.pool.inFlight == 0 && Date() < end { try? await Task.sleep(nanoseconds: 10_000_000) }
        #expect(server.collector.pool.inFlight == 1)
        await server.collector.shutdown(deadline: Date().addingTimeInterval(5))
        let answered = await response.result
        try await server.client.shutdown()
        let id = try Self.crashID(of: try answered.get())
        #expect(storage[id] != nil)
    }
}
