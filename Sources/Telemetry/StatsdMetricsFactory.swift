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

    final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        private let head: String
        private let tail: String
        private let sender: StatsdSender

        init(sender: StatsdSender, name: String, type: String, dimensions: [(String, String)]) {
            self.sender = sender
            head = StatsdMetricsFactory.neutralized(name) + ":"
            tail = "|" + type + (dimensions.isEmpty ? "" : "|#" + dimensions.map {
                StatsdMetricsFactory.neutralized($0.0) + ":" + StatsdMetricsFactory.neutralized($0.1)
            }.joined(separator: ","))
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

    /// `text` with every character the statsd line format reserves (`:`, `|`, `,`, `#`, `@`) and
    /// every control character (newlines end a line) replaced by `_`, so no name or tag value,
    /// whatever its origin, can end a field or a line, or start a new one.
    public static func neutralized(_ text: String) -> String {
        guard text.utf8.contains(where: { reserved($0) }) else { return text }
        return String(decoding: text.utf8.map { reserved($0) ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }

    private static func reserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: ":"), UInt8(ascii: "|"), UInt8(ascii: ","), UInt8(ascii: "#"), UInt8(ascii: "@"), 0x7F: return true
        default: return byte < 0x20
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
