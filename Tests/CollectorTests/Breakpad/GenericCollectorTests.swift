import Foundation
import Testing
@testable import Collector

/// Socorro's generic collector: form posts (multipart or urlencoded) on a configurable path, `\0`
/// removed from every value, through the same pipeline with `metadata.payload = generic`.
@Suite struct GenericCollectorTests {
    static let path = "/crash/generic"

    static func start() async throws -> TestServer {
        try await TestServer.start { $0.genericPath = path }
    }

    @Test func multipartWithNullsRemoved() async throws {
        let server = try await Self.start()
        let dump = Fixtures.bytes("test.dmp")
        var form = MultipartBody()
        form.field("ProductName", "Gen\0eric")
        form.field("Version", "1.0\0\0")
        form.file("upload_file_minidump", dump)
        let response = try await server.request(.POST, Self.path, headers: [("Content-Type", form.contentType)], body: form.finished.bytes)
        let id = try BreakpadIntakeTests.crashID(of: response)
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "Generic")
        #expect(raw["Version"] as? String == "1.0")
        #expect((raw["metadata"] as? [String: Any])?["payload"] as? String == "generic")
        #expect(Array(server.captured[id]!.dumps[0].bytes.readableBytesView) == dump)
        #expect(server.capturedQueue.published == [id])
        #expect(server.auditLines().contains { $0["crash_id"] as? String == id && $0["endpoint"] as? String == "generic" })
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:generic", atLeast: 1) > 0)
        try await server.stop()
    }

    @Test func jsonPartWithNullsRemoved() async throws {
        let server = try await Self.start()
        var form = MultipartBody()
        form.json("extra", #"{"ProductName":"Gen\u0000eric","Version":"1.0\u0000\u0000"}"#)
        let response = try await server.request(.POST, Self.path, headers: [("Content-Type", form.contentType)], body: form.finished.bytes)
        let id = try BreakpadIntakeTests.crashID(of: response)
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "Generic")
        #expect(raw["Version"] as? String == "1.0")
        try await server.stop()
    }

    @Test func urlencodedWithNullsRemoved() async throws {
        let server = try await Self.start()
        let body = "ProductName=My+App%00&Version=2.0%00beta&Comments=caf%C3%A9"
        let response = try await server.request(.POST, Self.path, headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                                                body: Array(body.utf8))
        let id = try BreakpadIntakeTests.crashID(of: response)
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "My App")
        #expect(raw["Version"] as? String == "2.0beta")
        #expect(raw["Comments"] as? String == "café")
        #expect((raw["metadata"] as? [String: Any])?["payload"] as? String == "generic")
        #expect(server.captured[id]!.dumps.isEmpty)
        try await server.stop()
    }

    @Test func badFormsAreMalformed() async throws {
        let server = try await Self.start()
        let cases: [(reason: String, headers: [(String, String)], body: String)] = [
            ("wrong_content_type", [("Content-Type", "application/json")], "{}"),
            ("no_content_type", [], "a=b"),
            ("no_annotations", [("Content-Type", "application/x-www-form-urlencoded")], "&&"),
        ]
        for c in cases {
            let response = try await server.request(.POST, Self.path, headers: c.headers, body: Array(c.body.utf8))
            #expect(response.status == 400, "\(c.reason)")
            #expect(response.body == "Discarded=malformed_\(c.reason)")
            #expect(server.auditLines().contains { $0["endpoint"] as? String == "generic" && $0["reason"] as? String == c.reason })
        }
        // The Breakpad path keeps refusing urlencoded forms.
        let breakpad = try await server.request(.POST, "/submit", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                body: Array("a=b".utf8))
        #expect(breakpad.body == "Discarded=malformed_wrong_content_type")
        #expect(server.captured.all.isEmpty)
        try await server.stop()
    }
}
