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

    @Test func crashIDsPublishedWhileTheBrokerIsDownReachTheQueueOnceItIsBack() throws {
        let name = broker.uniqueQueue()
        let statsd = try StatsdReceiver()
        defer { statsd.close() }
        let telemetry = Telemetry(sink: CapturingLogSink(), logLevel: .critical,
                                  statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05))
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: telemetry, poolSize: 2)
        let publisher = QueuePublisher(queue: queue, telemetry: telemetry, budget: 1)
        defer { publisher.flush(until: Date()); try? broker.delete(name) }

        // A worker keeps publishing while the broker goes down and comes back.
        let published = Locked<[(id: String, queued: Bool)]>([])
        let stop = Locked(false)
        let worker = Thread {
            while !stop.withLock({ $0 }) {
                let id = CrashID.make(result: .accept, date: Date())
                let queued = publisher.publish(id)
                published.withLock { $0.append((id, queued)) }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        worker.start()
        Thread.sleep(forTimeInterval: 0.5)
        try broker.stopApp()
        let down = RabbitMQTests.newCrashIDs(5)
        for id in down {
            let queued = publisher.publish(id)
            published.withLock { $0.append((id, queued)) }
        }
        #expect(publisher.backlog.count >= down.count)
        if case .warning = publisher.check() {} else { Issue.record("backlog not reported: \(publisher.check())") }
        #expect(queue.check().isFailing)
        try broker.startApp()
        Thread.sleep(forTimeInterval: 0.5)
        stop.withLock { $0 = true }
        while !worker.isFinished { Thread.sleep(forTimeInterval: 0.01) }

        // The backlog drains into the queue once the broker is back.
        let deadline = Date(timeIntervalSinceNow: 60)
        while publisher.backlog.count > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(publisher.backlog.count == 0)
        #expect(publisher.check() == .ok)

        let ids = published.withLock { $0 }.map(\.id)
        let bodies = try broker.drain(name).map(\.body)
        let missing = published.withLock { $0 }.enumerated().filter { !Set(bodies).contains($0.element.id) }
        #expect(missing.isEmpty, """
            every crash ID reached the queue; missing \(missing.count) of \(ids.count) \
            (positions \(missing.map(\.offset)), confirmed directly: \(missing.filter(\.element.queued).count))
            """)
        #expect(published.withLock { $0 }.contains { !$0.queued }, "some went through the backlog")
        // A duplicate is only possible for a publish the broker did not confirm.
        let duplicates = bodies.count - Set(bodies).count
        #expect(duplicates <= queue.unconfirmedCount, "\(duplicates) duplicates, \(queue.unconfirmedCount) unconfirmed")

        // What operators see: reconnects, failed publishes, and the backlog gauge back at zero.
        telemetry.flush()
        Thread.sleep(forTimeInterval: 0.3)
        let lines = statsd.lines
        func values(_ metric: String, _ suffix: String) -> [Int] {
            lines.filter { $0.hasPrefix("breakwater.\(metric):") && $0.hasSuffix(suffix) }
                .compactMap { Int($0.dropFirst("breakwater.\(metric):".count).prefix { $0.isNumber }) }
        }
        #expect(values("queue.reconnect", "|c").reduce(0, +) >= 2, "the first connection and one after the restart")
        #expect(values("publish_crash", "|c|#result:failure").reduce(0, +) == published.withLock { $0 }.filter { !$0.queued }.count)
        let backlogSizes = values("publish_backlog.size", "|g")
        #expect((backlogSizes.max() ?? 0) >= down.count && backlogSizes.last == 0, "\(backlogSizes)")
    }

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
