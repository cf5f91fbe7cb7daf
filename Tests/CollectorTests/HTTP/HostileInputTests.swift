import Foundation
import Testing
@testable import Collector

/// Hostile and broken input: each gets a specific answer, a metric and an audit line, nothing is
/// stored, and the process carries on.
@Suite struct HostileInputTests {
    static func form(_ build: (inout MultipartBody) -> Void) -> MultipartBody {
        var f = MultipartBody()
        build(&f)
        return f
    }

    /// Posts a body and expects a 4xx with `Discarded=malformed_<reason>`, counted and audited.
    static func expectMalformed(_ server: TestServer, _ reason: String, contentType: String, body: [UInt8],
                                headers: [(String, String)] = []) async throws {
        let response = try await server.request(.POST, "/submit", headers: [("Content-Type", contentType)] + headers, body: body)
        #expect(response.status == 400, "\(reason)")
        #expect(response.body == "Discarded=malformed_\(reason)", "\(reason)")
        #expect(await server.statsd.waitForLine(containing: "malformed:1|c|#reason:\(reason)") != nil, "\(reason)")
        #expect(server.auditLines().contains { $0["reason"] as? String == reason }, "\(reason)")
    }

    @Test func brokenMultipartBodies() async throws {
        let server = try await TestServer.start { $0.maxParts = 100; $0.maxAnnotations = 50; $0.maxAnnotationBytes = 1000 }
        let boundary = "xyzzy"
        let type = "multipart/form-data; boundary=\(boundary)"

        // Truncated: the closing boundary never came.
        let truncated = Self.form { $0.field("ProductName", "T"); $0.file("upload_file_minidump", Fixtures.bytes("test.dmp")) }
        try await Self.expectMalformed(server, "invalid_payload_structure", contentType: truncated.contentType,
                                       body: Array(truncated.finished.bytes.dropLast(200)))
        // Missing boundary: the body never uses the declared one.
        try await Self.expectMalformed(server, "invalid_payload_structure", contentType: type,
                                       body: Array("--other\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--other--\r\n".utf8))
        // Duplicate boundaries: an empty part without a name.
        try await Self.expectMalformed(server, "invalid_payload_structure", contentType: type,
                                       body: Array("--xyzzy\r\n--xyzzy\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--xyzzy--\r\n".utf8))
        // A part header without end.
        try await Self.expectMalformed(server, "invalid_payload_structure", contentType: type,
                                       body: Array(("--xyzzy\r\nContent-Disposition: form-data; name=\"a\"" + String(repeating: "x", count: 100_000) + "\r\n--xyzzy--\r\n").utf8))
        // Tens of thousands of tiny parts.
        let many = Self.form { f in for i in 0..<20_000 { f.field("a\(i)", "b") } }
        try await Self.expectMalformed(server, "too_many_parts", contentType: many.contentType, body: many.finished.bytes)
        // Too many annotations inside the JSON part, one oversize annotation.
        let wide = Self.form { $0.json("extra", "{" + (0..<60).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}") }
        try await Self.expectMalformed(server, "too_many_annotations", contentType: wide.contentType, body: wide.finished.bytes)
        let big = Self.form { $0.field("Comments", String(repeating: "c", count: 5000)) }
        try await Self.expectMalformed(server, "annotation_too_large", contentType: big.contentType, body: big.finished.bytes)
        // Deeply nested and invalid JSON.
        let deep = Self.form { $0.json("extra", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)) }
        try await Self.expectMalformed(server, "invalid_json", contentType: deep.contentType, body: deep.finished.bytes)
        // Invalid UTF-8 in a value and in a name.
        var badValue = MultipartBody()
        badValue.part(headers: "Content-Disposition: form-data; name=\"ProductName\"", body: [0x46, 0xff, 0xfe, 0x46])
        try await Self.expectMalformed(server, "invalid_annotation_value", contentType: badValue.contentType, body: badValue.finished.bytes)
        var badName = MultipartBody()
        badName.part(headers: "Content-Disposition: form-data; name=\"Prod\u{1}uct\"", body: Array("x".utf8))
        try await Self.expectMalformed(server, "invalid_annotation_name", contentType: badName.contentType, body: badName.finished.bytes)

        #expect(server.captured.all.isEmpty)
        // Still serving.
        let ok = try await server.submit(Self.form { $0.field("ProductName", "T") }.finished)
        #expect(ok.status == 200)
        try await server.stop()
    }

    /// A JSON part's members meet the limits of text parts: name and value each at most
    /// `MAX_ANNOTATION_BYTES`, a string by its UTF-8, any other value by its JSON as stored.
    @Test func jsonPartAnnotationsAreBounded() async throws {
        let server = try await TestServer.start { $0.maxAnnotationBytes = 1000 }
        // 1001 bytes in 501 characters; the first 10 are a marker to look for in the logs.
        let productName = "OVERSIZED_" + String(repeating: "é", count: 495) + "x"
        let oversize = [
            #"{"ProductName":"\#(productName)"}"#,
            #"{"Extra":{"a":"\#(String(repeating: "x", count: 993))"}}"#, // {"a":"…"} is 1001 bytes
            #"{"\#(String(repeating: "n", count: 1001))":"v"}"#,
        ]
        for json in oversize {
            let form = Self.form { $0.json("extra", json) }
            try await Self.expectMalformed(server, "annotation_too_large", contentType: form.contentType, body: form.finished.bytes)
        }
        #expect(server.captured.all.isEmpty)
        #expect(!server.logs.lines.contains { $0.contains("OVERSIZED_") })

        let productAtLimit = String(repeating: "é", count: 500)
        let nameAtLimit = String(repeating: "n", count: 1000)
        let atLimit = Self.form {
            $0.json("extra", #"{"ProductName":"\#(productAtLimit)","Extra":{"a":"\#(String(repeating: "x", count: 992))"},"\#(nameAtLimit)":"v"}"#)
        }
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(atLimit.finished))
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == productAtLimit)
        #expect((raw["Extra"] as? [String: Any])?["a"] as? String == String(repeating: "x", count: 992))
        #expect(raw[nameAtLimit] as? String == "v")
        try await server.stop()
    }

    @Test func pathCharactersAndNulBytesAreNeutralized() async throws {
        let server = try await TestServer.start()
        let dump = Fixtures.bytes("linux-mini.dmp")
        let form = Self.form {
            $0.field("ProductName", "T\0est")
            $0.field("../../etc/passwd", "x")
            $0.file("../../upload_file_minidump/..\\x", dump)
        }
        let response = try await server.submit(form.finished)
        let id = try BreakpadIntakeTests.crashID(of: response)
        let stored = try #require(server.captured[id])
        #expect(stored.dumpNames == ["upload_file_minidumpx"])
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "T\0est")
        #expect(raw["../../etc/passwd"] as? String == "x")
        #expect(StorageKeys.dump("upload_file_minidumpx", id) == "v1/upload_file_minidumpx/\(id)")

        let onlyPath = Self.form { $0.field("ProductName", "T"); $0.file("../..", dump) }
        try await Self.expectMalformed(server, "invalid_dump_name", contentType: onlyPath.contentType, body: onlyPath.finished.bytes)
        try await server.stop()
    }

    @Test func declaredOversizeBodyIsRefusedBeforeItIsRead() async throws {
        let server = try await TestServer.start()
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 100 << 20))
        let answer = connection.readAll(timeout: 2)
        #expect(answer.hasPrefix("HTTP/1.1 413"))
        #expect(answer.hasSuffix("Discarded=too_large"))
        try await server.stop()
    }

    @Test func contentLengthThatLiesUpwardsTimesOut() async throws {
        let server = try await TestServer.start { $0.readTimeout = 0.5; $0.requestTimeout = 1 }
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 1000) + "--x\r\n")
        let answer = connection.readAll(timeout: 3)
        #expect(answer.hasPrefix("HTTP/1.1 408"))
        #expect(server.auditLines().contains { $0["reason"] as? String == "read_timeout" || $0["reason"] as? String == "request_timeout" })
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    @Test func contentLengthThatLiesDownwardsIsMalformed() async throws {
        let server = try await TestServer.start()
        let form = Self.form { $0.field("ProductName", "T") }.finished
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: 20))
        connection.send(form.bytes)
        let answer = connection.readAll(timeout: 2)
        #expect(answer.hasPrefix("HTTP/1.1 400"))
        #expect(answer.contains("Discarded=malformed_invalid_payload_structure"))
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    @Test func slowlorisIsCutOff() async throws {
        let server = try await TestServer.start { $0.readTimeout = 5; $0.requestTimeout = 1.5 }
        let connection = try RawConnection(port: server.port)
        let started = Date()
        let closed = try await Self.trickleHead(connection)
        _ = connection.readAll(timeout: 1)
        // Cut off at the 1.5 s request timeout; the slack is for a loaded machine.
        #expect(closed)
        #expect(Date().timeIntervalSince(started) < 8)
        try await server.stop()
    }

    /// Sends a head one byte every 0.2 s (never idle for a 5 s read timeout, but never ending) for
    /// up to 12 s; true once the server has closed the connection.
    static func trickleHead(_ connection: RawConnection) async throws -> Bool {
        let started = Date()
        for byte in Array("POST /submit HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100) {
            if !connection.send([byte]) { return true }
            if Date().timeIntervalSince(started) > 12 { return false }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        return false
    }

    /// The head deadline holds for each request of a kept-alive connection, not only its first.
    @Test func slowlorisAfterAKeptAliveRequestIsCutOff() async throws {
        let server = try await TestServer.start { $0.readTimeout = 5; $0.requestTimeout = 1.5 }
        let connection = try RawConnection(port: server.port)
        let form = Self.form { $0.field("ProductName", "T") }.finished
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: form.bytes.count) + String(decoding: form.bytes, as: UTF8.self))
        #expect(connection.readAll(timeout: 0.5).hasPrefix("HTTP/1.1 200"))
        let started = Date()
        #expect(try await Self.trickleHead(connection))
        #expect(Date().timeIntervalSince(started) < 8)
        try await server.stop()
    }

    /// A body trickled in, never idle for the read timeout, is cut off at the request timeout
    /// counted from its head (the connection's timer, armed for its first head, moves on to it).
    @Test func aBodyTrickledPastTheRequestTimeoutIs408() async throws {
        let server = try await TestServer.start { $0.readTimeout = 5; $0.requestTimeout = 1.5 }
        let connection = try RawConnection(port: server.port)
        try await Task.sleep(nanoseconds: 500_000_000)
        let started = Date()
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 1000))
        var answer = ""
        while answer.isEmpty, Date().timeIntervalSince(started) < 8, connection.send("a") {
            answer += connection.readAll(timeout: 0.2)
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(answer.hasPrefix("HTTP/1.1 408"))
        #expect(elapsed > 1.4 && elapsed < 6)
        #expect(server.auditLines().contains { $0["reason"] as? String == "request_timeout" })
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    /// A head past `MAX_HEADER_BYTES` is 431 with its reason, metric and audit line; one past
    /// the decoder's own bound (twice ours) is 431 too, counted, with no audit line: its request
    /// line never arrived, so nothing says it was a crash.
    @Test func absurdHeadersAreRefused() async throws {
        let server = try await TestServer.start { $0.maxHeaderBytes = 8192 }
        var auditLines = 0
        for (size, audited) in [(12_000, true), (20_000, false)] {
            let connection = try RawConnection(port: server.port)
            connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 0,
                                               extra: "X-Big: " + String(repeating: "a", count: size) + "\r\n"))
            let answer = connection.readAll(timeout: 2)
            #expect(answer.hasPrefix("HTTP/1.1 431"), "\(size): \(answer.prefix(40))")
            if audited { auditLines += 1 }
            #expect(server.auditLines().filter { $0["reason"] as? String == "header_too_large" }.count == auditLines, "\(size)")
        }
        #expect(await server.statsd.waitForLine(containing: "malformed:2|c|#reason:header_too_large") != nil)
        #expect(server.auditLines().filter { $0["reason"] as? String == "header_too_large" }.count == 1)
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    /// What the HTTP decoder cannot parse is answered 400 by the collector, with the reason
    /// `invalid_http`: a chunked crash upload with a broken chunk size (its head arrived, so it has
    /// an audit line) and bytes that are not HTTP at all (counted only).
    @Test func unparsableHTTPIsA400WithItsReason() async throws {
        let server = try await TestServer.start()
        let chunked = try RawConnection(port: server.port)
        chunked.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                     + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        #expect(chunked.readAll(timeout: 2).hasPrefix("HTTP/1.1 400"))
        let garbage = try RawConnection(port: server.port)
        garbage.send("\u{01}\u{02} not HTTP \r\n\r\n")
        #expect(garbage.readAll(timeout: 2).hasPrefix("HTTP/1.1 400"))
        #expect(await server.statsd.waitForLine(containing: "malformed:2|c|#reason:invalid_http") != nil)
        let audited = server.auditLines().filter { $0["reason"] as? String == "invalid_http" }
        #expect(audited.count == 1 && audited.first?["endpoint"] as? String == "breakpad" && audited.first?["status"] as? Int == 400)
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }
}
