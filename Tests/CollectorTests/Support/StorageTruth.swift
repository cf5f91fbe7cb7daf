import Foundation
import NIOCore
@testable import Collector

/// What a storage really holds, read behind the collector's back (moto directly, not through the
/// proxy; the files under a filesystem root), for the fault suite.
protocol StorageTruth {
    /// Bytes of the object under `key`, nil when absent.
    func object(_ key: String) throws -> [UInt8]?
    /// Every key under `prefix`.
    func keys(under prefix: String) throws -> [String]
}

extension StorageTruth {
    /// The raw crash of `id` when the crash is complete: raw crash JSON with the right `uuid`, a
    /// `dump_names` list, every dump it names. nil when anything is missing or does not parse.
    func completeCrash(_ id: String) throws -> [String: Any]? {
        guard let raw = try object(StorageKeys.rawCrash(id)),
              let json = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any],
              json["uuid"] as? String == id,
              let namesBytes = try object(StorageKeys.dumpNames(id)),
              let names = try? JSONSerialization.jsonObject(with: Data(namesBytes)) as? [String] else { return nil }
        for name in names where try object(StorageKeys.dump(name, id)) == nil { return nil }
        return json
    }

    /// Every raw crash under `v1/raw_crash/`, checked complete: (crash ID, its raw crash or nil
    /// when it is half-written or unreadable).
    func allRawCrashes() throws -> [(id: String, crash: [String: Any]?)] {
        try keys(under: "v1/raw_crash/").map { key in
            let id = String(key.split(separator: "/").last ?? "")
            return (id, try completeCrash(id))
        }
    }
}

/// A fresh bucket in moto per scenario, so its listing holds only that scenario's crashes.
struct S3Truth: StorageTruth {
    let client: S3Client
    let bucket: String

    init(_ env: S3TestEnvironment) throws {
        bucket = "breakwater-fault-\(UUID().uuidString.lowercased().prefix(13))"
        client = try env.client(bucket: bucket, requestTimeout: 10)
        let created = try client.send(.PUT, key: "").wait()
        guard created.status == 200 else { throw Backends.StartupError("cannot create bucket \(bucket): \(created.status)") }
    }

    func object(_ key: String) throws -> [UInt8]? {
        let response = try client.send(.GET, key: key).wait()
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw Backends.StartupError("GET \(key): \(response.status)") }
        return Array(response.body.readableBytesView)
    }

    /// moto refuses the signature of a listing whose prefix holds a `/` (boto3's as well as
    /// ours), so this lists under the first path segment and filters.
    func keys(under prefix: String) throws -> [String] {
        try client.listKeys(prefix: String(prefix.prefix { $0 != "/" })).filter { $0.hasPrefix(prefix) }
    }
}

/// A `CRASHSTORAGE=fs` root. Hidden files (`.tmp-…`, a write cut short) are not keys.
struct FilesystemTruth: StorageTruth {
    let root: String

    func object(_ key: String) throws -> [UInt8]? {
        FileManager.default.contents(atPath: root + "/" + key).map { [UInt8]($0) }
    }

    func keys(under prefix: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root + "/" + prefix) else { return [] }
        var out: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root + "/" + prefix + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue && !name.hasPrefix(".") { out.append(prefix + relative) }
        }
        return out
    }

    /// Temporary files left by writes a kill cut short (invisible to readers: hidden names).
    func leftoverTemporaries() -> Int {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
        var n = 0
        while let relative = walker.nextObject() as? String {
            if (relative as NSString).lastPathComponent.hasPrefix(".tmp-") { n += 1 }
        }
        return n
    }
}

/// The queue a fault scenario publishes to, and what really reached it: a fresh queue on the test
/// broker (`scripts/services/rabbitmq.sh`) when one is configured, else an in-memory queue.
final class QueueTruth: @unchecked Sendable {
    let broker: RabbitMQTestBroker?
    let name: String
    let queue: CrashQueue
    private var received: [String] = []

    init() throws {
        if let broker = try? RabbitMQTestBroker() {
            self.broker = broker
            name = broker.uniqueQueue()
            var config = CollectorConfiguration()
            config.crashQueue = "rabbitmq"
            config.rabbitmqURL = broker.url
            config.rabbitmqQueue = name
            queue = try Backends.queue(config, telemetry: .silent())
        } else {
            broker = nil
            name = "in-memory"
            queue = CapturingCrashQueue()
        }
    }

    var label: String { broker == nil ? "queue in memory (no broker configured)" : "RabbitMQ queue" }

    /// Every message that reached the queue so far (read off the broker and kept here).
    func messages() throws -> [String] {
        guard let broker else { return (queue as! CapturingCrashQueue).published }
        received += try broker.drain(name).map(\.body)
        return received
    }

    /// Waits until every one of `ids` is on the queue (or `timeout` passes); the messages then.
    func waitFor(_ ids: [String], timeout: Double) async throws -> [String] {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let now = try messages()
            if Set(now).isSuperset(of: ids) || Date() > end { return now }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    func delete() { try? broker?.delete(name) }
}
