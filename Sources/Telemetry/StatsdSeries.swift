import CoreMetrics
import Synchronization

/// One statsd series (a name and tag set), aggregated in the process between flushes the way
/// DogStatsD's client aggregation does, so recording costs an atomic add or an append, and the
/// line is formatted once per flush on the sender's timer, not once per event:
///
/// * counter: the sum since the last flush, one line (`name:37|c|#tags`);
/// * gauge: the last value set, one line;
/// * histogram and timer: every value, in lines of many values each (`name:1.2:0.8:3|ms|#tags`,
///   DogStatsD's extended aggregation; the Datadog agent and statsd_exporter ≥ 0.27 read them).
///
/// A histogram or timer never holds more than `maxPending` values: the caller that fills it
/// formats them into the sender's batch at once.
final class StatsdSeries: CounterHandler, RecorderHandler, TimerHandler, Sendable {
    enum Kind: String { case counter = "c", gauge = "g", histogram = "h", timer = "ms" }

    static let maxPending = 256

    private let head: String
    private let tail: String
    private let kind: Kind
    /// Where a full histogram or timer sends its lines: the sender's batch (weakly held; the
    /// sender keeps its series, not the other way round).
    private let overflow: @Sendable ([String]) -> Void
    private let sum = Atomic<Int64>(0)
    /// A gauge's last value (its bit pattern), and whether it was set since the last flush.
    private let last = Atomic<UInt64>(0)
    private let fresh = Atomic<Bool>(false)
    private let values = Mutex<[Double]>([])

    init(name: String, kind: Kind, dimensions: [(String, String)], overflow: @escaping @Sendable ([String]) -> Void) {
        self.overflow = overflow
        self.kind = kind
        head = StatsdMetricsFactory.neutralized(name) + ":"
        tail = "|" + kind.rawValue + (dimensions.isEmpty ? "" : "|#" + dimensions.map {
            StatsdMetricsFactory.neutralized($0.0) + ":" + StatsdMetricsFactory.neutralized($0.1)
        }.joined(separator: ","))
    }

    func increment(by amount: Int64) { sum.add(amount, ordering: .relaxed) }
    func reset() {}
    func record(_ value: Int64) { record(Double(value)) }
    func recordNanoseconds(_ duration: Int64) { record(Double(duration) / 1_000_000) }

    func record(_ value: Double) {
        if kind == .gauge {
            last.store(value.bitPattern, ordering: .relaxed)
            fresh.store(true, ordering: .releasing)
            return
        }
        let full: [Double]? = values.withLock { values in
            values.append(value)
            guard values.count >= Self.maxPending else { return nil }
            defer { values = [] }
            return values
        }
        if let full { overflow(lines(of: full)) }
    }

    /// The lines aggregated since the last call (none when nothing was recorded).
    func drain() -> [String] {
        switch kind {
        case .counter:
            let total = sum.exchange(0, ordering: .relaxed)
            return total == 0 ? [] : [head + String(total) + tail]
        case .gauge:
            guard fresh.exchange(false, ordering: .acquiring) else { return [] }
            return [head + Self.format(Double(bitPattern: last.load(ordering: .relaxed))) + tail]
        case .histogram, .timer:
            break
        }
        return lines(of: values.withLock { values in
            defer { values = [] }
            return values
        })
    }

    /// Values joined by `:` into as few lines as fit in a datagram each.
    private func lines(of values: [Double]) -> [String] {
        let room = StatsdSender.maxDatagram - head.utf8.count - tail.utf8.count
        var lines: [String] = []
        var joined = ""
        for value in values.map(Self.format) {
            if !joined.isEmpty, joined.utf8.count + 1 + value.utf8.count > room {
                lines.append(head + joined + tail)
                joined = ""
            }
            joined += joined.isEmpty ? value : ":" + value
        }
        if !joined.isEmpty { lines.append(head + joined + tail) }
        return lines
    }

    static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
