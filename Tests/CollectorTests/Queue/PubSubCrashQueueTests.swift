import Foundation
import Testing
import Telemetry
@testable import Collector

/// `CRASHQUEUE=pubsub` against Google's Pub/Sub emulator (`scripts/services/pubsub.sh`): what a
/// processor pulls from a subscription is what was published.
@Suite struct PubSubCrashQueueTests {
    static func queue(_ env: GoogleTestEnvironment, topic: String, baseURL: String? = nil,
                      telemetry: Telemetry = .silent()) throws -> PubSubCrashQueue {
        PubSubCrashQueue(client: try GoogleAPIClient(baseURL: baseURL ?? "http://\(env.pubsubHost)", credentials: nil, requestTimeout: 2),
                         project: env.project, topic: topic, telemetry: telemetry)
    }

    static func ids(_ n: Int) -> [String] { (0..<n).map { _ in CrashID.make(result: .accept, date: Date()) } }

    static func publishCalls(_ proxy: TCPProxy) -> Int { proxy.requestLines.filter { $0.contains(":publish ") }.count }

    @Test func publishesTheCrashIDAsTheMessageData() async throws {
        let env = try GoogleTestEnvironment.load()
        let (topic, subscription) = try env.makeTopic()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.pubsubPort)
        defer { try? proxy.stop() }
        let queue = try Self.queue(env, topic: topic, baseURL: "http://127.0.0.1:\(proxy.port)")
        try queue.verifyAtStartup()
        #expect(queue.check() == .ok)
        let ids = Self.ids(3)
        for id in ids { try queue.publish(id) }
        let pulled = try await env.waitFor(ids, on: subscription, timeout: 10)
        #expect(Set(pulled) == Set(ids) && pulled.count == ids.count)
        // The live path: one call per crash.
        #expect(Self.publishCalls(proxy) == 3)
    }

    /// What the outbox drain sends: many IDs in one call, each pulled once.
    @Test func aBatchIsOneCall() async throws {
        let env = try GoogleTestEnvironment.load()
        let (topic, subscription) = try env.makeTopic()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.pubsubPort)
        defer { try? proxy.stop() }
        let queue = try Self.queue(env, topic: topic, baseURL: "http://127.0.0.1:\(proxy.port)")
        let ids = Self.ids(150)
        let result = queue.publish(batch: ids)
        #expect(result.published == 150 && result.failure == nil)
        #expect(Self.publishCalls(proxy) == 1)
        #expect(Set(try await env.waitFor(ids, on: subscription, timeout: 10)) == Set(ids))
    }

    /// Crash IDs waiting in the outbox to be queued reach Pub/Sub in one call, not one each.
    @Test func theOutboxDrainsInBatches() async throws {
        let env = try GoogleTestEnvironment.load()
        let (topic, subscription) = try env.makeTopic()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.pubsubPort)
        defer { try? proxy.stop() }
        let queue = try Self.queue(env, topic: topic, baseURL: "http://127.0.0.1:\(proxy.port)")
        let folder = try Tools.temporaryFolder("outbox-batch")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 20, telemetry: .silent())
        let ids = Self.ids(40)
        for id in ids { #expect(outbox.addPublish(id, receivedAt: Date().timeIntervalSince1970)) }
        let mover = OutboxMover(outbox: outbox, saver: CrashSaver(storage: NullCrashStorage(), telemetry: .silent()),
                                publisher: QueuePublisher(queue: queue, telemetry: .silent()), telemetry: .silent())
        try mover.start()
        #expect(Set(try await env.waitFor(ids, on: subscription, timeout: 10)) == Set(ids))
        mover.stop()
        #expect(outbox.count == 0)
        #expect(Self.publishCalls(proxy) == 1)
    }

    /// A topic that does not exist: start-up stops naming it; a publish to it throws, so the ID
    /// stays in the outbox.
    @Test func missingTopicStopsStartupAndPublishThrows() throws {
        let env = try GoogleTestEnvironment.load()
        let queue = try Self.queue(env, topic: "no-such-topic-\(UUID().uuidString.prefix(8))")
        let error = try #require(throws: Backends.StartupError.self) { try queue.verifyAtStartup() }
        #expect(error.description.contains(queue.topicPath) && error.description.contains("PUBSUB_TOPIC"))
        #expect(queue.check().isFailing)
        let publishError = try #require(throws: GoogleAPIError.self) { try queue.publish(Self.ids(1)[0]) }
        #expect(publishError.status == 404)
    }

    @Test func unreachableServiceStartsDegraded() throws {
        let env = try GoogleTestEnvironment.load()
        let (telemetry, logs) = StorageFixtures.telemetry()
        let queue = try Self.queue(env, topic: "standard-queue", baseURL: "http://127.0.0.1:\(Tools.freePort())", telemetry: telemetry)
        try queue.verifyAtStartup()
        #expect(logs.lines.contains { $0.contains("starting degraded") })
        #expect(queue.check().isFailing)
        #expect(throws: (any Error).self) { try queue.publish(Self.ids(1)[0]) }
    }

    /// `breakwater republish` builds its queue from the same configuration; the default topic is Socorro's.
    @Test func republishPutsIDsOnTheTopic() async throws {
        let env = try GoogleTestEnvironment.load()
        #expect(CollectorConfiguration().pubsubTopic == "standard-queue")
        let (topic, subscription) = try env.makeTopic()
        var config = env.configuration(bucket: "unused", topic: topic)
        config.crashStorage = "null"
        let queue = try Backends.queue(config, telemetry: .silent())
        #expect(queue is PubSubCrashQueue)
        let ids = Self.ids(4)
        let republisher = Republisher(queue: queue, storage: NullCrashStorage(), telemetry: .silent())
        let report = republisher.republish(try republisher.crashIDs(from: .crashIDs(ids.map { "bp-" + $0 })))
        #expect(report.queued == ids && report.succeeded)
        #expect(Set(try await env.waitFor(ids, on: subscription, timeout: 10)) == Set(ids))
    }
}
