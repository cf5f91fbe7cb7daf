import Foundation
import Testing
import Telemetry
@testable import Collector

/// Breakpad, gzip and Sentry crashes through the in-process server into the GCS emulator and
/// onto the Pub/Sub emulator, both backends built from configuration as an operator sets them;
/// read back as Socorro's processor would: the crash ID from a subscription, the objects from the bucket.
@Suite(.serialized) struct GoogleEndToEndTests {
    @Test func breakpadGzipAndSentryCrashesLandInTheBucketAndOnTheTopic() async throws {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let (topic, subscription) = try env.makeTopic()
        let config = env.configuration(bucket: bucket, topic: topic)
        let server = try await TestServer.start(configure: { $0 = config; $0.host = "127.0.0.1"; $0.port = 0; $0.workers = 2 },
                                                storage: try Backends.storage(config, telemetry: .silent()),
                                                queue: try Backends.queue(config, telemetry: .silent()))

        let plain = try BreakpadIntakeTests.crashID(of: try await server.submit(StorageEndToEndTests.form()))
        let gzipped = try BreakpadIntakeTests.crashID(of: try await server.submit(StorageEndToEndTests.form(), gzip: true))
        let captured = CapturedRequest("sentry-python-2.75-envelope-gzip-attachment.http")
        let sentry = try await server.request(.POST, captured.path, headers: captured.resendHeaders, body: captured.body)
        #expect(sentry.status == 200)

        // Three messages: the two Breakpad IDs and the Sentry event's crash ID.
        let pulled = try await env.waitFor([plain, gzipped], on: subscription, timeout: 15)
        var all = pulled
        let end = Date().addingTimeInterval(10)
        while all.count < 3 && Date() < end {
            try await Task.sleep(nanoseconds: 200_000_000)
            all += try env.pull(subscription)
        }
        #expect(all.count == 3)
        let sentryID = try #require(all.first { ![plain, gzipped].contains($0) })

        let objects = try env.objects(in: bucket, under: "v1/")
        for id in [plain, gzipped] {
            try await StorageEndToEndTests.expectStored(id, on: server) { objects[$0] }
        }
        let truth = try GCSTruth(env, bucket: bucket)
        let raw = try #require(try truth.completeCrash(sentryID))
        #expect(raw["uuid"] as? String == sentryID)
        // The envelope's attachment is a minidump: it is stored byte for byte under the crash's ID.
        #expect(objects.contains { $0.key.hasSuffix("/\(sentryID)") && $0.value == Fixtures.bytes("linux-mini.dmp") })
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.status == 200)
        try await server.stop()
    }

    /// Storage down: the client is told to retry later (no spool here), never given a crash ID
    /// that is not in the bucket; the heartbeat names the bucket.
    @Test func unreachableBucketAnswersRetryLater() async throws {
        let env = try GoogleTestEnvironment.load()
        var config = env.configuration(bucket: "breakwater-test", topic: "unused")
        config.storageEmulatorHost = "127.0.0.1:\(Tools.freePort())"
        config.crashQueue = "null"
        config.saveBudget = 0.5
        let storage = try Backends.storage(config, telemetry: .silent())
        let server = try await TestServer.start(configure: { $0.saveBudget = 0.5 }, storage: storage)
        let response = try await server.submit(StorageEndToEndTests.form())
        await StorageEndToEndTests.expectRetryLater(response, on: server)
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        #expect(heartbeat.status == 503)
        #expect(heartbeat.body.contains("GCS bucket breakwater-test"))
        try await server.stop()
    }
}
