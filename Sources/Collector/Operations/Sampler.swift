import Dispatch
import Synchronization
import Telemetry

/// Samples what no request reports, on its own queue so backend checks never hold a worker or an
/// event loop: each heartbeat check as the `heartbeat` gauge (alerts need it even when nobody
/// probes `/__heartbeat__`), the outbox's and the worker queue's gauges (so a stuck record ages
/// visibly, and an idle pool shows an empty queue), the bytes held
/// against `MAX_INFLIGHT_BYTES` (wire and inflated) as `inflight.bytes`, and the statsd datagrams
/// dropped since the last sample.
public final class Sampler: Sendable {
    private let checks: [(name: String, check: HeartbeatResource.Check)]
    private let telemetry: Telemetry
    private let gauges: (@Sendable () -> Void)?
    private let interval: Double
    private let inflight: InflightBytes?
    private let timer = Mutex<DispatchSourceTimer?>(nil)

    public init(checks: [(name: String, check: HeartbeatResource.Check)], telemetry: Telemetry, inflight: InflightBytes? = nil,
                gauges: (@Sendable () -> Void)? = nil, interval: Double = 10) {
        self.checks = checks
        self.inflight = inflight
        self.gauges = gauges
        self.telemetry = telemetry
        self.interval = interval
    }

    /// Samples now, then every `interval` seconds until `stop`.
    public func start() {
        let (checks, telemetry, interval, inflight, gauges) = (self.checks, self.telemetry, self.interval, self.inflight, self.gauges)
        timer.withLock { timer in
            timer?.cancel()
            let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "breakwater.sampler"))
            source.schedule(deadline: .now(), repeating: interval)
            source.setEventHandler {
                if let inflight { telemetry.gauge(MetricCatalog.inflightBytes, Double(inflight.current)) }
                gauges?()
                for (name, check) in checks {
                    let healthy: Bool
                    if case .error = check() { healthy = false } else { healthy = true }
                    telemetry.gauge(MetricCatalog.heartbeat, healthy ? 1 : 0, ("check", name))
                }
                telemetry.reportOwnTroubles()
            }
            source.resume()
            timer = source
        }
    }

    public func stop() {
        timer.withLock { $0?.cancel(); $0 = nil }
    }
}
