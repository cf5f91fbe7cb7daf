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

    /// Posts a body and expects a 400 with `Discarded=malformed_<reason>`, counted once more and
    /// audited once more by this very request: the counter and the audit lines accumulate over a
    /// test, so an earlier case with the same reason must not satisfy a later one.
    static func expectMalformed(_ server: TestServer, _ reason: String, contentType: String, body: [UInt8],
                                path: String = "/submit", endpoint: String = "breakpad", headers: [(String, String)] = [],
                                sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let counted = server.statsd.counted("breakwater.malformed", tags: "reason:\(reason)")
        let audited = server.auditLines().filter { $0["reason"] as? String == reason }.count
        let response = try await server.request(.POST, path, headers: [("Content-Type", contentType)] + headers, body: body)
        #expect(response.status == 400, "\(reason)", sourceLocation: sourceLocation)
        #expect(response.body == "Discarded=malformed_\(reason)", "\(reason): \(response.body)", sourceLocation: sourceLocation)
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:\(reason)", atLeast: counted + 1) == counted + 1,
                "\(reason)", sourceLocation: sourceLocation)
        let lines = server.auditLines().filter { $0["reason"] as? String == reason }
        #expect(lines.count == audited + 1, "\(reason)", sourceLocation: sourceLocation)
        #expect(lines.last?["endpoint"] as? String == endpoint && lines.last?["status"] as? Int == 400
                && lines.last?["outcome"] as? String == "malformed", "\(reason): \(lines.last ?? [:])", sourceLocation: sourceLocation)
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
        // A part header without end: one that does end, but only past the 16 KiB a part's header
        // block may take, is refused; the same part with a header block just under it is taken.
        func paddedHeader(_ padding: Int) -> [UInt8] {
            Array(("--xyzzy\r\nContent-Disposition: form-data; name=\"ProductName\"\r\nX-Pad: " + String(repeating: "x", count: padding)
                   + "\r\n\r\nT\r\n--xyzzy--\r\n").utf8)
        }
        try await Self.expectMalformed(server, "invalid_payload_structure", contentType: type, body: paddedHeader(20 << 10))
        let underTheCap = try BreakpadIntakeTests.crashID(
            of: try await server.request(.POST, "/submit", headers: [("Content-Type", type)], body: paddedHeader(15 << 10)))
        // Tens of thousands of tiny parts.
        let many = Self.form { f in for i in 0..<20_000 { f.field("a\(i)", "b") } }
        try await Self.expectMalformed(server, "too_many_parts", contentType: many.contentType, body: many.finished.bytes)
        // The configured MAX_PARTS (100 here, 1000 by default): 100 parts are taken, 101 refused.
        let atPartLimit = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.form { f in for _ in 0..<100 { f.field("a", "b") } }.finished))
        let overPartLimit = Self.form { f in for _ in 0..<101 { f.field("a", "b") } }
        try await Self.expectMalformed(server, "too_many_parts", contentType: overPartLimit.contentType, body: overPartLimit.finished.bytes)
        // Too many annotations inside the JSON part, one oversize annotation.
        let wide = Self.form { $0.json("extra", "{" + (0..<60).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}") }
        try await Self.expectMalformed(server, "too_many_annotations", contentType: wide.contentType, body: wide.finished.bytes)
        let big = Self.form { $0.field("Comments", String(repeating: "c", count: 5000)) }
        try await Self.expectMalformed(server, "annotation_too_large", contentType: big.contentType, body: big.finished.bytes)
        // Deeply nested and invalid JSON.
        let deep = Self.form { $0.json("extra", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)) }
        try await Self.expectMalformed(server, "invalid_json", contentType: deep.contentType, body: deep.finished.bytes)
        // Invalid UTF-8 in a name (in a value, the annotation is left out: AntennaPayloadTests).
        var badName = MultipartBody()
        badName.part(headers: "Content-Disposition: form-data; name=\"Prod\u{1}uct\"", body: Array("x".utf8))
        try await Self.expectMalformed(server, "invalid_annotation_name", contentType: badName.contentType, body: badName.finished.bytes)

        // Only the crashes at the part limit and with a part header under the cap.
        #expect(Set(server.captured.all.map(\.crashID)) == [underTheCap, atPartLimit])
        // Still serving.
        let ok = try await server.submit(Self.form { $0.field("ProductName", "T") }.finished)
        #expect(ok.status == 200)
        try await server.stop()
    }

    /// `MAX_JSON_DEPTH` comes from configuration and is counted exactly: a Breakpad JSON part and a
    /// Sentry event nested exactly to the limit are taken, one level deeper is `invalid_json`.
    /// Foundation's decoder itself refuses only past 512 levels, so between the limit and 512 the
    /// collector's own check is all that refuses.
    @Test func jsonNestingFollowsMaxJSONDepth() async throws {
        /// An object holding arrays holding `1`: `depth` levels in all (the object is the first).
        func nested(_ depth: Int) -> String {
            #"{"ProductName":"T","Deep":"# + String(repeating: "[", count: depth - 1) + "1" + String(repeating: "]", count: depth - 1) + "}"
        }
        for limit in [8, 64] {
            let server = try await SentryTests.start { if limit != 64 { $0.maxJSONDepth = limit } }
            #expect(server.collector.config.maxJSONDepth == limit)
            let atLimit = Self.form { $0.json("extra", nested(limit)) }
            let id = try BreakpadIntakeTests.crashID(of: try await server.submit(atLimit.finished))
            #expect(server.captured.rawCrash(id)?["Deep"] != nil)
            let tooDeep = Self.form { $0.json("extra", nested(limit + 1)) }
            try await Self.expectMalformed(server, "invalid_json", contentType: tooDeep.contentType, body: tooDeep.finished.bytes)

            let stored = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth], body: Array(nested(limit).utf8))
            _ = try SentryTests.stored(server, eventID: try SentryTests.eventID(of: stored))
            let refused = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth], body: Array(nested(limit + 1).utf8))
            #expect(refused.status == 400 && refused.body == #"{"detail":"invalid_json"}"#, "\(limit): \(refused.body)")
            #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:invalid_json", atLeast: 2) == 2, "\(limit)")
            #expect(server.auditLines().filter { $0["reason"] as? String == "invalid_json" }.map { $0["endpoint"] as? String }
                    == ["breakpad", "sentry_store"], "\(limit)")
            #expect(server.captured.all.count == 2)
            try await server.stop()
        }
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

    /// Path characters in names never reach the filesystem: on real `CRASHSTORAGE=fs` storage,
    /// the files written are exactly the crash's three keys under the root, the hostile dump name
    /// reduced to `upload_file_minidumpx`, and nothing is created beside the root.
    @Test func pathCharactersAndNulBytesAreNeutralized() async throws {
        let parent = try FilesystemCrashStorageTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let root = parent + "/root"
        let server = try await TestServer.start(storage: try FilesystemCrashStorage(root: root))
        let dump = Fixtures.bytes("linux-mini.dmp")
        let form = Self.form {
            $0.field("ProductName", "T\0est")
            $0.field("../../etc/passwd", "x")
            $0.file("../../upload_file_minidump/..\\x", dump)
        }
        let response = try await server.submit(form.finished)
        let id = try BreakpadIntakeTests.crashID(of: response)
        // `.probe-*`: the storage check's own file, written and removed at once.
        let written = FilesystemCrashStorageTests.files(under: parent).filter { !($0 as NSString).lastPathComponent.hasPrefix(".probe-") }
        #expect(written == ["root/v1/dump_names/\(id)", "root/v1/raw_crash/20\(id.suffix(6))/\(id)", "root/v1/upload_file_minidumpx/\(id)"])
        #expect(FilesystemCrashStorageTests.contents("\(root)/v1/upload_file_minidumpx/\(id)") == dump)
        #expect(FilesystemCrashStorageTests.contents("\(root)/v1/dump_names/\(id)") == Array(#"["upload_file_minidumpx"]"#.utf8))
        let rawBytes = try #require(FilesystemCrashStorageTests.contents("\(root)/v1/raw_crash/20\(id.suffix(6))/\(id)"))
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(rawBytes)) as? [String: Any])
        #expect(raw["ProductName"] as? String == "T\0est")
        #expect(raw["../../etc/passwd"] as? String == "x")

        let onlyPath = Self.form { $0.field("ProductName", "T"); $0.file("../..", dump) }
        try await Self.expectMalformed(server, "invalid_dump_name", contentType: onlyPath.contentType, body: onlyPath.finished.bytes)
        try await server.stop()
        #expect(FilesystemCrashStorageTests.files(under: parent).filter { !($0 as NSString).lastPathComponent.hasPrefix(".probe-") }.count == 3)
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

    /// A body that stalls (a Content-Length that lies upwards) is cut off by `READ_TIMEOUT` alone:
    /// the request timeout is far off, so only the read timeout can answer within the wait.
    @Test func contentLengthThatLiesUpwardsTimesOut() async throws {
        let server = try await TestServer.start { $0.readTimeout = 0.5; $0.requestTimeout = 30 }
        let connection = try RawConnection(port: server.port)
        connection.send(RawConnection.head(contentType: "multipart/form-data; boundary=x", contentLength: 1000) + "--x\r\n")
        let (answer, closed) = connection.readUntilClosed(timeout: 5)
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(40))")
        #expect(closed)
        let audited = server.auditLines().filter { $0["reason"] as? String == "read_timeout" }
        #expect(audited.count == 1 && audited.first?["endpoint"] as? String == "breakpad" && audited.first?["status"] as? Int == 408,
                "\(audited)")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:read_timeout", atLeast: 1) == 1)
        #expect(server.statsd.counted("breakwater.malformed", tags: "reason:request_timeout") == 0)
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }

    /// A kept-alive connection that goes quiet after its answer is closed after `READ_TIMEOUT`:
    /// no 408 (no request was under way), no audit line, nothing counted.
    @Test func anIdleKeptAliveConnectionIsClosedAtTheReadTimeout() async throws {
        let server = try await TestServer.start { $0.readTimeout = 0.5; $0.requestTimeout = 30 }
        let connection = try RawConnection(port: server.port)
        let form = Self.form { $0.field("ProductName", "T") }.finished
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: form.bytes.count) + String(decoding: form.bytes, as: UTF8.self))
        let (answer, closed) = connection.readUntilClosed(timeout: 5)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(40))")
        #expect(answer.contains("CrashID=bp-"))
        #expect(closed, "an idle kept-alive connection stays open past READ_TIMEOUT")
        #expect(!answer.contains("408"))
        #expect(server.auditLines().count == 1)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(!server.statsd.lines.contains { $0.hasPrefix("breakwater.malformed:") })
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
        let audited = server.auditLines().filter { $0["reason"] as? String == "request_timeout" }
        #expect(audited.count == 1 && audited.first?["status"] as? Int == 408, "\(audited)")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:request_timeout", atLeast: 1) == 1)
        #expect(server.statsd.counted("breakwater.malformed", tags: "reason:read_timeout") == 0)
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
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:header_too_large", atLeast: 2) == 2)
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
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:invalid_http", atLeast: 2) == 2)
        let audited = server.auditLines().filter { $0["reason"] as? String == "invalid_http" }
        #expect(audited.count == 1 && audited.first?["endpoint"] as? String == "breakpad" && audited.first?["status"] as? Int == 400)
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }
}
