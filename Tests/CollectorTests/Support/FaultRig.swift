import Foundation
import Testing
@testable import Collector
#if canImport(Glibc)
import Glibc
#endif

/// What the fault scenarios that run collector processes start from, made once and cleaned up at
/// the end: a queue and its truth (RabbitMQ when a broker is configured, else the capturing
/// queue), an outbox folder, a folder for the processes' logs (kept, for reading after a
/// failure), and for the S3 scenarios the moto bucket's truth behind a TCP proxy the scenario
/// cuts and restores.
final class FaultRig {
    struct S3 {
        let env: S3TestEnvironment
        let truth: S3Truth
        let proxy: TCPProxy
    }

    let queue: QueueTruth
    let spoolDir: String
    let logs: String
    private(set) var s3: S3?

    init(s3 withS3: Bool = false) throws {
        queue = try QueueTruth()
        spoolDir = try Tools.temporaryFolder("fault-spool")
        logs = try Tools.temporaryFolder("fault-logs")
        if withS3 {
            let env = try S3TestEnvironment.load()
            s3 = S3(env: env, truth: try S3Truth(env),
                    proxy: try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.port, recordRequestLines: false))
        }
    }

    deinit {
        queue.delete()
        try? s3?.proxy.stop()
        try? FileManager.default.removeItem(atPath: spoolDir)
    }

    /// The broker, for scenarios that stop it.
    func broker() throws -> RabbitMQTestBroker {
        try #require(queue.broker, "\(RabbitMQTestBroker.NotConfigured())")
    }

    /// A collector process's environment: the outbox, 4 workers, S3 through the proxy when the rig
    /// has S3, RabbitMQ when there is a broker, then `extra`.
    func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ["SPOOL_DIR": spoolDir, "WORKERS": "4"]
        if let s3 {
            environment.merge(FaultSuiteTests.s3Environment(s3.env, bucket: s3.truth.bucket,
                                                            endpoint: "http://127.0.0.1:\(s3.proxy.port)")) { $1 }
        }
        if let broker = queue.broker {
            environment.merge(["CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": broker.url, "RABBITMQ_QUEUE": queue.name]) { $1 }
        }
        return environment.merging(extra) { $1 }
    }

    /// Ends a scenario whose crashes go to the rig's queue: stops the stream, waits until every
    /// acknowledged crash ID is on the queue and the outbox is empty, then stops the process.
    /// Returns the stream's records, the queued IDs and how many records the outbox still holds.
    func finish(_ stream: CrashStream, _ process: CollectorProcess) async throws
        -> (records: [CrashStream.Record], queued: [String], left: Int) {
        await stream.stop()
        let records = stream.records
        let queued = try await queue.waitFor(records.acknowledged, timeout: 90)
        _ = await FaultSuiteTests.waitUntil(30) { Outbox.list(directory: spoolDir).isEmpty }
        let left = Outbox.list(directory: spoolDir).count
        process.signal(SIGTERM)
        _ = await process.waitForExit(timeout: 30)
        return (records, queued, left)
    }
}
