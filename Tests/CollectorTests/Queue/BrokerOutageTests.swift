import Foundation
import Testing
import Telemetry
@testable import Collector

/// Tests that stop and restart the shared broker of `scripts/services/rabbitmq.sh`. Every other
/// test using the broker would see the outage, so `scripts/test` runs this suite alone, after the
/// others (and before the fault suite, which also stops the broker).
@Suite(.serialized) struct BrokerOutageTests {
    let broker: RabbitMQTestBroker

    init() throws { broker = try RabbitMQTestBroker() }

    /// While the broker is down a publish fails (after the budget, then at once during the
    /// outage hold); once it is back the pool reconnects and publishes are confirmed again.
    @Test func publishesFailWhileTheBrokerIsDownAndSucceedOnceItIsBack() throws {
        let name = broker.uniqueQueue()
        let statsd = try StatsdReceiver()
        defer { statsd.close() }
        let telemetry = Telemetry(sink: CapturingLogSink(), logLevel: .critical,
                                  statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05))
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: telemetry, poolSize: 2)
        let publisher = QueuePublisher(queue: queue, telemetry: telemetry, budget: 1)
        defer { try? broker.delete(name) }

        let before = RabbitMQTests.newCrashIDs(3)
        #expect(before.allSatisfy(publisher.publish))
        try broker.stopApp()
        let down = RabbitMQTests.newCrashIDs(3)
        #expect(!down.contains(where: publisher.publish))
        #expect(queue.check().isFailing)
        try broker.startApp()
        let after = RabbitMQTests.newCrashIDs(3)
        var queued: [String] = []
        let deadline = Date(timeIntervalSinceNow: 30)
        for id in after {
            while !publisher.publish(id) && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
            queued.append(id)
        }
        let bodies = Set(try broker.drain(name).map(\.body))
        #expect(bodies.isSuperset(of: before + after))

        telemetry.flush()
        Thread.sleep(forTimeInterval: 0.3)
        let reconnects = statsd.counted("breakwater.queue.reconnect")
        #expect(reconnects >= 2, "the first connection and one after the restart")
        #expect(statsd.lines.contains { $0.hasPrefix("breakwater.publish_crash:") && $0.hasSuffix("|c|#result:failure") })
    }

    @Test func crashesPostedWhileTheBrokerIsDownAreAnsweredAndQueuedOnceItIsBack() async throws {
        let name = broker.uniqueQueue()
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID())").path
        defer { try? broker.delete(name); try? FileManager.default.removeItem(atPath: spool) }
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: .silent(), poolSize: 2)
        let server = try await TestServer.start(configure: { $0.spoolDir = spool; $0.publishBudget = 0.5 }, queue: queue)
        func post() async throws -> String {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            return try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        }

        var ids = [try await post(), try await post()]
        try broker.stopApp()
        for _ in 0..<5 { ids.append(try await post()) }
        // Answered with crash IDs and stored, but waiting in the outbox as `publish` records.
        #expect(ids.allSatisfy { server.captured[$0] != nil })
        let waiting = Outbox.list(directory: spool).filter { $0.record.state == .publish }.map(\.record.crashID)
        #expect(Set(waiting) == Set(ids[2...]))
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.status == 503 && heartbeat.body.contains("5 crash IDs waiting to be queued"), "\(heartbeat.body)")
        try broker.startApp()
        for _ in 0..<3 { ids.append(try await post()) }

        let outbox = try #require(server.collector.pipeline.outbox)
        let deadline = Date(timeIntervalSinceNow: 60)
        while outbox.count > 0 && Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
        try await server.stop()

        let bodies = try broker.drain(name).map(\.body)
        #expect(Set(bodies) == Set(ids), "every crash ID reached the queue")
        #expect(bodies.count - Set(bodies).count <= queue.unconfirmedCount)
        let queued = server.auditLines().compactMap { $0["queued"] as? Bool }
        #expect(queued.count == ids.count && queued.contains(false))
    }
}
