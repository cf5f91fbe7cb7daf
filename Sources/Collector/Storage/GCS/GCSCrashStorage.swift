import Crypto
import Foundation
import Logging
import NIOCore
import Telemetry

/// `CRASHSTORAGE=gcs`: the design's keys as objects in one Cloud Storage bucket, written with the
/// JSON API's multipart upload and each object's MD5, so Google refuses a body damaged on the way.
///
/// Dumps and `dump_names` are uploaded concurrently, then `raw_crash` alone once they all
/// succeeded, so a `raw_crash` object means the crash is complete. A failed save deletes nothing:
/// without `raw_crash` the other objects are invisible to processors, the retry overwrites them
/// with the same bytes, and a delete could remove what a concurrent save of the same crash wrote.
/// `save` blocks on the client's futures: worker threads only.
public final class GCSCrashStorage: CrashStorage {
    public let client: GoogleAPIClient
    public let bucket: String
    /// Where the start-up test object goes (Antenna writes the same one).
    public static let testObject = "test/testwrite.txt"
    private let logger: Logger

    public init(client: GoogleAPIClient, bucket: String, telemetry: Telemetry) {
        self.client = client
        self.bucket = bucket
        logger = telemetry.logger("breakwater.gcs")
    }

    /// The configured storage (`CRASHSTORAGE=gcs`), checked as `verifyAtStartup` says.
    public static func configured(_ config: CollectorConfiguration, telemetry: Telemetry) throws -> GCSCrashStorage {
        guard !config.gcsBucket.isEmpty else {
            throw Backends.StartupError("CRASHSTORAGE=gcs needs CRASHSTORAGE_GCS_BUCKET (or Antenna's CRASHMOVER_CRASHSTORAGE_BUCKET_NAME)")
        }
        // As for S3: a floor per request plus an allowance per MiB of the object.
        let client = try GoogleAPIClient.configured(config, emulator: config.storageEmulatorHost, emulatorVariable: "STORAGE_EMULATOR_HOST",
                                                    service: "https://storage.googleapis.com", timeout: config.storageTimeout,
                                                    timeoutPerMiB: config.storageTimeoutPerMiB)
        let storage = GCSCrashStorage(client: client, bucket: config.gcsBucket, telemetry: telemetry)
        try storage.verifyAtStartup()
        return storage
    }

    /// Antenna's start-up check: write a small object under `test/`. A refusal (no such bucket,
    /// credentials or role refused) stops start-up; an unreachable service does not: the collector
    /// starts degraded and the heartbeat reports it.
    public func verifyAtStartup() throws {
        do {
            try upload(Self.testObject, ByteBuffer(string: "test")).wait()
            logger.info("gcs bucket writable", metadata: ["bucket": "\(bucket)", "api": "\(client.baseURL)"])
        } catch {
            let message = "GCS bucket \(bucket) at \(client.baseURL) refused the start-up test object "
                + "(check CRASHSTORAGE_GCS_BUCKET, the credentials and roles/storage.objectUser): \(error)"
            if GoogleAPIError.isRejection(error) { throw Backends.StartupError(message) }
            logger.error("gcs unreachable at start-up; starting degraded", metadata: ["bucket": "\(bucket)", "error": "\(error)"])
        }
    }

    public func save(_ crash: StoredCrash) throws {
        var objects = StorageKeys.objects(of: crash)
        let rawCrash = objects.removeLast()
        let results = try EventLoopFuture.whenAllComplete(objects.map { upload($0.key, $0.bytes) }, on: client.eventLoop).wait()
        for (object, result) in zip(objects, results) {
            if case .failure(let error) = result {
                logFailure(error, key: object.key, crashID: crash.crashID)
                throw error
            }
        }
        do {
            try upload(rawCrash.key, rawCrash.bytes).wait()
        } catch {
            logFailure(error, key: rawCrash.key, crashID: crash.crashID)
            throw error
        }
    }

    /// A cheap bucket read that `roles/storage.objectUser` allows: list at most one object.
    public func check() -> HealthStatus {
        do {
            _ = try client.call("list gs://\(bucket)", .GET, "/storage/v1/b/\(GoogleAPIClient.encode(bucket))/o?maxResults=1&prefix=test%2F&fields=kind").wait()
            return .ok
        } catch {
            return .error("GCS bucket \(bucket) at \(client.baseURL) not readable: \(error)")
        }
    }

    public func crashIDs(onDate date: String) throws -> [String] {
        let prefix = StorageKeys.rawCrashFolder(date: date)
        var names: [String] = []
        var pageToken: String?
        var tokens: Set<String> = []
        repeat {
            var path = "/storage/v1/b/\(GoogleAPIClient.encode(bucket))/o?prefix=\(GoogleAPIClient.encode(prefix))"
                + "&fields=items(name),nextPageToken"
            if let pageToken { path += "&pageToken=\(GoogleAPIClient.encode(pageToken))" }
            let body = try client.call("list gs://\(bucket)/\(prefix)", .GET, path).wait()
            guard let page = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                throw ListingFailure(description: "GCS listing of gs://\(bucket)/\(prefix) answered a page that is not a JSON object")
            }
            names += ((page["items"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
            pageToken = page["nextPageToken"] as? String
            try ListingFailure.refuseRepeated(pageToken, seen: &tokens, in: "GCS listing of gs://\(bucket)/\(prefix)")
        } while pageToken != nil
        return names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.filter(CrashID.isValid)
    }

    /// One multipart upload: the object's metadata (name, MD5) and its bytes.
    func upload(_ key: String, _ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        let md5 = bytes.withUnsafeReadableBytes { Data(Insecure.MD5.hash(data: $0)).base64EncodedString() }
        let metadata = JSONValue.object(["name": .string(key), "md5Hash": .string(md5),
                                         "contentType": .string("application/octet-stream")]).serialized()
        let boundary = "breakwater-" + String(UInt64.random(in: .min ... .max), radix: 16)
        var body = ByteBuffer()
        body.reserveCapacity(bytes.readableBytes + metadata.utf8.count + 256)
        body.writeString("--\(boundary)\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n\(metadata)\r\n")
        body.writeString("--\(boundary)\r\nContent-Type: application/octet-stream\r\n\r\n")
        body.writeImmutableBuffer(bytes)
        body.writeString("\r\n--\(boundary)--\r\n")
        return client.call("upload gs://\(bucket)/\(key)", .POST,
                           "/upload/storage/v1/b/\(GoogleAPIClient.encode(bucket))/o?uploadType=multipart&fields=name",
                           contentType: "multipart/related; boundary=\(boundary)", body: body).map { _ in }
    }

    private func logFailure(_ error: Error, key: String, crashID: String) {
        var metadata: Logger.Metadata = ["key": "\(key)", "bucket": "\(bucket)", "crash_id": "\(crashID)", "error": "\(error)"]
        if let google = error as? GoogleAPIError { metadata["status"] = "\(google.status)" }
        logger.warning("GCS upload failed", metadata: metadata)
    }
}
