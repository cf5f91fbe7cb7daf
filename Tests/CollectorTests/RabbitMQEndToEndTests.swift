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

        #expect(heartbeat.status == 200 && heartbeat.body.contains("publish_backlog"), "\(heartbeat.body)")
        let messages = try broker.drain(name)
        #expect(messages.map(\.body).sorted() == ids.sorted())
        #expect(messages.allSatisfy { $0.deliveryMode == 2 })
        let queued = server.auditLines().filter { ids.contains($0["crash_id"] as? String ?? "") }.map { $0["queued"] as? Bool }
        #expect(queued == Array(repeating: true, count: ids.count))
    }
}

extension RabbitMQTests {
    @Test func crashesPostedWhileTheBrokerIsDownAreAnsweredAndQueuedOnceItIsBack() async throws {
        let name = broker.uniqueQueue()
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID())").path
        defer { try? broker.delete(name); try? FileManager.default.removeItem(atPath: spool) }
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: .silent(), poolSize: 2)
        let server = try await TestServer.start(configure: { $0.spoolDir = spool; $0.publishBudget = 0.5 }, queue: queue)
        let publisher = server.collector.pipeline.publisher
        func post() async throws -> String {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            return try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        }

        var ids = [try await post(), try await post()]
        try broker.stopApp()
        for _ in 0..<5 { ids.append(try await post()) }
        // Answered with crash IDs and stored, but waiting in the backlog, journaled in the spool folder.
        #expect(ids.allSatisfy { server.captured[$0] != nil })
        #expect(publisher.backlog.count >= 5)
        if case .warning = publisher.check() {} else { Issue.record("backlog not reported: \(publisher.check())") }
        let journal = try String(contentsOfFile: spool + "/publish-backlog", encoding: .utf8)
        #expect(ids[2...].allSatisfy { journal.contains("+\($0)") })
        try broker.startApp()
        for _ in 0..<3 { ids.append(try await post()) }

        let deadline = Date(timeIntervalSinceNow: 60)
        while publisher.backlog.count > 0 && Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
        try await server.stop()

        let bodies = try broker.drain(name).map(\.body)
        #expect(Set(bodies) == Set(ids), "every crash ID reached the queue")
        #expect(bodies.count - Set(bodies).count <= queue.unconfirmedCount)
        let queued = server.auditLines().compactMap { $0["queued"] as? Bool }
        #expect(queued.count == ids.count && queued.contains(false))
    }
}
