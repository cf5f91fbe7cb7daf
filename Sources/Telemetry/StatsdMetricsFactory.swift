import CoreMetrics

/// The swift-metrics backend that writes statsd lines (DogStatsD tags) to a `StatsdSender`.
/// Counters `|c`, gauges `|g`, aggregating recorders `|h`, timers `|ms`.
public struct StatsdMetricsFactory: MetricsFactory {
    private let sender: StatsdSender
    private let prefix: String

    public init(sender: StatsdSender, prefix: String) {
        self.sender = sender
        self.prefix = prefix.isEmpty ? "" : prefix + "."
    }

    final class Handler: CounterHandler, RecorderHandler, TimerHandler, @unchecked Sendable {
        private let head: String
        private let tail: String
        private let sender: StatsdSender

        init(sender: StatsdSender, name: String, type: String, dimensions: [(String, String)]) {
            self.sender = sender
            head = name + ":"
            tail = "|" + type + (dimensions.isEmpty ? "" : "|#" + dimensions.map { "\($0.0):\($0.1)" }.joined(separator: ","))
        }

        func increment(by amount: Int64) { sender.send(head + String(amount) + tail) }
        func reset() {}
        func record(_ value: Int64) { sender.send(head + String(value) + tail) }
        func record(_ value: Double) { sender.send(head + Self.format(value) + tail) }
        func recordNanoseconds(_ duration: Int64) { sender.send(head + Self.format(Double(duration) / 1_000_000) + tail) }

        static func format(_ value: Double) -> String {
            value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        Handler(sender: sender, name: prefix + label, type: "c", dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        Handler(sender: sender, name: prefix + label, type: aggregate ? "h" : "g", dimensions: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        Handler(sender: sender, name: prefix + label, type: "ms", dimensions: dimensions)
    }

    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}
