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
    private let stageLogger: Logger
    private let handlers = HandlerCache()
    private let troublesReported = Mutex((0, 0, 0))

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

    public func count(_ name: String, _ tag: (String, String)? = nil, by amount: Int = 1) {
        if case .counter(let counter) = handlers.handler(name, .counter, tag, make: {
            .counter(metricsFactory.makeCounter(label: name, dimensions: $0))
        }) { counter.increment(by: Int64(amount)) }
    }

    public func gauge(_ name: String, _ value: Double, _ tag: (String, String)? = nil) {
        if case .recorder(let recorder) = handlers.handler(name, .gauge, tag, make: {
            .recorder(metricsFactory.makeRecorder(label: name, dimensions: $0, aggregate: false))
        }) { recorder.record(value) }
    }

    public func histogram(_ name: String, _ value: Double, _ tag: (String, String)? = nil) {
        if case .recorder(let recorder) = handlers.handler(name, .histogram, tag, make: {
            .recorder(metricsFactory.makeRecorder(label: name, dimensions: $0, aggregate: true))
        }) { recorder.record(value) }
    }

    public func time(_ name: String, nanoseconds: UInt64, _ tag: (String, String)? = nil) {
        if case .timer(let timer) = handlers.handler(name, .timer, tag, make: {
            .timer(metricsFactory.makeTimer(label: name, dimensions: $0))
        }) { timer.recordNanoseconds(Int64(nanoseconds)) }
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
    /// `extra` is only built when the line is written: at the default level a successful stage
    /// costs nothing.
    public func stage(_ stage: String, crashID: String?, nanoseconds: UInt64, failure: String? = nil,
                      _ extra: @autoclosure () -> Logger.Metadata = [:]) {
        let level: Logger.Level = failure == nil ? .debug : .warning
        guard level >= logLevel else { return }
        var fields = extra()
        fields["stage"] = .string(stage)
        if let crashID { fields["crash_id"] = .string(crashID) }
        fields["duration_ms"] = .stringConvertible((Double(nanoseconds) / 1000).rounded() / 1000)
        if let failure { fields["error"] = .string(failure) }
        stageLogger.log(level: level, "\(crashID ?? "-"): \(stage)\(failure == nil ? "" : " failed")", metadata: fields)
    }

    /// Writes the audit line of one crash.
    /// Formatted here and handed to the sink whole (no swift-log handler in between: it is the
    /// one line every crash writes).
    /// - Parameter fromEventLoop: the caller is an event loop, which must never wait for stdout
    ///   (`LogSink.writeWithoutWaiting`).
    public func audit(_ record: AuditRecord, fromEventLoop: Bool = false) {
        // The drop-rate alert counts crashes, where `response` counts every answer.
        count(MetricCatalog.crashOutcome, ("outcome", record.outcome.rawValue))
        let line = MozlogHandler.line(type: "crash", level: .info, fields: record.fields)
        if fromEventLoop { sink.writeWithoutWaiting(line: line) } else { sink.write(line: line) }
    }

    /// Counts what telemetry could not do smoothly since the last call: statsd datagrams dropped
    /// (`statsd.dropped`), log lines whose caller found the log buffer full and waited
    /// (`log.blocked`), and event-loop lines dropped with both buffers full (`log.dropped`). The
    /// sender and the sink keep totals only, and cannot report through themselves. Called
    /// periodically.
    public func reportOwnTroubles() {
        let buffered = sink as? BufferedLogSink
        let totals = (statsd?.dropped ?? 0, buffered?.blockedWrites ?? 0, buffered?.droppedLines ?? 0)
        let new = troublesReported.withLock { reported in
            defer { reported = totals }
            return (totals.0 - reported.0, totals.1 - reported.1, totals.2 - reported.2)
        }
        if new.0 > 0 { count(MetricCatalog.statsdDropped, by: new.0) }
        if new.1 > 0 { count(MetricCatalog.logBlocked, by: new.1) }
        if new.2 > 0 { count(MetricCatalog.logDropped, by: new.2) }
    }

    /// Sends batched statsd lines and writes queued log lines now (shutdown).
    public func flush() {
        statsd?.flush()
        sink.flush()
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
