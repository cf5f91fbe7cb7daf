import Foundation
import Testing
@testable import Collector

/// Crashpad's own request shape (Support/CrashpadRequest.swift) end to end, over a raw socket.
@Suite struct CrashpadRequestTests {
    @Test func chunkedGzippedCrashpadUploadIsStoredWhole() async throws {
        let server = try await TestServer.start()
        // A real minidump followed by incompressible bytes: the compressed body spans several 64 KiB chunks.
        var generator = SystemRandomNumberGenerator()
        let dump = Fixtures.bytes("simple-crashpad.dmp") + (0..<(300 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let request = CrashpadRequest(dump: dump)
        #expect(request.compressed.count > 4 * request.chunkSize)
        let bytes = request.bytes
        #expect(!String(decoding: bytes.prefix(600), as: UTF8.self).lowercased().contains("content-length"))

        let connection = try RawConnection(port: server.port)
        // Sent as a client's socket writes it: in pieces, not the whole request at once.
        for start in stride(from: 0, to: bytes.count, by: 16 * 1024) { connection.send(Array(bytes[start..<min(start + 16 * 1024, bytes.count)])) }
        let answer = connection.readAll(timeout: 10)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // Crashpad keeps the whole body as the report's ID on the server.
        let body = try #require(answer.components(separatedBy: "\r\n\r\n").last)
        #expect(body.hasPrefix("CrashID=bp-") && body.hasSuffix("\n") && body.count == "CrashID=bp-".count + 36 + 1)
        let id = String(body.dropFirst("CrashID=bp-".count).dropLast())

        let stored = try #require(server.captured[id])
        #expect(stored.dumpNames == ["upload_file_minidump"])
        #expect(Array(stored.dumps[0].bytes.readableBytesView) == dump)
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["prod"] as? String == "Crashpad_Test" && raw["ver"] as? String == "1.2.3" && raw["ptype"] as? String == "browser")
        let metadata = try #require(raw["metadata"] as? [String: Any])
        #expect(metadata["payload_compressed"] as? String == "1")
        #expect(metadata["payload_size"] as? Int == request.compressed.count)
        #expect(metadata["user_agent"] as? String == "Crashpad/0.8.0 libcurl/7.88.1")
        #expect(server.auditLines().contains { $0["crash_id"] as? String == id && $0["outcome"] as? String == "accepted" })
        try await server.stop()
    }

    /// The same shape pointed at a Sentry-style minidump URL (`…/minidump/?sentry_key=…`).
    @Test func crashpadUploadToTheSentryMinidumpEndpoint() async throws {
        let server = try await SentryTests.start()
        var request = CrashpadRequest(dump: Fixtures.bytes("simple-crashpad.dmp"))
        request.path = "/api/42/minidump/"
        var bytes = request.bytes
        // Crashpad keeps the upload URL's own query; the guid is appended to it.
        let head = String(decoding: bytes.prefix(200), as: UTF8.self)
        let line = try #require(head.components(separatedBy: "\r\n").first)
        let fixed = line.replacingOccurrences(of: "?guid=", with: "?sentry_key=pubkey&guid=")
        bytes = Array(fixed.utf8) + bytes.dropFirst(line.utf8.count)
        let connection = try RawConnection(port: server.port)
        connection.send(bytes)
        let answer = connection.readAll(timeout: 10)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        let eventID = try #require(answer.components(separatedBy: "\r\n\r\n").last)
        let (crash, _) = try SentryTests.stored(server, eventID: eventID)
        #expect(SentryTests.dump(crash, "upload_file_minidump") == Fixtures.bytes("simple-crashpad.dmp"))
        try await server.stop()
    }
}
