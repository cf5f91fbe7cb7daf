import Foundation
import NIOCore
import Testing
@testable import Collector

/// Slow uploads to one S3 host never hold up the other requests: each sending thread may have a
/// connection of its own (AsyncHTTPClient's default cap of 8 queued the rest, and a request's
/// deadline counts its time in that queue). The storage server is a stand-in that answers the
/// `slow-` keys 3 s late; the client is the real one.
@Suite struct S3ConnectionPoolTests {
    @Test func slowUploadsDoNotHoldUpOtherRequests() async throws {
        let server = try StubHTTPServer(delay: { $0.uri.contains("slow-") ? .seconds(3) : .zero }) { _ in (200, "") }
        defer { server.stop() }
        let client = try S3Client(bucket: "b", endpoint: "http://127.0.0.1:\(server.port)", region: "us-east-1",
                                  credentials: .init(accessKeyID: "a", secretAccessKey: "s"), requestTimeout: 2)
        let slow = (0..<12).map { client.put("slow-\($0)", ByteBuffer(string: "x")) }
        try await Task.sleep(nanoseconds: 300_000_000)
        let started = Date()
        try await client.put("fast", ByteBuffer(string: "y")).get()
        #expect(Date().timeIntervalSince(started) < 1.5, "a quick request waited behind slow ones")
        for upload in slow { _ = try? await upload.get() }  // they time out at 2 s
    }
}
