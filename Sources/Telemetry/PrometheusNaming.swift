import CoreMetrics
import Prometheus

/// The Prometheus backend: swift-prometheus's registry, with each catalog metric's help text as
/// its `# HELP` line, behind one naming rule that turns catalog names into Prometheus names:
///
///     breakwater_ + name with every "." replaced by "_", then by kind:
///     counter + "_total", timer + "_seconds" (a histogram in seconds), gauge and histogram as is.
///
/// `incoming_crash` → `breakwater_incoming_crash_total`, `store.time` → `breakwater_store_time_seconds`,
/// `spool.size` → `breakwater_spool_size`. Tags become labels unchanged. The prefix is fixed (not
/// `STATSD_PREFIX`) so the shipped dashboards and alerts match every deployment.
public struct PrometheusNaming: MetricsFactory {
    public static let prefix = "breakwater_"

    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Stage timings run from well under a millisecond (decode) to seconds (store retries).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        // Crash sizes: a few KiB (annotations only) to the 25 MiB request limit.
        factory.valueHistogramBuckets[Self.name(MetricCatalog.crashSize, kind: .histogram)] =
            [1, 4, 16, 64, 256, 1024, 4096, 16384].map { $0 * 1024 }
        self.factory = factory
        declareUnlabeled()
    }

    /// The Prometheus name of a catalog metric (the rule above).
    public static func name(_ catalogName: String, kind: MetricCatalog.Kind) -> String {
        let base = prefix + String(catalogName.map { $0 == "." ? "_" : $0 })
        switch kind {
        case .counter: return base + "_total"
        case .timer: return base + "_seconds"
        case .gauge, .histogram: return base
        }
    }

    /// The Prometheus text exposition of everything recorded so far.
    public func exposition() -> String { registry.emitToString() }

    /// The catalog's help text by catalog name (empty for a metric some library made).
    private static let help = Dictionary(MetricCatalog.all.map { ($0.name, $0.help) }) { first, _ in first }

    private static func descriptor(_ label: String, kind: MetricCatalog.Kind) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name(label, kind: kind), unitName: "", helpText: help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label, kind: .counter), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: Self.descriptor(label, kind: .gauge), labels: dimensions) }
        let descriptor = Self.descriptor(label, kind: .histogram)
        return registry.makeValueHistogram(descriptor: descriptor, labels: dimensions,
                                           buckets: factory.valueHistogramBuckets[descriptor.name] ?? factory.defaultValueHistogramBuckets)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        registry.makeDurationHistogram(descriptor: Self.descriptor(label, kind: .timer), labels: dimensions,
                                       buckets: factory.defaultDurationHistogramBuckets)
    }

    public func destroyCounter(_ handler: CounterHandler) { factory.destroyCounter(handler) }
    public func destroyRecorder(_ handler: RecorderHandler) { factory.destroyRecorder(handler) }
    public func destroyTimer(_ handler: TimerHandler) { factory.destroyTimer(handler) }

    /// Registers every catalog metric without tags at zero, so it is exposed (and `rate()` works)
    /// before its first event. Tagged metrics appear with their first tag values.
    private func declareUnlabeled() {
        for entry in MetricCatalog.all where entry.tags.isEmpty {
            switch entry.kind {
            case .counter: _ = makeCounter(label: entry.name, dimensions: [])
            case .gauge: _ = makeRecorder(label: entry.name, dimensions: [], aggregate: false)
            case .histogram: _ = makeRecorder(label: entry.name, dimensions: [], aggregate: true)
            case .timer: _ = makeTimer(label: entry.name, dimensions: [])
            }
        }
    }
}
