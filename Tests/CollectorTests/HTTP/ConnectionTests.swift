import Foundation
import Testing
@testable import Collector

/// What a connection does between and after requests: pipelined requests each get their answer,
/// and the rest of a refused request is not counted as a second error.
@Suite struct ConnectionTests {
    static func request(_ form: MultipartBody) -> [UInt8] {
        Array(RawConnection.head(contentType: form.contentType, contentLength: form.finished.bytes.count).utf8) + form.finished.bytes
    }

    /// HTTP/1.1 pipelining: two crashes in one write get two answers, in order, on one connection.
    @Test func pipelinedRequestsAreEachAnswered() async throws {
        let server = try await TestServer.start()
        var first = MultipartBody(); first.field("ProductName", "First")
        var second = MultipartBody(); second.field("ProductName", "Second")
        let connection = try RawConnection(port: server.port)
        connection.send(Self.request(first) + Self.request(second))
        let answers = connection.readAll(timeout: 3).components(separatedBy: "CrashID=bp-").dropFirst()
        #expect(answers.count == 2)
        let ids = answers.map { String($0.prefix(36)) }
        #expect(ids.map { server.captured.rawCrash($0)?["ProductName"] as? String } == ["First", "Second"])
        try await server.stop()
    }

    /// Memory is reserved as a body arrives, not as declared: clients that declare most of
    /// `MAX_INFLIGHT_BYTES` and send nothing do not turn everyone else away.
    @Test func declaredLengthsDoNotHoldTheBudget() async throws {
        let server = try await TestServer.start { $0.maxInflightBytes = 1 << 20 }
        let idle = try (0..<4).map { _ in try RawConnection(port: server.port) }
        for connection in idle {
            connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 250 << 10))
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        var form = MultipartBody()
        form.field("ProductName", "Firefox")
        form.file("upload_file_minidump", [UInt8](repeating: 7, count: 100_000))
        _ = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        withExtendedLifetime(idle) {}
        try await server.stop()
    }

    /// A crash told to retry later is counted by `crash_outcome` (the drop-rate alert's numerator);
    /// a heartbeat's 503 is not.
    @Test func crashesToldToRetryLaterAreCountedAsSuch() async throws {
        let server = try await TestServer.start(configure: { $0.maxInflightBytes = 10_000 }, storage: FailingCheckStorage())
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 100_000))
        #expect(connection.readAll(timeout: 2).hasPrefix("HTTP/1.1 503"))
        #expect(try await server.request(.GET, "/__heartbeat__").status == 503)
        #expect(await server.statsd.waitForCount("breakwater.crash_outcome", tags: "outcome:retry_later", atLeast: 1) == 1)
        // Refused before any body byte: the audit line gives the declared size.
        #expect(server.auditLines().first { $0["reason"] as? String == "memory" }?["payload_size"] as? Int == 100_000)
        #expect(await server.statsd.waitForCount("breakwater.response", tags: "status:503", atLeast: 2) == 2)
        try await server.stop()
    }

    /// Storage that takes crashes but fails its health check (the heartbeat answers 503).
    final class FailingCheckStorage: CrashStorage {
        func save(_ crash: StoredCrash) throws {}
        func check() -> HealthStatus { .error("down for the test") }
        func crashIDs(onDate date: String) throws -> [String] { [] }
    }

    /// A body refused by its declared length, sent anyway: one 413, one `too_large`, and no
    /// `invalid_http` for the bytes that follow it.
    @Test func theRestOfARefusedBodyIsNotASecondError() async throws {
        let server = try await TestServer.start { $0.maxRequestBytes = 10_000 }
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 200_000))
        for _ in 0..<20 { connection.send([UInt8](repeating: 0x41, count: 10_000)) }
        #expect(connection.readAll(timeout: 2).hasPrefix("HTTP/1.1 413"))
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(server.statsd.counted("breakwater.malformed", tags: "reason:invalid_http") == 0)
        try await server.stop()
    }
}
