import Foundation
import Testing
@testable import Collector

/// `CRASHSTORAGE=s3` against moto's S3 server with signature checking on (started by
/// `scripts/services/moto.sh`). Objects are read back: moto does not check payload hashes.
@Suite(.serialized) struct S3CrashStorageTests {
    /// The bytes stored under `key`, or nil when there is no such object.
    static func object(_ key: String, _ client: S3Client) throws -> [UInt8]? {
        let response = try client.send(.GET, key: key).wait()
        if response.status == 404 { return nil }
        #expect(response.status == 200, "GET \(key)")
        return Array(response.body.readableBytesView)
    }

    @Test func storesEachObjectUnderItsKeyByteForByteRawCrashLast() throws {
        let env = try S3TestEnvironment.load()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.port)
        defer { try? proxy.stop() }
        let (telemetry, _) = StorageFixtures.telemetry()
        let storage = S3CrashStorage(client: try env.client(endpoint: "http://127.0.0.1:\(proxy.port)"), telemetry: telemetry)
        try storage.verifyWritable()
        let date = StorageFixtures.uniqueDate()
        let crash = StorageFixtures.crash([("upload_file_minidump", "simple-crashpad.dmp"), ("upload_file_minidump_browser", "linux-mini.dmp")],
                                          date: date)
        try storage.save(crash)

        let direct = try env.client()
        let id = crash.crashID
        let day = CrashID.dateFolder(of: id)
        #expect(try Self.object("v1/dump/\(id)", direct) == Fixtures.bytes("simple-crashpad.dmp"))
        #expect(try Self.object("v1/upload_file_minidump_browser/\(id)", direct) == Fixtures.bytes("linux-mini.dmp"))
        #expect(try Self.object("v1/dump_names/\(id)", direct) == Array(#"["upload_file_minidump","upload_file_minidump_browser"]"#.utf8))
        #expect(try Self.object("v1/raw_crash/\(day)/\(id)", direct) == crash.rawCrash)
        let puts = proxy.requestLines.filter { $0.hasPrefix("PUT ") && $0.contains(id) }
        #expect(puts.count == 4)
        #expect(puts.last == "PUT /\(env.bucket)/v1/raw_crash/\(day)/\(id) HTTP/1.1")
        #expect(storage.check() == .ok)
    }

    /// ListObjectsV2 page by page, in a bucket of its own so the listing is known exactly.
    @Test func listingFollowsContinuationTokens() throws {
        let env = try S3TestEnvironment.load()
        let (telemetry, _) = StorageFixtures.telemetry()
        let client = try env.client(bucket: "breakwater-list-\(UInt32.random(in: 0...UInt32.max))")
        #expect(try client.send(.PUT, key: "").wait().status == 200)
        let storage = S3CrashStorage(client: client, telemetry: telemetry)
        let date = StorageFixtures.uniqueDate()
        let crashes = (0..<5).map { _ in StorageFixtures.crash([("upload_file_minidump", "invalid-range.dmp")], date: date) }
        for crash in crashes { try storage.save(crash) }
        let expected = crashes.flatMap { StorageKeys.objects(of: $0).map(\.key) }.sorted()
        #expect(try client.listKeys(prefix: "", pageSize: 3) == expected)

        // moto checks signatures against the query with %2F decoded to "/" (werkzeug's request.url),
        // so it refuses every signed prefix holding a slash, boto3's included; real S3 does not.
        withKnownIssue("moto refuses signed ListObjectsV2 prefixes containing '/' (getmoto/moto#5948)") {
            let day = CrashID.dateFolder(of: crashes[0].crashID)
            let listed = try storage.crashIDs(onDate: day)
            #expect(listed.sorted() == crashes.map(\.crashID).sorted())
        }
    }

    /// A wrong secret: the server refuses the signature; start-up stops with S3's error code, a
    /// save fails (the pipeline answers 503) with the code and request id logged, never a secret.
    @Test func wrongSecretIsRefusedByTheServer() throws {
        let env = try S3TestEnvironment.load()
        let wrongSecret = "not-the-secret-\(UUID().uuidString)"
        let (telemetry, logs) = StorageFixtures.telemetry()
        let storage = S3CrashStorage(client: try env.client(secret: wrongSecret), telemetry: telemetry)

        let error = try #require(throws: Backends.StartupError.self) { try storage.verifyWritable() }
        #expect(error.description.contains("SignatureDoesNotMatch"))
        #expect(error.description.contains(env.bucket))

        let crash = StorageFixtures.crash()
        #expect(CrashSaver(storage: storage, telemetry: telemetry, budget: 0.3).save(crash) == .failed)
        #expect(try Self.object(StorageKeys.rawCrash(crash.crashID), try env.client()) == nil)
        let refused = logs.lines.filter { $0.contains(#""s3_error_code":"SignatureDoesNotMatch""#) && $0.contains(crash.crashID) }
        #expect(!refused.isEmpty)
        #expect(refused.allSatisfy { $0.contains(#""s3_request_id":""#) && !$0.contains(#""s3_request_id":"""#) })
        #expect(!logs.lines.contains { $0.contains(wrongSecret) || $0.contains(env.secretAccessKey) })
    }

    @Test func missingBucketFailsTheStartupCheck() throws {
        let env = try S3TestEnvironment.load()
        let (telemetry, _) = StorageFixtures.telemetry()
        let storage = S3CrashStorage(client: try env.client(bucket: "breakwater-missing-\(UInt32.random(in: 0...UInt32.max))"), telemetry: telemetry)
        let error = try #require(throws: Backends.StartupError.self) { try storage.verifyWritable() }
        #expect(error.description.contains("NoSuchBucket"))
        if case .error(let reason) = storage.check() {
            #expect(reason.contains("NoSuchBucket"))
        } else {
            Issue.record("check() should fail for a missing bucket")
        }
    }

    /// S3 unreachable (the proxy in front of moto switched off): the save fails within the
    /// budget, nothing of the crash is stored, the heartbeat probe fails; reachable again, saves work.
    @Test func storageDownFailsWithinTheBudgetThenRecovers() throws {
        let env = try S3TestEnvironment.load()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.port)
        defer { try? proxy.stop() }
        let (telemetry, logs) = StorageFixtures.telemetry()
        let storage = S3CrashStorage(client: try env.client(endpoint: "http://127.0.0.1:\(proxy.port)", requestTimeout: 0.5),
                                     telemetry: telemetry)
        let saver = CrashSaver(storage: storage, telemetry: telemetry, budget: 1.5)
        let direct = try env.client()
        #expect(saver.save(StorageFixtures.crash()) == .stored)

        try proxy.stop()
        let lost = StorageFixtures.crash([("upload_file_minidump", "test.dmp"), ("upload_file_minidump_browser", "linux-mini.dmp")])
        let start = Date()
        #expect(saver.save(lost) == .failed)
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < 1.5 + 0.5 + 0.5, "save took \(elapsed) s")
        for (key, _) in StorageFixtures.expectedObjects(lost) {
            #expect(try Self.object(key, direct) == nil, "\(key) left behind")
        }
        #expect(storage.check().isFailing)
        #expect(logs.lines.contains { $0.contains("save failed") && $0.contains(lost.crashID) })

        try proxy.start()
        let later = StorageFixtures.crash()
        #expect(saver.save(later) == .stored)
        for (key, bytes) in StorageFixtures.expectedObjects(later) {
            #expect(try Self.object(key, direct) == bytes, "\(key)")
        }
        #expect(storage.check() == .ok)
    }

    /// `CRASHSTORAGE=s3` with the four settings gives a checked S3 storage; a wrong secret stops start-up.
    @Test func backendsBuildsS3StorageFromConfiguration() throws {
        let env = try S3TestEnvironment.load()
        let (telemetry, _) = StorageFixtures.telemetry()
        var config = env.configuration()
        #expect(try Backends.storage(config, telemetry: telemetry) is S3CrashStorage)
        config.awsSecretAccessKey = "wrong"
        let error = try #require(throws: Backends.StartupError.self) { try Backends.storage(config, telemetry: telemetry) }
        #expect(error.description.contains("SignatureDoesNotMatch"))
    }
}
