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
    public let sampler: Sampler
    /// Works the outbox; nil without `SPOOL_DIR`.
    public let mover: OutboxMover?
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
        let outbox = try Backends.outbox(config, telemetry: telemetry)
        // With an outbox, a storage outage sends crashes straight there for a while.
        let saver = CrashSaver(storage: storage, telemetry: telemetry, budget: config.saveBudget, outageHold: outbox == nil ? 0 : 5)
        let publisher = QueuePublisher(queue: queue, telemetry: telemetry, budget: config.publishBudget, skipsWhileDown: outbox != nil)
        pipeline = CrashPipeline(throttler: throttler, saver: saver, publisher: publisher, outbox: outbox, telemetry: telemetry)
        mover = outbox.map { OutboxMover(outbox: $0, saver: saver, publisher: publisher, telemetry: telemetry) }
        let checks = Self.healthChecks(pipeline)
        router = Self.routes(config: config, pipeline: pipeline, checks: checks, telemetry: telemetry)
        let inflight = InflightBytes(limit: config.maxInflightBytes)
        let pool = WorkerPool(workers: config.workers, queueCapacity: config.workerQueue, telemetry: telemetry)
        self.pool = pool
        // The pool's depth too: its per-request updates race each other, and the last one written
        // may be stale until the next request.
        sampler = Sampler(checks: checks, telemetry: telemetry, inflight: inflight, gauges: {
            pool.reportDepth()
            outbox?.reportGauges()
        })
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(System.coreCount, 4)))
        server = HTTPServer(group: group, context: .init(
            router: router, pool: pool, inflight: inflight, telemetry: telemetry,
            maxRequestBytes: config.maxRequestBytes, maxHeaderBytes: config.maxHeaderBytes,
            requestTimeout: .milliseconds(Int64(config.requestTimeout * 1000)), draining: NIOLockedValueBox(false), active: active),
            readTimeout: .milliseconds(Int64(config.readTimeout * 1000)))
    }

    /// What `/__heartbeat__` checks and the sampler reports as the `heartbeat` gauge.
    public static func healthChecks(_ pipeline: CrashPipeline) -> [(name: String, check: HeartbeatResource.Check)] {
        var checks: [(name: String, check: HeartbeatResource.Check)] = [
            ("storage", pipeline.saver.storage.check), ("queue", pipeline.publisher.queue.check),
        ]
        if let outbox = pipeline.outbox { checks.append(("spool", outbox.check)) }
        return checks
    }

    static func routes(config: CollectorConfiguration, pipeline: CrashPipeline,
                       checks: [(name: String, check: HeartbeatResource.Check)], telemetry: Telemetry) -> Router {
        let intake = CrashIntake(pipeline: pipeline, telemetry: telemetry)
        let limits = DecodeLimits(config)
        let breakpad = BreakpadResource(intake: intake, decoder: BreakpadDecoder(limits: limits), submitterToken: config.submitterToken)
        let generic = BreakpadResource(intake: intake, decoder: .generic(limits: limits), submitterToken: config.submitterToken,
                                       endpoint: "generic")
        let sentry = SentryEndpoint(intake: intake, limits: limits, projectKeys: config.sentryProjectKeys, products: config.sentryProducts)
        let store = SentryStoreResource(sentry: sentry), envelope = SentryEnvelopeResource(sentry: sentry)
        let minidump = SentryMinidumpResource(sentry: sentry)
        let api = config.sentryPrefix.hasSuffix("/") ? String(config.sentryPrefix.dropLast()) : config.sentryPrefix
        let heartbeat = HeartbeatResource(checks: checks)
        let version = VersionResource(path: config.versionFile)
        var routes = [
            Router.route("POST", config.breakpadPath, endpoint: "breakpad", breakpad.handle),
            Router.route("POST", config.genericPath, endpoint: "generic", generic.handle),
            // Sentry clients post to `<prefix>/<project id>/<endpoint>/`.
            Router.route("POST", api + "/*/store/", endpoint: "sentry_store", overload: SentryEndpoint.rateLimited,
                         tooLarge: SentryEndpoint.tooLarge, store.handle),
            Router.route("POST", api + "/*/envelope/", endpoint: "sentry_envelope", overload: SentryEndpoint.rateLimited,
                         tooLarge: SentryEndpoint.tooLarge, envelope.handle),
            Router.route("POST", api + "/*/minidump/", endpoint: "sentry_minidump", overload: SentryEndpoint.unavailable,
                         tooLarge: SentryEndpoint.tooLarge, minidump.handle),
            Router.route("GET", "/__lbheartbeat__", inline: true) { _ in .text(200, "") },
            Router.route("GET", "/__heartbeat__", deferred: heartbeat.probe),
            Router.route("GET", "/__version__", inline: true, version.handle),
        ]
        if let prometheus = telemetry.prometheus {
            // Inline: rendering the registry is cheap, and scrapes must succeed when workers are busy.
            routes.append(Router.route("GET", "/metrics", inline: true) { _ in
                CollectorResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: prometheus.exposition())
            })
        }
        return Router(routes: routes)
    }

    /// Starts serving; returns the bound port.
    public func start() async throws -> Int {
        // Whatever a previous process left in the outbox is picked up now.
        try mover?.start()
        let port = try await server.start(host: config.host, port: config.port)
        sampler.start()
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
        // The mover finishes the record in hand within the deadline; the rest waits for the next start.
        if mover?.stop(until: deadline) == false {
            logger.warning("outbox mover still on a record at the deadline: the next start repeats its step")
        }
        // Let the event loops write the last answers before they stop.
        try? await Task.sleep(nanoseconds: 100_000_000)
        try? await group.shutdownGracefully()
        sampler.stop()
        logger.info("stopped", metadata: ["drained": .stringConvertible(drained)])
        telemetry.flush()
    }
}
