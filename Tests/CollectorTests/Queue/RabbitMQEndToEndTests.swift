import Foundation
import Testing
@testable import Collector

extension RabbitMQTests {
    @Test func crashesPostedToSubmitAppearOnTheQueueOneMessageEach() async throws {
        let name = broker.uniqueQueue()
        defer { try? broker.delete(name) }
        let server = try await TestServer.start(queue: try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: .silent()))
        var ids: [String] = []
        for i in 0..<10 {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            form.field("Version", "1.\(i)")
            form.file("upload_file_minidump", Fixtures.bytes("test.dmp"))
            ids.append(try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished, gzip: i % 2 == 0)))
        }
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        try await server.stop()

        #expect(heartbeat.status == 200 && heartbeat.body.contains("\"queue\":\"ok\""), "\(heartbeat.body)")
        let messages = try broker.drain(name)
        #expect(messages.map(\.body).sorted() == ids.sorted())
        #expect(messages.allSatisfy { $0.deliveryMode == 2 })
        let queued = server.auditLines().filter { ids.contains($0["crash_id"] as? String ?? "") }.map { $0["queued"] as? Bool }
        #expect(queued == Array(repeating: true, count: ids.count))
    }
}
