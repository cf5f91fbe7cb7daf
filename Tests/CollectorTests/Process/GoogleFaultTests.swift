import Foundation
import Testing
import Telemetry
@testable import Collector

/// The fault suite's scenarios (docs/faults.md) for the Google backends: a steady crash stream
/// through an outage of the GCS emulator or the Pub/Sub emulator (a proxy in front of each is
/// switched off), then the truth read from the bucket with Google's client and from a
/// subscription. Same support, windows and table as `FaultSuiteTests`; 0 lost or the row fails.
@Suite(.serialized, .faultTable)
struct GoogleFaultTests {
    /// GCS unreachable mid-stream, with a spool: every crash is acknowledged (spooled while GCS is
    /// down), and every acknowledged crash ends up in the bucket, complete, and on the topic.
    @Test func gcsOutageWithSpool() async throws {
        let started = Date()
        let rig = try await GoogleRig.start(proxying: \.storagePort, recordRequestLines: false) { config, proxyPort in
            config.storageEmulatorHost = "http://127.0.0.1:\(proxyPort)"
            config.saveBudget = 1
        }
        defer { rig.removeSpool() }
        let (env, server, proxy) = (rig.env, rig.server, rig.proxy)
        // A lighter stream than the S3 rows': the emulator rewrites its whole object index on every
        // upload, so it stores a few crashes a second, and the spool must drain within the wait.
        let stream = CrashStream(port: server.port, clients: 2, pause: 0.2)
        try await stream.runThroughOutage(lead: FaultSuiteTests.lead, window: FaultSuiteTests.window, cut: proxy.stop, restore: proxy.start)
        let streamEnded = Date()
        let spooledAtEnd = server.collector.pipeline.outbox?.count ?? 0
        if let outbox = server.collector.pipeline.outbox { _ = await FaultSuiteTests.waitUntil(60) { outbox.count == 0 } }
        let spoolLeft = server.collector.pipeline.outbox?.count ?? 0
        let records = stream.records
        let queued = try await env.waitFor(records.acknowledged, on: rig.subscription, timeout: 30)
        let caughtUp = Date().timeIntervalSince(streamEnded)
        try await rig.stop()

        var row = try FaultSuiteTests.tally("GCS down \(Int(FaultSuiteTests.window)) s, spool", records, run: stream.runID,
                                            truth: try GCSTruth(env, bucket: rig.bucket), queued: queued)
        row.seconds = Date().timeIntervalSince(started)
        row.notes.append("GCS and Pub/Sub emulators, 2 clients")
        row.notes.append(String(format: "%d still spooled when the stream ended, all stored and published %.1f s later", spooledAtEnd, caughtUp))
        if spoolLeft > 0 { row.notes.append("\(spoolLeft) still spooled") }
        FaultTable.shared.record(row)

        FaultSuiteTests.expectEveryCrashAccountedFor(row, records)
        #expect(records.retryLater == 0, "the spool had room: nothing should be refused")
        #expect(spoolLeft == 0)
    }

    /// Pub/Sub unreachable mid-stream: crashes are still stored and acknowledged, their IDs wait
    /// in the outbox, and once Pub/Sub is back every acknowledged ID reaches the topic,
    /// the outbox drained in batched publish calls.
    @Test func pubSubOutage() async throws {
        let started = Date()
        let rig = try await GoogleRig.start(proxying: \.pubsubPort, recordRequestLines: true) { config, proxyPort in
            config.pubsubEmulatorHost = "127.0.0.1:\(proxyPort)"
            config.publishBudget = 1
        }
        defer { rig.removeSpool() }
        let (env, server, proxy) = (rig.env, rig.server, rig.proxy)
        let stream = CrashStream(port: server.port, clients: 4, pause: 0.05)
        var backlogPeak = 0
        try await stream.runThroughOutage(lead: FaultSuiteTests.lead, window: FaultSuiteTests.window, cut: proxy.stop, restore: {
            backlogPeak = server.collector.pipeline.outbox?.summary.toPublish ?? 0
            try proxy.start()
        })
        let records = stream.records
        let queued = try await env.waitFor(records.acknowledged, on: rig.subscription, timeout: 60)
        let backlogLeft = server.collector.pipeline.outbox?.count ?? 0
        try await rig.stop()

        let calls = proxy.requestLines.filter { $0.contains(":publish ") }.count
        var row = try FaultSuiteTests.tally("Pub/Sub down \(Int(FaultSuiteTests.window)) s", records, run: stream.runID,
                                            truth: try GCSTruth(env, bucket: rig.bucket), queued: queued)
        row.seconds = Date().timeIntervalSince(started)
        row.notes.append("GCS and Pub/Sub emulators")
        row.notes.append("\(backlogPeak) IDs in the outbox when Pub/Sub came back; \(calls) publish calls for \(queued.count) messages")
        if backlogLeft > 0 { row.notes.append("\(backlogLeft) left in the outbox") }
        FaultTable.shared.record(row)

        FaultSuiteTests.expectEveryCrashAccountedFor(row, records)
        #expect(backlogPeak > 0, "Pub/Sub was down for \(FaultSuiteTests.window) s: IDs must have waited")
        #expect(calls < queued.count, "the outbox must drain in batches")
    }
}

/// One Google row's setup: a fresh bucket, topic and subscription on the emulators, a proxy in
/// front of one emulator (the outage switch), a spool folder, and a collector whose backends reach
/// that emulator through the proxy. `tune` sets the proxy's address and the row's budgets; it is
/// applied to the backends' configuration and to the server's.
private struct GoogleRig {
    let env: GoogleTestEnvironment
    let bucket: String
    let subscription: String
    let proxy: TCPProxy
    let spoolDir: String
    let server: TestServer

    static func start(proxying port: KeyPath<GoogleTestEnvironment, Int>, recordRequestLines: Bool,
                      tune: (inout CollectorConfiguration, Int) -> Void) async throws -> GoogleRig {
        let env = try GoogleTestEnvironment.load()
        let bucket = try env.makeBucket()
        let (topic, subscription) = try env.makeTopic()
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env[keyPath: port], recordRequestLines: recordRequestLines)
        let spoolDir = try Tools.temporaryFolder("fault-spool")
        var config = env.configuration(bucket: bucket, topic: topic)
        tune(&config, proxy.port)
        let server = try await TestServer.start(configure: { $0.workers = 4; $0.spoolDir = spoolDir; tune(&$0, proxy.port) },
                                                storage: try Backends.storage(config, telemetry: .silent()),
                                                queue: try Backends.queue(config, telemetry: .silent()))
        return GoogleRig(env: env, bucket: bucket, subscription: subscription, proxy: proxy, spoolDir: spoolDir, server: server)
    }

    func stop() async throws {
        try await server.stop()
        try? proxy.stop()
    }

    func removeSpool() { try? FileManager.default.removeItem(atPath: spoolDir) }
}
