import Foundation
import Testing
@testable import Collector

/// The executable with Google backends, as an operator swapping Antenna's container runs it:
/// Antenna's environment only, `check-config`, `republish`.
@Suite(.serialized) struct GoogleProcessTests {
    static func run(_ arguments: [String], _ environment: [String: String]) throws -> (status: Int32, output: String) {
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "STATSD_PORT": "9"]
        env.merge(environment) { $1 }
        return try Tools.run(CollectorProcess.executable.path, arguments, cwd: CollectorProcess.root.path, environment: env)
    }

    /// Antenna's variables and Google's emulator variables, nothing of Breakwater's own: a crash
    /// lands in the bucket and its ID on the topic.
    @Test func startsWithOnlyAntennasEnvironment() async throws {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let (topic, subscription) = try env.makeTopic()
        let collector = try await CollectorProcess(environment: [
            "CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.gcs.crashstorage.GcsCrashStorage",
            "CRASHMOVER_CRASHSTORAGE_BUCKET_NAME": bucket,
            "CRASHMOVER_CRASHPUBLISH_CLASS": "antenna.ext.pubsub.crashpublish.PubSubCrashPublish",
            "CRASHMOVER_CRASHPUBLISH_PROJECT_ID": env.project,
            "CRASHMOVER_CRASHPUBLISH_TOPIC_NAME": topic,
            "BREAKPAD_THROTTLER_RULES": "antenna.throttler.ACCEPT_ALL",
            "LOGGING_LEVEL": "INFO",
            "STORAGE_EMULATOR_HOST": env.storageHost,
            "PUBSUB_EMULATOR_HOST": env.pubsubHost,
        ])
        var form = MultipartBody()
        form.field("ProductName", "Firefox")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        let connection = try RawConnection(port: collector.port)
        #expect(connection.send(RawConnection.head(contentType: form.contentType, contentLength: form.finished.bytes.count,
                                                   extra: "Connection: close\r\n")))
        #expect(connection.send(form.finished.bytes))
        let answer = connection.readAll(timeout: 10)
        let id = try #require(answer.split(separator: "CrashID=bp-").last.map { String($0.prefix(36)) })
        #expect(CrashID.isValid(id), "\(answer)")
        #expect(try await env.waitFor([id], on: subscription, timeout: 15) == [id])
        let objects = try env.objects(in: bucket, under: "v1/")
        #expect(objects["v1/dump/\(id)"] == Fixtures.bytes("linux-mini.dmp"))
        #expect(objects[StorageKeys.rawCrash(id)] != nil)
        collector.signal(SIGTERM)
        #expect(await collector.waitForExit(timeout: 15) == 0)
    }

    /// `check-config` says which name each value came from, prints the key file's path but never
    /// its contents, and refuses an Antenna class it does not know, naming the variable.
    @Test func checkConfigShowsSourcesAndNoSecrets() throws {
        let keyFile = try GoogleAuthTests.keyFile(tokenURI: "http://127.0.0.1:\(Tools.freePort())/token")
        let (status, output) = try Self.run(["check-config"], [
            "CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.gcs.crashstorage.GcsCrashStorage",
            "CRASHMOVER_CRASHSTORAGE_BUCKET_NAME": "antennabucket",
            "CRASHQUEUE": "null",
            "BREAKPAD_STAGE_SUBMITTER_BEARER_TOKEN": "b3arer-s3cret",
            "GOOGLE_APPLICATION_CREDENTIALS": keyFile,
            "SAVE_BUDGET": "1",
        ])
        // The token endpoint is down: an outage, which check-config reports (exit 1), not a
        // configuration error (exit 2).
        #expect(status == 1, "\(output)")
        #expect(output.contains("check storage: error: "), "\(output)")
        #expect(output.contains("CRASHSTORAGE=gcs  # CRASHMOVER_CRASHSTORAGE_CLASS (Antenna)"))
        #expect(output.contains("CRASHSTORAGE_GCS_BUCKET=antennabucket  # CRASHMOVER_CRASHSTORAGE_BUCKET_NAME (Antenna)"))
        #expect(output.contains("CRASHQUEUE=null  # CRASHQUEUE"))
        #expect(output.contains("SUBMITTER_TOKEN=********  # BREAKPAD_STAGE_SUBMITTER_BEARER_TOKEN (Antenna)"))
        #expect(output.contains("GOOGLE_APPLICATION_CREDENTIALS=\(keyFile)  # GOOGLE_APPLICATION_CREDENTIALS"))
        #expect(output.contains("PUBSUB_TOPIC=standard-queue  # default"))
        #expect(!output.contains("b3arer-s3cret") && !output.contains("PRIVATE KEY") && !output.contains("MII"))

        let (bad, message) = try Self.run(["check-config"], ["CRASHMOVER_CRASHPUBLISH_CLASS": "antenna.ext.sqs.crashpublish.SQSCrashPublish"])
        #expect(bad != 0)
        #expect(message.contains("CRASHMOVER_CRASHPUBLISH_CLASS") && message.contains("SQSCrashPublish"))
    }

    /// `breakwater republish --date` lists the date's crashes in the bucket and puts them on the topic.
    @Test func republishADateFromGCSToPubSub() async throws {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let (topic, subscription) = try env.makeTopic()
        let storage = GCSCrashStorage(client: try GoogleAPIClient(baseURL: env.storageHost, credentials: nil, requestTimeout: 5),
                                      bucket: bucket, telemetry: .silent())
        let date = Date(timeIntervalSince1970: 1_700_000_000)  // 2023-11-14
        let ids = (0..<3).map { _ in CrashID.make(result: .accept, date: date) }
        for id in ids { try storage.save(StoredCrash(crashID: id, rawCrash: Array("{}".utf8), dumps: [])) }
        let (status, output) = try Self.run(["republish", "--date", "2023-11-14"], [
            "CRASHSTORAGE": "gcs", "CRASHSTORAGE_GCS_BUCKET": bucket, "STORAGE_EMULATOR_HOST": env.storageHost,
            "CRASHQUEUE": "pubsub", "PUBSUB_PROJECT_ID": env.project, "PUBSUB_TOPIC": topic, "PUBSUB_EMULATOR_HOST": env.pubsubHost,
            "LOG_LEVEL": "error",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.contains("queued 3"))
        #expect(Set(try await env.waitFor(ids, on: subscription, timeout: 10)) == Set(ids))
    }
}
