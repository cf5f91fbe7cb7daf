import Foundation
import Logging
import NIOCore
import Telemetry

/// `CRASHSTORAGE=s3`: the design's keys as objects in one bucket.
///
/// Dumps and `dump_names` are PUT concurrently, then `raw_crash` alone once they all succeeded, so
/// a `raw_crash` object means the crash is complete. A save that fails deletes nothing: the same
/// crash may already be stored whole by an earlier save (a retry after a lost answer, a restart),
/// and the objects of an unfinished save are overwritten by the next attempt. `save` blocks on the client's futures: it runs on worker threads, never on an
/// event loop. Failed requests are logged with S3's error code and request id, never credentials.
public final class S3CrashStorage: CrashStorage {
    public let client: S3Client
    private let telemetry: Telemetry
    private let logger: Logger

    public init(client: S3Client, telemetry: Telemetry) {
        self.client = client
        self.telemetry = telemetry
        logger = telemetry.logger("breakwater.s3")
    }

    /// The start-up check: the bucket answers and takes a write. S3 refusing it (a bad secret, no
    /// such bucket) throws a message naming the bucket, the endpoint and S3's answer; S3 being
    /// unreachable is an outage, logged, and the collector starts degraded (`Backends.checkAtStart`).
    public func verifyWritable() throws {
        try Backends.checkAtStart("S3 bucket \(client.bucket) at \(client.endpointDescription) is not reachable and writable "
            + "(check CRASHSTORAGE_S3_BUCKET, CRASHSTORAGE_S3_ENDPOINT, CRASHSTORAGE_S3_REGION and the AWS_* credentials)",
            telemetry: telemetry) {
            do {
                try probe()
            } catch {
                logFailure(error, key: "", crashID: nil)
                throw error
            }
        }
    }

    public func save(_ crash: StoredCrash) throws {
        var objects = StorageKeys.objects(of: crash)
        let rawCrash = objects.removeLast()
        let results = try EventLoopFuture.whenAllComplete(objects.map { client.put($0.key, $0.bytes) }, on: client.eventLoop).wait()
        for (object, result) in zip(objects, results) {
            if case .failure(let error) = result {
                logFailure(error, key: object.key, crashID: crash.crashID)
                throw error
            }
        }
        do {
            try client.put(rawCrash.key, rawCrash.bytes).wait()
        } catch {
            logFailure(error, key: rawCrash.key, crashID: crash.crashID)
            throw error
        }
    }

    /// The start-up probe again (the heartbeat caches the answer for a few seconds).
    public func check() -> HealthStatus {
        do {
            try probe()
            return .ok
        } catch {
            return .error("S3 bucket \(client.bucket) at \(client.endpointDescription) not writable: \(error)")
        }
    }

    public func crashIDs(onDate date: String) throws -> [String] {
        let prefix = StorageKeys.rawCrashFolder(date: date)
        return try client.listKeys(prefix: prefix).map { String($0.dropFirst(prefix.count)) }.filter(CrashID.isValid)
    }

    /// PUTs and DELETEs a small object outside the crash keys' folders.
    private func probe() throws {
        let key = "v1/.probe/\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"
        try client.put(key, ByteBuffer(string: "ok")).wait()
        try client.delete(key).wait()
    }

    private func logFailure(_ error: Error, key: String, crashID: String?) {
        var metadata: Logger.Metadata = ["key": "\(key)", "bucket": "\(client.bucket)", "error": "\(error)"]
        if let crashID { metadata["crash_id"] = "\(crashID)" }
        if let s3 = error as? S3Error {
            metadata["status"] = "\(s3.status)"
            metadata["s3_error_code"] = "\(s3.code)"
            metadata["s3_request_id"] = "\(s3.requestID)"
        }
        logger.warning("S3 request failed", metadata: metadata)
    }
}
