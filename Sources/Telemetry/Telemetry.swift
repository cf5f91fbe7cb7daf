import CoreMetrics
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The only place that formats log lines and statsd packets. Every stage reports through one
/// `Telemetry`: counters, gauges, histograms, timers (swift-metrics handlers, cached per name
/// and tags) and mozlog lines, including the audit line.
public final class Telemetry: Sendable {
    public let metricsFactory: MetricsFactory
    public let statsd: StatsdSender?
    /// The Prometheus backend, when `/metrics` is served.
    public let prometheus: PrometheusNaming?
    public let logLevel: Logger.Level
    private let sink: LogSink
    private let auditLogger: Logger
    private let stageLogger: Logger
    private struct Handlers {
        var counters: [String: CounterHandler] = [:]
        var recorders: [String: RecorderHandler] = [:]
        var timers: [String: TimerHandler] = [:]
    }
    private let handlers = Mutex(Handlers())
    private let statsdDropsReported = Mutex(0)

    /// - Parameters:
    ///   - statsd: where statsd lines go; nil sends none.
    ///   - prometheus: the Prometheus backend to feed too (exposed at `/metrics`); nil feeds none.
    ///   - extraFactories: more metrics backends fed by the same calls.
    public init(sink: LogSink = StdoutLogSink(), logLevel: Logger.Level = .info, statsd: StatsdSender?,
                prefix: String = "breakwater", prometheus: PrometheusNaming? = nil,
                extraFactories: [MetricsFactory] = []) {
        self.sink = sink
        self.logLevel = logLevel
        self.statsd = statsd
        self.prometheus = prometheus
        var factories = extraFactories
        if let prometheus { factories.insert(prometheus, at: 0) }
        if let statsd { factories.insert(StatsdMetricsFactory(sender: statsd, prefix: prefix), at: 0) }
        metricsFactory = factories.count == 1 ? factories[0] : MultiplexMetricsHandler(factories: factories)
        auditLogger = Logger(label: "breakwater.audit") { MozlogHandler(label: $0, sink: sink, level: .info) }
        stageLogger = Logger(label: "breakwater.stage") { MozlogHandler(label: $0, sink: sink, level: logLevel) }
    }

    /// Telemetry that says nothing (tools and tests that do not look).
    public static func silent() -> Telemetry {
        Telemetry(sink: CapturingLogSink(), logLevel: .critical, statsd: nil)
    }

    /// A logger writing mozlog lines through this telemetry's sink.
    public func logger(_ label: String) -> Logger {
        let sink = self.sink, level = logLevel
        return Logger(label: label) { MozlogHandler(label: $0, sink: sink, level: level) }
    }

    /// Makes the global swift-log and swift-metrics systems use these backends, so libraries
    /// logging through those APIs land in the same stream. Once per process (the executable).
    public func bootstrapGlobally() {
        let sink = self.sink, level = logLevel
        LoggingSystem.bootstrap { MozlogHandler(label: $0, sink: sink, level: level) }
        MetricsSystem.bootstrap(metricsFactory)
    }

    public func count(_ name: String, _ dimensions: [(String, String)] = [], by amount: Int = 1) {
        handler(\.counters, name, name, dimensions) { metricsFactory.makeCounter(label: $0, dimensions: $1) }
            .increment(by: Int64(amount))
    }

    public func gauge(_ name: String, _ value: Double, _ dimensions: [(String, String)] = []) {
        handler(\.recorders, name, name + "|g", dimensions) { metricsFactory.makeRecorder(label: name, dimensions: $1, aggregate: false) }
            .record(value)
    }

    public func histogram(_ name: String, _ value: Double, _ dimensions: [(String, String)] = []) {
        handler(\.recorders, name, name + "|h", dimensions) { metricsFactory.makeRecorder(label: name, dimensions: $1, aggregate: true) }
            .record(value)
    }

    public func time(_ name: String, nanoseconds: UInt64, _ dimensions: [(String, String)] = []) {
        handler(\.timers, name, name, dimensions) { metricsFactory.makeTimer(label: $0, dimensions: $1) }
            .recordNanoseconds(Int64(nanoseconds))
    }

    /// Runs `body`, recording its duration under the timer `name`.
    public func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = MonotonicClock.now()
        defer { time(name, nanoseconds: MonotonicClock.now() - start) }
        return try body()
    }

    /// One pipeline stage of one crash (decode, throttle, identify, store, publish): a structured
    /// line with the crash ID once it exists, the stage and its duration; `debug` when the stage
    /// succeeded, so `LOG_LEVEL=debug` traces a crash stage by stage, `warning` when it did not.
    public func stage(_ stage: String, crashID: String?, nanoseconds: UInt64, failure: String? = nil,
                      _ extra: Logger.Metadata = [:]) {
        let level: Logger.Level = failure == nil ? .debug : .warning
        guard level >= logLevel else { return }
        var fields = extra
        fields["stage"] = .string(stage)
        if let crashID { fields["crash_id"] = .string(crashID) }
        fields["duration_ms"] = .stringConvertible((Double(nanoseconds) / 1000).rounded() / 1000)
        if let failure { fields["error"] = .string(failure) }
        stageLogger.log(level: level, "\(crashID ?? "-"): \(stage)\(failure == nil ? "" : " failed")", metadata: fields)
    }

    /// Writes the audit line of one crash.
    public func audit(_ record: AuditRecord) {
        auditLogger.info("crash", metadata: record.metadata)
    }

    /// Counts the statsd datagrams dropped since the last call as `statsd.dropped`: the sender only
    /// keeps a total, and cannot report through itself what it failed to send. Called periodically.
    public func reportStatsdDrops() {
        guard let statsd else { return }
        let total = statsd.dropped
        let new = statsdDropsReported.withLock { reported in
            defer { reported = total }
            return total - reported
        }
        if new > 0 { count(MetricCatalog.statsdDropped, by: new) }
    }

    /// Sends batched statsd lines now (shutdown).
    public func flush() { statsd?.flush() }

    /// The cached handler of a metric and tag set. Closed tag values are checked against the
    /// catalog first, so neither the cache nor any backend grows with what clients send.
    private func handler<H: Sendable>(_ cache: WritableKeyPath<Handlers, [String: H]>, _ name: String, _ key: String,
                            _ dimensions: [(String, String)], make: (String, [(String, String)]) -> H) -> H {
        let dimensions = dimensions.map { ($0.0, MetricCatalog.allowed(name, tag: $0.0, $0.1)) }
        var key = key
        for (k, v) in dimensions { key += "|" + k + "=" + v }
        return handlers.withLock { handlers in
            if let h = handlers[keyPath: cache][key] { return h }
            let h = make(name, dimensions)
            handlers[keyPath: cache][key] = h
            return h
        }
    }
}

/// Monotonic nanoseconds, for stage timings.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
