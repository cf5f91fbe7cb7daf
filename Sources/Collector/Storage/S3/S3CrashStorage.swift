import Foundation
import Logging
import NIOCore
import Telemetry

/// `CRASHSTORAGE=s3`: the design's keys as objects in one bucket.
///
/// Dumps and `dump_names` are PUT concurrently, then `raw_crash` alone once they all succeeded, so
/// a `raw_crash` object means the crash is complete. A save that fails deletes what it wrote,
/// `raw_crash` first. `save` blocks on the client's futures: it runs on worker threads, never on an
/// event loop. Failed requests are logged with S3's error code and request id, never credentials.
public final class S3CrashStorage: CrashStorage {
    public let client: S3Client
    private let logger: Logger

    public init(client: S3Client, telemetry: Telemetry) {
        self.client = client
        logger = telemetry.logger("breakwater.s3")
    }

    /// The start-up check: the bucket answers and takes a write. Throws a message naming the
    /// bucket, the endpoint and S3's answer.
    public func verifyWritable() throws {
        do {
            try probe()
        } catch {
            logFailure(error, key: "", crashID: nil)
            throw Backends.StartupError("S3 bucket \(client.bucket) at \(client.endpointDescription) is not reachable and writable "
                + "(check CRASHSTORAGE_S3_BUCKET, CRASHSTORAGE_S3_ENDPOINT, CRASHSTORAGE_S3_REGION and the AWS_* credentials): \(error)")
        }
    }

    public func save(_ crash: StoredCrash) throws {
        var objects = StorageKeys.objects(of: crash)
        let rawCrash = objects.removeLast()
        let results = try EventLoopFuture.whenAllComplete(objects.map { client.put($0.key, $0.bytes) }, on: client.eventLoop).wait()
        var written: [String] = []
        var failure: Error?
        for (object, result) in zip(objects, results) {
            switch result {
            case .success: written.append(object.key)
            case .failure(let error):
                logFailure(error, key: object.key, crashID: crash.crashID)
                failure = failure ?? error
            }
        }
        if let failure {
            removePartial(written, crashID: crash.crashID)
            throw failure
        }
        do {
            try client.put(rawCrash.key, rawCrash.bytes).wait()
        } catch {
            logFailure(error, key: rawCrash.key, crashID: crash.crashID)
            // The PUT may have landed even though its answer was lost: remove it before the rest.
            removePartial([rawCrash.key], crashID: crash.crashID)
            removePartial(written, crashID: crash.crashID)
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

    private func removePartial(_ keys: [String], crashID: String) {
        guard !keys.isEmpty else { return }
        let results = try? EventLoopFuture.whenAllComplete(keys.map { client.delete($0) }, on: client.eventLoop).wait()
        for case .failure(let error) in results ?? [] {
            logger.error("could not remove part of an unsaved crash", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
        }
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
