import Foundation
import NIOCore
import Testing
@testable import Collector
import CrashClient

/// Rejects crashes of an old release by the Socorro field names, as a rules file would.
struct OldReleaseThrottler: Throttler {
    func throttle(_ crash: CrashReport) -> ThrottleDecision {
        crash.field("ProductName") == "MyApp" && crash.field("Version") == "app@0.9"
            ? ThrottleDecision(.reject, rule: "old_release") : ThrottleDecision(.accept, rule: "accept_rest")
    }
}

/// The Sentry endpoints: decoders on captured requests, the real raven and sentry-sdk clients end
/// to end, every bad input answered in Sentry's protocol, keys, throttling and retry answers.
@Suite struct SentryTests {
    static let limits = DecodeLimits(CollectorConfiguration())

    static let auth = ("X-Sentry-Auth", "Sentry sentry_key=pubkey, sentry_version=7, sentry_client=test/1.0")

    static func start(keys: [String: String] = ["42": "pubkey"], throttler: Throttler? = nil,
                      storage: CapturingCrashStorage = CapturingCrashStorage(),
                      configure: @escaping (inout CollectorConfiguration) -> Void = { _ in }) async throws -> TestServer {
        try await TestServer.start(configure: { c in
            c.sentryProjectKeys = keys
            c.sentryProducts = ["42": "MyApp"]
            configure(&c)
        }, throttler: throttler, storage: storage)
    }

    /// The stored crash whose raw crash names `eventID`.
    /// The crash whose event id a client was answered (hyphenated by the minidump endpoint).
    static func stored(_ server: TestServer, eventID: String) throws -> (crash: StoredCrash, raw: [String: Any]) {
        let hex = eventID.replacing("-", with: "")
        let crash = try #require(server.captured.all.first { server.captured.rawCrash($0.crashID)?["sentry_event_id"] as? String == hex })
        return (crash, server.captured.rawCrash(crash.crashID)!)
    }

    static func dump(_ crash: StoredCrash, _ name: String) -> [UInt8]? {
        crash.dumps.first { $0.name == name }.map { Array($0.bytes.readableBytesView) }
    }

    static func eventID(of response: TestServer.Response) throws -> String {
        #expect(response.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        let id = try #require(body["id"] as? String)
        #expect(id.wholeMatch(of: #/[0-9a-f]{32}/#) != nil)
        return id
    }

    // MARK: decoders on captured requests

    @Test func brotliDecoderOnCapturedEnvelope() throws {
        let captured = CapturedRequest("sentry-python-2.75-envelope-br.http")
        let body = try BrotliDecoder.decompress(ByteBuffer(bytes: captured.body), limit: 1 << 20)
        let envelope = try SentryEnvelope.parse(body, maxItems: 100, limits: Self.limits, memory: .unlimited)
        #expect(envelope.items.map(\.type).contains("event"))
        #expect(throws: Inflater.Failure.tooLarge) { try BrotliDecoder.decompress(ByteBuffer(bytes: captured.body), limit: 100) }
        #expect(throws: Inflater.Failure.badData) { try BrotliDecoder.decompress(ByteBuffer(bytes: captured.body.dropLast(10)), limit: 1 << 20) }
    }

    @Test func envelopeParserOnCapturedGzipEnvelope() throws {
        let captured = CapturedRequest("sentry-python-2.75-envelope-gzip-attachment.http")
        let body = try Inflater.inflate(ByteBuffer(bytes: captured.body), format: .gzip, limit: 1 << 20)
        let envelope = try SentryEnvelope.parse(body, maxItems: 100, limits: Self.limits, memory: .unlimited)
        #expect(envelope.headers["event_id"] == .string("6e4f2c65f7d44ffea787fce46d202c5f"))
        #expect(envelope.items.map(\.type) == ["event", "attachment"])
        #expect(envelope.items[1].payload.readableBytes == 27549)
        #expect(Array(envelope.items[1].payload.readableBytesView) == Fixtures.bytes("linux-mini.dmp"))
    }

    @Test func envelopeItemsWithoutLength() throws {
        let text = "{}\n{\"type\":\"event\"}\n{\"message\":\"a\"}\n\n{\"type\":\"session\",\"length\":2}\n{}"
        let envelope = try SentryEnvelope.parse(ByteBuffer(string: text), maxItems: 10, limits: Self.limits, memory: .unlimited)
        #expect(envelope.items.map(\.type) == ["event", "session"])
        #expect(String(buffer: envelope.items[0].payload) == "{\"message\":\"a\"}")
        #expect(String(buffer: envelope.items[1].payload) == "{}")
        #expect(throws: Malformed("item_too_long")) {
            try SentryEnvelope.parse(ByteBuffer(string: "{}\n{\"type\":\"event\",\"length\":50}\n{}"), maxItems: 10, limits: Self.limits, memory: .unlimited)
        }
        #expect(throws: Malformed("too_many_items")) { try SentryEnvelope.parse(ByteBuffer(string: text), maxItems: 1, limits: Self.limits, memory: .unlimited) }
        #expect(throws: Malformed("invalid_envelope")) { try SentryEnvelope.parse(ByteBuffer(string: "nope\n"), maxItems: 1, limits: Self.limits, memory: .unlimited) }
    }

    @Test func capturedRequestsLandInStorage() async throws {
        let server = try await Self.start()
        let cases: [(file: String, endpoint: String, eventID: String, dumps: Set<String>)] = [
            ("raven-6.10-store-deflate.http", "sentry_store", "a10d0189209845c58b723b00fefc8461", ["sentry_event"]),
            ("sentry-python-2.75-envelope-gzip-attachment.http", "sentry_envelope", "6e4f2c65f7d44ffea787fce46d202c5f", ["sentry_event", "crashdmp"]),
            ("sentry-python-2.75-envelope-br.http", "sentry_envelope", "", ["sentry_event"]),
        ]
        for c in cases {
            let captured = CapturedRequest(c.file)
            let response = try await server.request(.POST, captured.path, headers: captured.resendHeaders, body: captured.body)
            let id = try Self.eventID(of: response)
            if !c.eventID.isEmpty { #expect(id == c.eventID) }
            let (crash, raw) = try Self.stored(server, eventID: id)
            #expect(Set(crash.dumpNames) == c.dumps, "\(c.file)")
            #expect(raw["sentry_project_id"] as? String == "42")
            #expect(raw["ProductName"] as? String == "MyApp")
            #expect(raw["Version"] as? String == "app@1.2.3")
            #expect(raw["sentry_release"] as? String == "app@1.2.3")
            #expect(raw["sentry_environment"] as? String == "production")
            #expect(raw["sentry_platform"] as? String == "python")
            let metadata = try #require(raw["metadata"] as? [String: Any])
            #expect(metadata["payload"] as? String == c.endpoint)
            #expect(metadata["payload_compressed"] as? String == "1")
            #expect(metadata["payload_size"] as? Int == captured.body.count)
            #expect(server.capturedQueue.published.contains(crash.crashID))
            let event = try #require(try JSONSerialization.jsonObject(with: Data(Self.dump(crash, "sentry_event")!)) as? [String: Any])
            #expect(event["release"] as? String == "app@1.2.3")
            let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == crash.crashID })
            #expect(audit["endpoint"] as? String == c.endpoint)
            #expect(audit["sentry_event_id"] as? String == id)
        }
        let raven = try Self.stored(server, eventID: "a10d0189209845c58b723b00fefc8461")
        #expect(raven.raw["sentry_client"] as? String == "raven-python/6.10.0")
        let envelope = try Self.stored(server, eventID: "6e4f2c65f7d44ffea787fce46d202c5f")
        #expect(Self.dump(envelope.crash, "crashdmp") == Fixtures.bytes("linux-mini.dmp"))
        #expect(envelope.raw["sentry_client"] as? String == "sentry.python/2.75.0")
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:sentry_store", atLeast: 1) > 0)
        #expect(await server.statsd.waitForLine(containing: "|c|#endpoint:sentry_envelope") != nil)
        try await server.stop()
    }

    // MARK: real clients

    @Test func ravenClientEndToEnd() async throws {
        let server = try await Self.start()
        let id = try PythonClient.send("raven", dsn: "http://pubkey@127.0.0.1:\(server.port)/42")
        let (crash, raw) = try Self.stored(server, eventID: id)
        #expect(raw["sentry_client"] as? String == "raven-python/6.10.0")
        #expect(raw["Version"] as? String == "app@1.2.3")
        #expect(raw["sentry_environment"] as? String == "staging")
        #expect(raw["ProductName"] as? String == "MyApp")
        #expect((raw["metadata"] as? [String: Any])?["payload"] as? String == "sentry_store")
        let event = String(decoding: try #require(Self.dump(crash, "sentry_event")), as: UTF8.self)
        #expect(event.contains("KeyError"))
        #expect(server.capturedQueue.published == [crash.crashID])
        let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == crash.crashID })
        #expect(audit["outcome"] as? String == "accepted")
        #expect(audit["endpoint"] as? String == "sentry_store")
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:sentry_store", atLeast: 1) > 0)
        try await server.stop()
    }

    @Test func sentrySDKEndToEndWithAttachment() async throws {
        let server = try await Self.start()
        let id = try PythonClient.send("sentry-sdk", dsn: "http://pubkey@127.0.0.1:\(server.port)/42")
        let (crash, raw) = try Self.stored(server, eventID: id)
        #expect((raw["sentry_client"] as? String)?.hasPrefix("sentry.python/") == true)
        #expect(raw["Version"] as? String == "app@2.0.0")
        #expect(raw["sentry_platform"] as? String == "python")
        #expect(Set(crash.dumpNames) == ["sentry_event", "applog"])
        #expect(Self.dump(crash, "applog") == Array("log line 1\nlog line 2\n".utf8))
        #expect(String(decoding: Self.dump(crash, "sentry_event")!, as: UTF8.self).contains("KeyError"))
        #expect(server.capturedQueue.published == [crash.crashID])
        #expect(server.auditLines().contains { $0["crash_id"] as? String == crash.crashID && $0["endpoint"] as? String == "sentry_envelope" })
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:sentry_envelope", atLeast: 1) > 0)
        try await server.stop()
    }

    @Test func sentrySDKEnvelopeWithMinidump() async throws {
        let server = try await Self.start()
        let dump = Fixtures.folder.appendingPathComponent("simple-crashpad.dmp").path
        let id = try PythonClient.send("sentry-sdk-minidump", dsn: "http://pubkey@127.0.0.1:\(server.port)/42", arguments: [dump])
        let (crash, raw) = try Self.stored(server, eventID: id)
        #expect(Self.dump(crash, "upload_file_minidump") == Fixtures.bytes("simple-crashpad.dmp"))
        #expect(raw["sentry_platform"] as? String == "native")
        let sums = try #require((raw["metadata"] as? [String: Any])?["dump_checksums"] as? [String: String])
        #expect(sums["upload_file_minidump"] == BreakpadIntakeTests.sha256(Fixtures.bytes("simple-crashpad.dmp")))
        #expect(server.capturedQueue.published == [crash.crashID])
        try await server.stop()
    }

    // MARK: store bodies and auth forms

    @Test func storeBodiesAndAuthForms() async throws {
        let server = try await Self.start()
        let json = Array(#"{"event_id":"0123456789abcdef0123456789abcdef","message":"hi","release":"r1","platform":"c"}"#.utf8)
        let zlib = Deflater.compress(json, wrapper: .zlib)
        let cases: [(name: String, headers: [(String, String)], query: String, body: [UInt8])] = [
            ("plain", [Self.auth], "", json),
            ("zlib without Content-Encoding", [Self.auth], "", zlib),
            ("gzip", [Self.auth, ("Content-Encoding", "gzip")], "", Deflater.compress(json)),
            ("gzip without Content-Encoding", [Self.auth], "", Deflater.compress(json)),
            ("base64 JSON", [Self.auth], "", Array(Data(json).base64EncodedString().utf8)),
            ("base64 zlib", [Self.auth], "", Array(Data(zlib).base64EncodedString().utf8)),
            ("Authorization header", [("Authorization", "Sentry sentry_key=pubkey, sentry_version=7")], "", json),
            ("query parameters", [], "?sentry_key=pubkey&sentry_version=7", json),
        ]
        for c in cases {
            let response = try await server.request(.POST, "/api/42/store/\(c.query)", headers: c.headers, body: c.body)
            #expect(response.status == 200, "\(c.name): \(response.body)")
            #expect(response.body == #"{"id":"0123456789abcdef0123456789abcdef"}"#, "\(c.name)")
            #expect(response.headers.first(name: "Content-Type") == "application/json")
        }
        #expect(server.captured.all.count == cases.count)
        // An event without a usable id gets a new one.
        let fresh = try Self.eventID(of: try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: Array(#"{"event_id":"nope"}"#.utf8)))
        #expect(fresh != "0123456789abcdef0123456789abcdef")
        try await server.stop()
    }

    // MARK: envelopes that are not crashes

    @Test func sessionOnlyEnvelopeIsAcceptedAndIgnored() async throws {
        let server = try await Self.start()
        let body = "{\"sent_at\":\"2026-11-29T01:28:19Z\"}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n{\"type\":\"client_report\"}\n{}\n"
        let response = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: Array(body.utf8))
        #expect(response.status == 200)
        #expect(response.body == "{}")
        #expect(server.captured.all.isEmpty)
        #expect(server.auditLines().isEmpty)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:session", atLeast: 1) > 0)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:client_report", atLeast: 1) > 0)
        try await server.stop()
    }

    // MARK: minidump endpoint

    @Test func minidumpMultipartWithSentryFields() async throws {
        let server = try await Self.start()
        let dump = Fixtures.bytes("simple-crashpad.dmp")
        var form = MultipartBody()
        form.field("prod", "Electron")
        form.field("sentry[release]", "app@3.0")
        form.field("sentry[tags][channel]", "beta")
        form.field("sentry[event_id]", "fedcba9876543210fedcba9876543210")
        form.file("upload_file_minidump", dump)
        let response = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey",
                                                 headers: [("Content-Type", form.contentType), ("Content-Encoding", "gzip")],
                                                 body: Deflater.compress(form.finished.bytes))
        #expect(response.status == 200)
        #expect(response.body == "fedcba98-7654-3210-fedc-ba9876543210")
        let (crash, raw) = try Self.stored(server, eventID: "fedcba9876543210fedcba9876543210")
        #expect(raw["prod"] as? String == "Electron")
        #expect(raw["Version"] as? String == "app@3.0")
        #expect(raw["ProductName"] as? String == "MyApp")
        #expect((raw["metadata"] as? [String: Any])?["payload"] as? String == "sentry_minidump")
        #expect(Self.dump(crash, "upload_file_minidump") == dump)
        let event = try #require(try JSONSerialization.jsonObject(with: Data(Self.dump(crash, "sentry_event")!)) as? [String: Any])
        #expect((event["tags"] as? [String: String]) == ["channel": "beta"])
        #expect(server.auditLines().contains { $0["crash_id"] as? String == crash.crashID && $0["endpoint"] as? String == "sentry_minidump" })
        try await server.stop()
    }

    @Test func minidumpRawBody() async throws {
        let server = try await Self.start()
        let dump = Fixtures.bytes("linux-mini.dmp")
        for type in ["application/octet-stream", "application/x-dmp"] {
            let response = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey", headers: [("Content-Type", type)], body: dump)
            #expect(response.status == 200)
            #expect(response.body.wholeMatch(of: #/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/#) != nil)
            let (crash, _) = try Self.stored(server, eventID: response.body)
            #expect(crash.dumpNames == ["upload_file_minidump"])
        }
        try await server.stop()
    }

    // MARK: bad input, answered in Sentry's protocol

    @Test func badInputAnswersSentryErrors() async throws {
        let server = try await Self.start { $0.maxDecompressedBytes = 1 << 20 }
        let event = Array(#"{"message":"x"}"#.utf8)
        var noDump = MultipartBody(); noDump.field("sentry[release]", "1")
        var badDump = MultipartBody(); badDump.file("upload_file_minidump", Array("NOTADUMP".utf8))
        let bomb = Deflater.compress(Array("{\"a\":\"".utf8) + [UInt8](repeating: 0x61, count: 4 << 20) + Array("\"}".utf8))
        let envelope = { (s: String) in Array(s.utf8) }
        let cases: [(reason: String, status: Int, path: String, headers: [(String, String)], body: [UInt8])] = [
            ("invalid_json", 400, "/api/42/store/", [Self.auth], Array(#"{"message":"#.utf8)),
            ("invalid_json_value", 400, "/api/42/store/", [Self.auth], Array("[1]".utf8)),
            ("no_content_length", 400, "/api/42/store/", [Self.auth], []),
            ("bad_deflate", 400, "/api/42/store/", [Self.auth, ("Content-Encoding", "deflate")], event),
            ("bad_gzip", 400, "/api/42/envelope/", [Self.auth, ("Content-Encoding", "gzip")], event),
            ("bad_brotli", 400, "/api/42/envelope/", [Self.auth, ("Content-Encoding", "br")], event),
            ("unsupported_content_encoding", 400, "/api/42/store/", [Self.auth, ("Content-Encoding", "compress")], event),
            ("item_too_long", 400, "/api/42/envelope/", [Self.auth], envelope("{}\n{\"type\":\"event\",\"length\":999}\n{}\n")),
            ("invalid_envelope", 400, "/api/42/envelope/", [Self.auth], envelope("{}\n{\"length\":2}\n{}\n")),
            ("invalid_json", 400, "/api/42/envelope/", [Self.auth], envelope("{}\n{\"type\":\"event\"}\n{oops\n")),
            ("duplicate_item", 400, "/api/42/envelope/", [Self.auth], envelope("{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"event\"}\n{}\n")),
            ("invalid_minidump", 400, "/api/42/envelope/", [Self.auth],
             envelope("{}\n{\"type\":\"attachment\",\"attachment_type\":\"event.minidump\",\"length\":4}\nMDMX\n")),
            ("invalid_minidump", 400, "/api/42/minidump/?sentry_key=pubkey", [("Content-Type", "application/octet-stream")], Array("NOTADUMP".utf8)),
            ("invalid_minidump", 400, "/api/42/minidump/?sentry_key=pubkey", [("Content-Type", badDump.contentType)], badDump.finished.bytes),
            ("missing_minidump", 400, "/api/42/minidump/?sentry_key=pubkey", [("Content-Type", noDump.contentType)], noDump.finished.bytes),
            ("too_large", 413, "/api/42/store/", [Self.auth, ("Content-Encoding", "gzip")], bomb),
            ("missing_auth", 401, "/api/42/store/", [], event),
            ("invalid_auth", 401, "/api/42/store/", [("X-Sentry-Auth", "Sentry sentry_key=a b")], event),
            ("unknown_project", 403, "/api/7/store/", [Self.auth], event),
            ("unknown_key", 403, "/api/42/envelope/?sentry_key=other", [], envelope("{}\n{\"type\":\"event\"}\n{}\n")),
            ("invalid_project", 400, "/api/abc/store/", [Self.auth], event),
        ]
        for c in cases {
            // Reasons repeat across cases (and counters and audit lines accumulate): each case must
            // add its own count and its own audit line.
            let counted = server.statsd.counted("breakwater.malformed", tags: "reason:\(c.reason)")
            let audited = server.auditLines().filter { $0["reason"] as? String == c.reason }.count
            let endpoint = "sentry_" + c.path.split(separator: "/")[2]
            let response = try await server.request(.POST, c.path, headers: c.headers, body: c.body)
            #expect(response.status == c.status, "\(c.reason) \(c.path)")
            #expect(response.body == "{\"detail\":\"\(c.reason)\"}", "\(c.reason) \(c.path)")
            #expect(response.headers.first(name: "Content-Type") == "application/json", "\(c.reason)")
            #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:\(c.reason)", atLeast: counted + 1) == counted + 1,
                    "\(c.reason) \(c.path)")
            let lines = server.auditLines().filter { $0["reason"] as? String == c.reason }
            #expect(lines.count == audited + 1, "\(c.reason) \(c.path)")
            #expect(lines.last?["status"] as? Int == c.status && lines.last?["endpoint"] as? String == endpoint,
                    "\(c.reason) \(c.path): \(lines.last ?? [:])")
        }
        #expect(server.captured.all.isEmpty)
        #expect(server.capturedQueue.published.isEmpty)
        try await server.stop()
    }

    /// The project id is ASCII digits, at most 20, even with no key table to refuse an odd one.
    @Test func projectIDIsAtMostTwentyASCIIDigits() async throws {
        let server = try await Self.start(keys: [:])
        let event = Array(#"{"message":"x"}"#.utf8)
        let tooLong = try await server.request(.POST, "/api/\(String(repeating: "1", count: 21))/store/", headers: [Self.auth], body: event)
        #expect(tooLong.status == 400)
        #expect(tooLong.body == #"{"detail":"invalid_project"}"#)
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:invalid_project", atLeast: 1) > 0)
        #expect(server.auditLines().contains { $0["reason"] as? String == "invalid_project" && $0["status"] as? Int == 400 })

        // `1` + U+0301 and the keycap `1️⃣` are one Character each, sorting between "0" and "9".
        // Sent as raw bytes in the path, NIO's HTTP parser refuses them (a bare 400) before any
        // route; the check itself is met by a request made here.
        for project in ["1\u{301}", "1\u{FE0F}\u{20E3}"] {
            let connection = try RawConnection(port: server.port)
            connection.send(RawConnection.head(path: "/api/\(project)/store/", contentType: "application/json", contentLength: event.count,
                                               extra: "X-Sentry-Auth: \(Self.auth.1)\r\nConnection: close\r\n"))
            connection.send(event)
            #expect(connection.readAll(timeout: 2).hasPrefix("HTTP/1.1 400"), "\(project.unicodeScalars.map(\.value))")
            let request = CollectorRequest(method: "POST", uri: "/api/\(project)/store/", headers: [Self.auth], body: ByteBuffer(bytes: event))
            #expect(throws: Malformed("invalid_project")) { try SentryAuth.authorize(request, projectKeys: [:]) }
        }
        #expect(server.captured.all.isEmpty)

        let longest = String(repeating: "9", count: 20)
        let id = try Self.eventID(of: try await server.request(.POST, "/api/\(longest)/store/", headers: [Self.auth], body: event))
        #expect(try Self.stored(server, eventID: id).raw["sentry_project_id"] as? String == longest)
        try await server.stop()
    }

    @Test func bodyOverTheWireLimitIsSentry413() async throws {
        let server = try await Self.start { $0.maxRequestBytes = 10_000 }
        let response = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: [UInt8](repeating: 0x7B, count: 20_000))
        #expect(response.status == 413)
        #expect(response.body == #"{"detail":"too_large"}"#)
        #expect(server.auditLines().contains { $0["endpoint"] as? String == "sentry_envelope" && $0["outcome"] as? String == "too_large" })
        try await server.stop()
    }

    /// Parsing JSON takes up to 38 times the document's bytes: an event, an envelope header line
    /// or a minidump's `sentry` field is parsed only once 48 times its length is reserved from the
    /// in-flight budget. One that could never fit is 413 (a retry would not help); a 100 KB
    /// gzipped body of zeros inflates to such a document.
    @Test func aJSONDocumentIsParsedOnlyWithinTheInflightBudget() async throws {
        let server = try await Self.start { $0.maxInflightBytes = 4 << 20 }
        let big = Array(("[" + String(repeating: "0,", count: 50_000) + "0]").utf8)  // 100 KB: 4.8 MB to parse
        let gzipped = Deflater.compress(big)
        let store = try await server.request(.POST, "/api/42/store/", headers: [Self.auth, ("Content-Encoding", "gzip")], body: gzipped)
        #expect(store.status == 413)
        #expect(store.body == #"{"detail":"too_large"}"#)
        let envelope = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: big + Array("\n".utf8))
        #expect(envelope.status == 413)
        #expect(envelope.body == #"{"detail":"too_large"}"#)
        // A minidump upload's `sentry` field is such a document too.
        var form = MultipartBody()
        form.field("sentry", #"{"extra":"# + String(decoding: big, as: UTF8.self) + "}")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        let minidump = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey", headers: [("Content-Type", form.contentType)],
                                                body: form.finished.bytes)
        #expect(minidump.status == 413)
        #expect(minidump.body == #"{"detail":"too_large"}"#)
        let refused = server.auditLines().filter { $0["outcome"] as? String == "too_large" }
        #expect(refused.map { $0["endpoint"] as? String } == ["sentry_store", "sentry_envelope", "sentry_minidump"], "\(refused)")
        #expect(refused.allSatisfy { $0["reason"] as? String == "too_large" && $0["status"] as? Int == 413 })
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 3) == 3)
        #expect(server.captured.all.isEmpty)

        let small = try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: Array(#"{"release":"app@1"}"#.utf8))
        #expect(small.status == 200)
        try await server.stop()
    }

    /// Older Raven clients send the event as base64: four times the body is reserved before it is
    /// decoded, from the same budget as the bytes on the wire. A 1.1 MB base64 body against a
    /// 4 MiB budget (1.1 MB + 4.4 MB) is answered busy, with Sentry's 429 and the `memory` reason,
    /// before anything is decoded; a small one is taken.
    @Test func aBase64StoreBodyReservesFourTimesItsSize() async throws {
        let server = try await Self.start { $0.maxInflightBytes = 4 << 20 }
        let event = #"{"message":""# + String(repeating: "m", count: 825_000) + #""}"#
        let body = Array(Data(event.utf8).base64EncodedString().utf8)
        // The body alone fits the budget; with four times it reserved on top, it cannot.
        #expect(body.count < 4 << 20 && 5 * body.count > 4 << 20)
        let response = try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: body)
        #expect(response.status == 429, "\(response.body)")
        #expect(response.body == #"{"detail":"retry_later"}"#)
        #expect(response.headers.first(name: "Retry-After") == "30")
        #expect(response.headers.first(name: "X-Sentry-Rate-Limits") == "30::organization")
        let lines = server.auditLines().filter { $0["reason"] as? String == "memory" }
        #expect(lines.count == 1 && lines.first?["endpoint"] as? String == "sentry_store" && lines.first?["outcome"] as? String == "retry_later"
                && lines.first?["status"] as? Int == 429, "\(lines)")
        #expect(await server.statsd.waitForCount("breakwater.overload", tags: "reason:memory", atLeast: 1) == 1)
        #expect(server.captured.all.isEmpty)

        let small = Array(Data(#"{"event_id":"0123456789abcdef0123456789abcdef","message":"hi"}"#.utf8).base64EncodedString().utf8)
        #expect(try Self.eventID(of: try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: small))
                == "0123456789abcdef0123456789abcdef")
        try await server.stop()
    }

    /// `MAX_PARTS` also caps an envelope's items (`too_many_items`), from configuration: at the
    /// limit the envelope is taken, one item more is refused, counted and audited.
    @Test func envelopeItemsFollowMaxParts() async throws {
        let server = try await Self.start { $0.maxParts = 3 }
        func sessions(_ n: Int) -> [UInt8] { Array(("{}\n" + String(repeating: "{\"type\":\"session\",\"length\":2}\n{}\n", count: n)).utf8) }
        let three = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: sessions(3))
        #expect(three.status == 200 && three.body == "{}", "\(three.body)")
        let four = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: sessions(4))
        #expect(four.status == 400)
        #expect(four.body == #"{"detail":"too_many_items"}"#)
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_many_items", atLeast: 1) == 1)
        let lines = server.auditLines().filter { $0["reason"] as? String == "too_many_items" }
        #expect(lines.count == 1 && lines.first?["endpoint"] as? String == "sentry_envelope" && lines.first?["status"] as? Int == 400, "\(lines)")
        try await server.stop()
    }

    @Test func theParseOfAJSONDocumentIsReservedFromItsRequestsLease() throws {
        var config = CollectorConfiguration()
        config.maxInflightBytes = 1 << 20
        let limits = DecodeLimits(config)
        let budget = InflightBytes(limit: 1 << 20)
        let lease = MemoryLease(budget: budget)
        let doc = Array(#"{"a":[1,2,3]}"#.utf8)
        #expect(try limits.json(doc, memory: lease, invalid: "invalid_json") == .object(["a": .array([.number(1), .number(2), .number(3)])]))
        #expect(lease.bytes == doc.count * JSONValue.parseCostPerByte)
        // More than the whole budget: too large, nothing reserved.
        #expect(throws: Malformed.tooLarge) { try limits.json([UInt8](repeating: 0x20, count: 30_000), memory: lease, invalid: "invalid_json") }
        // Within it, but not now: busy.
        #expect(budget.reserve((1 << 20) - lease.bytes - 100))
        #expect(throws: InflightBytes.Exhausted()) { try limits.json(doc, memory: lease, invalid: "invalid_json") }
        #expect(throws: Malformed("invalid_envelope")) { try limits.json(Array("{".utf8), memory: .unlimited, invalid: "invalid_envelope") }
    }

    @Test func anyWellFormedKeyWithoutKeyTable() async throws {
        let server = try await Self.start(keys: [:])
        let response = try await server.request(.POST, "/api/7/store/", headers: [("X-Sentry-Auth", "Sentry sentry_key=whatever")],
                                                body: Array(#"{"release":"x"}"#.utf8))
        let id = try Self.eventID(of: response)
        let (_, raw) = try Self.stored(server, eventID: id)
        #expect(raw["sentry_project_id"] as? String == "7")
        #expect(raw["ProductName"] == nil)
        try await server.stop()
    }

    // MARK: throttling and retry answers

    @Test func throttlerSeesProductNameAndVersion() async throws {
        let server = try await Self.start(throttler: OldReleaseThrottler())
        let old = #"{"event_id":"11111111111111111111111111111111","release":"app@0.9"}"#
        let rejected = try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: Array(old.utf8))
        #expect(rejected.status == 200)
        #expect(rejected.body == #"{"id":"11111111111111111111111111111111"}"#)
        #expect(server.captured.all.isEmpty)
        #expect(server.auditLines().contains { $0["outcome"] as? String == "rejected" && $0["rule"] as? String == "old_release" })
        #expect(await server.statsd.waitForCount("breakwater.throttle_rule", tags: "rule:old_release", atLeast: 1) > 0)

        var form = MultipartBody()
        form.field("sentry[release]", "app@0.9")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        let dump = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey", headers: [("Content-Type", form.contentType)],
                                            body: form.finished.bytes)
        #expect(dump.status == 200)
        #expect(server.captured.all.isEmpty)

        let current = try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: Array(#"{"release":"app@1.0"}"#.utf8))
        #expect(try Self.stored(server, eventID: try Self.eventID(of: current)).raw["metadata"] != nil)
        try await server.stop()
    }

    @Test func storageTroubleIs429OnStoreAndEnvelope503OnMinidump() async throws {
        let storage = CapturingCrashStorage()
        storage.failing = true
        let server = try await Self.start(storage: storage)
        for path in ["/api/42/store/", "/api/42/envelope/"] {
            let body = path.hasSuffix("store/") ? #"{"message":"x"}"# : "{}\n{\"type\":\"event\"}\n{}\n"
            let response = try await server.request(.POST, path, headers: [Self.auth], body: Array(body.utf8))
            #expect(response.status == 429, "\(path)")
            #expect(response.headers.first(name: "Retry-After") == "30")
            #expect(response.headers.first(name: "X-Sentry-Rate-Limits") == "30::organization")
        }
        let minidump = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey", headers: [("Content-Type", "application/x-dmp")],
                                                body: Fixtures.bytes("linux-mini.dmp"))
        #expect(minidump.status == 503)
        #expect(minidump.headers.first(name: "Retry-After") == "30")
        #expect(server.capturedQueue.published.isEmpty)
        #expect(server.auditLines().filter { $0["outcome"] as? String == "retry_later" }.count == 3)
        try await server.stop()
    }

    @Test func fullWorkerQueueIs429ForSentryClients() async throws {
        let storage = CapturingCrashStorage()
        storage.delay = 1.0
        let server = try await Self.start(storage: storage) { $0.workers = 1; $0.workerQueue = 1 }
        let responses = try await withThrowingTaskGroup(of: TestServer.Response.self) { group in
            for _ in 0..<WorkerPool.threadsPerWorker + 3 {
                group.addTask { try await server.request(.POST, "/api/42/store/", headers: [Self.auth], body: Array(#"{"message":"x"}"#.utf8)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let busy = responses.filter { $0.status == 429 }
        #expect(busy.count >= 2)
        #expect(busy.allSatisfy { $0.headers.first(name: "X-Sentry-Rate-Limits") != nil && $0.headers.first(name: "Retry-After") != nil })
        #expect(server.auditLines().contains { $0["endpoint"] as? String == "sentry_store" && $0["outcome"] as? String == "retry_later"
            && $0["reason"] as? String == "queue_full" })
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(server.statsd.counted("breakwater.malformed", tags: "reason:queue_full") == 0)
        try await server.stop()
    }

    @Test func memoryPressureIs429OnEnvelope503OnMinidump() async throws {
        let server = try await Self.start { $0.maxInflightBytes = 1_000 }
        let body = [UInt8](repeating: 0x7B, count: 5_000)
        let envelope = try await server.request(.POST, "/api/42/envelope/", headers: [Self.auth], body: body)
        #expect(envelope.status == 429)
        #expect(envelope.headers.first(name: "X-Sentry-Rate-Limits") == "30::organization")
        let minidump = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey", body: body)
        #expect(minidump.status == 503)
        #expect(minidump.body == #"{"detail":"retry_later"}"#)
        #expect(server.auditLines().filter { $0["outcome"] as? String == "retry_later" && $0["reason"] as? String == "memory" }.count == 2)
        #expect(await server.statsd.waitForCount("breakwater.overload", tags: "reason:memory", atLeast: 2) == 2)
        try await server.stop()
    }

    // MARK: configuration

    @Test func routesFollowConfiguration() async throws {
        var config = CollectorConfiguration()
        config.sentryPrefix = "/sentry/"
        config.genericPath = "/crash/generic"
        let router = Collector.routes(config: config, pipeline: CrashPipeline(
            throttler: NullThrottler(), saver: CrashSaver(storage: NullCrashStorage(), telemetry: .silent()),
            publisher: QueuePublisher(queue: NullCrashQueue(), telemetry: .silent()), telemetry: .silent()), checks: [], telemetry: .silent())
        #expect(router.boundPaths.contains("POST /crash/generic"))
        #expect(router.boundPaths.contains("POST /sentry/*/store/"))
        #expect(router.route(for: "POST", path: "/sentry/42/envelope/")?.endpoint == "sentry_envelope")
        #expect(router.route(for: "POST", path: "/sentry/42/minidump/")?.endpoint == "sentry_minidump")
        #expect(router.route(for: "POST", path: "/sentry//store/") == nil)
        #expect(router.route(for: "POST", path: "/api/42/store/") == nil)
    }

    @Test func keyAndProductTablesFromEnvironment() async throws {
        let config = try await CollectorConfiguration.load(environment: [
            "SENTRY_PROJECT_KEYS": "42=pubkey, 43=otherkey", "SENTRY_PRODUCTS": "42=MyApp",
        ])
        #expect(config.sentryProjectKeys == ["42": "pubkey", "43": "otherkey"])
        #expect(config.sentryProducts == ["42": "MyApp"])
        #expect(config.described.contains { $0.name == "SENTRY_PROJECT_KEYS" && $0.value == "42=pubkey,43=otherkey" })
        await #expect(throws: CollectorConfiguration.ConfigurationError.self) {
            try await CollectorConfiguration.load(environment: ["SENTRY_PROJECT_KEYS": "42"])
        }
    }
}
