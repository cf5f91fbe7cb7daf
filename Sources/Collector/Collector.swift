import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// The whole collector wired from configuration: backends, pipeline, endpoints, worker pool and
/// HTTP front. The executable and the tests build it the same way.
public final class Collector: Sendable {
    public let config: CollectorConfiguration
    public let telemetry: Telemetry
    public let pipeline: CrashPipeline
    public let router: Router
    public let pool: WorkerPool
    public let server: HTTPServer
    public let active = ActiveRequests()
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger

    /// Backends given explicitly replace the configured ones (tests capture storage this way).
    public init(config: CollectorConfiguration, telemetry: Telemetry, throttler: Throttler? = nil,
                storage: CrashStorage? = nil, queue: CrashQueue? = nil) throws {
        self.config = config
        self.telemetry = telemetry
        logger = telemetry.logger("breakwater.collector")
        let throttler = try throttler ?? Backends.throttler(config, telemetry: telemetry)
        let storage = try storage ?? Backends.storage(config, telemetry: telemetry)
        let queue = try queue ?? Backends.queue(config, telemetry: telemetry)
        pipeline = CrashPipeline(throttler: throttler,
                                 saver: CrashSaver(storage: storage, telemetry: telemetry),
                                 publisher: QueuePublisher(queue: queue, telemetry: telemetry,
                                                           backlog: try Backends.publishBacklog(config, telemetry: telemetry),
                                                           budget: config.publishBudget),
                                 telemetry: telemetry)
        router = Self.routes(config: config, pipeline: pipeline, telemetry: telemetry)
        pool = WorkerPool(workers: config.workers, queueCapacity: config.workerQueue, telemetry: telemetry)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(System.coreCount, 4)))
        server = HTTPServer(group: group, context: .init(
            router: router, pool: pool, inflight: InflightBytes(limit: config.maxInflightBytes), telemetry: telemetry,
            maxRequestBytes: config.maxRequestBytes, maxHeaderBytes: config.maxHeaderBytes,
            requestTimeout: .milliseconds(Int64(config.requestTimeout * 1000)), draining: NIOLockedValueBox(false), active: active),
            readTimeout: .milliseconds(Int64(config.readTimeout * 1000)))
    }

    static func routes(config: CollectorConfiguration, pipeline: CrashPipeline, telemetry: Telemetry) -> Router {
        let intake = CrashIntake(pipeline: pipeline, telemetry: telemetry)
        let limits = DecodeLimits(config)
        let breakpad = BreakpadResource(intake: intake, decoder: BreakpadDecoder(limits: limits), submitterToken: config.submitterToken)
        let heartbeat = HeartbeatResource(checks: [
            ("storage", pipeline.saver.storage.check),
            ("queue", pipeline.publisher.queue.check),
            ("publish_backlog", pipeline.publisher.check),
        ])
        let version = VersionResource(path: config.versionFile)
        return Router(routes: [
            Router.route("POST", config.breakpadPath, endpoint: "breakpad", breakpad.handle),
            Router.route("GET", "/__lbheartbeat__", inline: true) { _ in .text(200, "") },
            Router.route("GET", "/__heartbeat__", heartbeat.handle),
            Router.route("GET", "/__version__", inline: true, version.handle),
        ])
    }

    /// Starts serving; returns the bound port.
    public func start() async throws -> Int {
        let port = try await server.start(host: config.host, port: config.port)
        logger.info("listening", metadata: ["port": .stringConvertible(port), "workers": .stringConvertible(config.workers),
                                            "paths": .array(router.boundPaths.map { .string($0) })])
        return port
    }

    /// Graceful stop: no new connections, in-flight requests finish and are answered, statsd flushed.
    public func shutdown(deadline: Date? = nil) async {
        let deadline = deadline ?? Date().addingTimeInterval(config.shutdownDeadline)
        logger.info("shutting down", metadata: ["in_flight": .stringConvertible(pool.inFlight)])
        await server.stopAccepting()
        let answered = active.wait(until: deadline)
        let drained = pool.drain(until: deadline) && answered
        // Crash IDs the broker has not taken yet get the rest of the deadline.
        pipeline.publisher.flush(until: deadline)
        // Let the event loops write the last answers before they stop.
        try? await Task.sleep(nanoseconds: 100_000_000)
        try? await group.shutdownGracefully()
        logger.info("stopped", metadata: ["drained": .stringConvertible(drained)])
        telemetry.flush()
    }
}
