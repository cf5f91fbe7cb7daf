import Foundation
import Testing
import Telemetry
@testable import Collector

/// `CRASHSTORAGE=gcs` against the GCS emulator (`scripts/services/gcs.sh`), objects read back
/// with Google's official client.
@Suite struct GCSCrashStorageTests {
    static func storage(_ env: GoogleTestEnvironment, bucket: String, baseURL: String? = nil,
                        telemetry: Telemetry = .silent()) throws -> GCSCrashStorage {
        GCSCrashStorage(client: try GoogleAPIClient(baseURL: baseURL ?? env.storageHost, credentials: nil, requestTimeout: 2),
                        bucket: bucket, telemetry: telemetry)
    }

    @Test func savesEveryObjectUnderTheDesignKeys() throws {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let storage = try Self.storage(env, bucket: bucket)
        let date = StorageFixtures.uniqueDate()
        let crash = StorageFixtures.crash([("upload_file_minidump", "simple-crashpad.dmp"), ("memory_report", "linux-mini.dmp")], date: date)
        try storage.save(crash)

        let stored = try env.objects(in: bucket, under: "v1/")
        let expected = StorageFixtures.expectedObjects(crash)
        #expect(stored.keys.sorted() == expected.map(\.key).sorted())
        for object in expected { #expect(stored[object.key] == object.bytes, "\(object.key)") }
        // `republish --date` finds it.
        #expect(try storage.crashIDs(onDate: CrashID.dateFolder(of: crash.crashID)) == [crash.crashID])
    }

    @Test func startupWritesTheTestObjectAndTheHeartbeatReadsTheBucket() throws {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let storage = try Self.storage(env, bucket: bucket)
        try storage.verifyAtStartup()
        #expect(try env.objects(in: bucket, under: "test/") == [GCSCrashStorage.testObject: Array("test".utf8)])
        #expect(storage.check() == .ok)
    }

    /// A bucket that does not exist is a configuration error: start-up stops, naming it.
    @Test func missingBucketStopsStartup() throws {
        let env = try GoogleTestEnvironment.load()
        let storage = try Self.storage(env, bucket: "no-such-bucket-\(UUID().uuidString.lowercased().prefix(8))")
        let error = try #require(throws: Backends.StartupError.self) { try storage.verifyAtStartup() }
        #expect(error.description.contains(storage.bucket) && error.description.contains("CRASHSTORAGE_GCS_BUCKET"))
        #expect(storage.check().isFailing)
    }

    /// An unreachable service at start-up is an outage: the storage is returned, the failure is
    /// logged, and the heartbeat check fails until the service answers.
    @Test func unreachableServiceStartsDegraded() throws {
        let env = try GoogleTestEnvironment.load()
        let (telemetry, logs) = StorageFixtures.telemetry()
        let storage = try Self.storage(env, bucket: "breakwater-test", baseURL: "http://127.0.0.1:\(Tools.freePort())", telemetry: telemetry)
        try storage.verifyAtStartup()
        #expect(logs.lines.contains { $0.contains("starting degraded") })
        guard case .error(let detail) = storage.check() else { Issue.record("check should fail"); return }
        #expect(detail.contains("GCS bucket breakwater-test"))
    }
}
