import Foundation
import NIOCore
import Testing
@testable import Collector

/// Requests Relay takes that a strict reading of the protocol would refuse.
@Suite struct RelayCompatibilityTests {
    /// Python's json module writes NaN and Infinity; Relay reads them as null from Python SDKs.
    @Test func pythonClientsNonFiniteNumbersAreNull() async throws {
        let server = try await SentryTests.start()
        let body = Array(#"{"event_id":"0123456789abcdef0123456789abcdef","extra":{"v":NaN,"w":-Infinity,"s":"NaN \"Infinity\""},"x":[Infinity]}"#.utf8)
        let python = ("X-Sentry-Auth", "Sentry sentry_key=pubkey, sentry_version=7, sentry_client=raven-python/6.10.0")
        let response = try await server.request(.POST, "/api/42/store/", headers: [python], body: body)
        #expect(response.status == 200, "\(response.body)")
        let (crash, _) = try SentryTests.stored(server, eventID: "0123456789abcdef0123456789abcdef")
        let event = String(decoding: try #require(SentryTests.dump(crash, "sentry_event")), as: UTF8.self)
        #expect(event == #"{"event_id":"0123456789abcdef0123456789abcdef","extra":{"v":null,"w":null,"s":"NaN \"Infinity\""},"x":[null]}"#)
        // Another client gets the strict parse.
        let strict = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth], body: body)
        #expect(strict.status == 400 && strict.body == #"{"detail":"invalid_json"}"#)
        try await server.stop()
    }

    @Test func nonFiniteTokensInsideStringsStay() {
        #expect(PythonJSON.nonFiniteAsNull(ByteBuffer(string: #"{"a":"NaN\\","b":"x\"NaN"}"#)) == nil)
        #expect(PythonJSON.nonFiniteAsNull(ByteBuffer(string: #"[NaN,Infinity,-Infinity,-1]"#)).map { String(buffer: $0) }
                == "[null,null,null,-1]")
    }

    /// An envelope with no auth in the request carries its DSN in its header (Sentry's `tunnel`).
    @Test func anEnvelopeAuthenticatesWithItsOwnDSN() async throws {
        let server = try await SentryTests.start()
        func envelope(_ dsn: String) -> [UInt8] {
            Array(("{\"event_id\":\"fedcba9876543210fedcba9876543210\",\"dsn\":\"\(dsn)\"}\n"
                   + "{\"type\":\"event\"}\n{\"message\":\"tunnelled\"}\n").utf8)
        }
        let response = try await server.request(.POST, "/api/42/envelope/", body: envelope("https://pubkey@sentry.example.com/42"))
        #expect(response.status == 200, "\(response.body)")
        _ = try SentryTests.stored(server, eventID: "fedcba9876543210fedcba9876543210")
        // The DSN's project must be the path's, and its key the project's.
        let otherProject = try await server.request(.POST, "/api/42/envelope/", body: envelope("https://pubkey@sentry.example.com/43"))
        #expect(otherProject.status == 401 && otherProject.body == #"{"detail":"invalid_auth"}"#)
        let wrongKey = try await server.request(.POST, "/api/42/envelope/", body: envelope("https://otherkey@sentry.example.com/42"))
        #expect(wrongKey.status == 403)
        let none = try await server.request(.POST, "/api/42/envelope/", body: Array("{}\n{\"type\":\"event\"}\n{}\n".utf8))
        #expect(none.status == 401 && none.body == #"{"detail":"missing_auth"}"#)
        // No key, and a project the key table does not list: refused before the body is read
        // (a broken body would otherwise answer 400).
        let unlisted = try await server.request(.POST, "/api/43/envelope/", headers: [("Content-Encoding", "gzip")], body: Array("not gzip".utf8))
        #expect(unlisted.status == 401 && unlisted.body == #"{"detail":"missing_auth"}"#)
        try await server.stop()
    }
}
