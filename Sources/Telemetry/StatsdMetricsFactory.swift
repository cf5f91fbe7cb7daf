import CoreMetrics

/// The swift-metrics backend that writes statsd lines (DogStatsD tags) to a `StatsdSender`.
/// Counters `|c`, gauges `|g`, aggregating recorders `|h`, timers `|ms`, each aggregated in the
/// process between flushes (`StatsdSeries`).
public struct StatsdMetricsFactory: MetricsFactory {
    private let sender: StatsdSender
    private let prefix: String

    public init(sender: StatsdSender, prefix: String) {
        self.sender = sender
        self.prefix = prefix.isEmpty ? "" : prefix + "."
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
        sender.series(name: prefix + label, kind: .counter, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        sender.series(name: prefix + label, kind: aggregate ? .histogram : .gauge, dimensions: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        sender.series(name: prefix + label, kind: .timer, dimensions: dimensions)
    }

    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}
