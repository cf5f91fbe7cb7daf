import Testing
@testable import Telemetry

/// Each series is aggregated between flushes: what reaches the statsd socket is one line per
/// counter and gauge, and multi-value lines for timers and histograms.
@Suite struct StatsdAggregationTests {
    private func telemetry(_ receiver: UDPReceiver) -> Telemetry {
        Telemetry(sink: CapturingLogSink(), statsd: StatsdSender(host: "127.0.0.1", port: receiver.port, flushInterval: 60))
    }

    @Test func countersAreSummedAndGaugesKeepTheLastValue() {
        let receiver = UDPReceiver()
        let t = telemetry(receiver)
        for _ in 0..<1000 { t.count(MetricCatalog.incomingCrash, ("endpoint", "breakpad")) }
        t.count(MetricCatalog.savedBytes, by: 7)
        t.count(MetricCatalog.savedBytes, by: 5)
        for depth in [3.0, 9, 4] { t.gauge(MetricCatalog.workerQueueDepth, depth) }
        t.flush()
        #expect(receiver.lines() == [
            "breakwater.incoming_crash:1000|c|#endpoint:breakpad",
            "breakwater.save_crash.bytes:12|c",
            "breakwater.worker_queue.depth:4|g",
        ])
        t.flush()
        #expect(receiver.lines().isEmpty, "nothing new, nothing sent: a counter at zero is not repeated")
    }

    @Test func timersAndHistogramsSendEveryValueInMultiValueLines() {
        let receiver = UDPReceiver()
        let t = telemetry(receiver)
        t.time(MetricCatalog.storeTime, nanoseconds: 1_500_000)
        t.time(MetricCatalog.storeTime, nanoseconds: 2_000_000)
        t.histogram(MetricCatalog.crashSize, 4096, ("payload", "compressed"))
        t.histogram(MetricCatalog.crashSize, 10, ("payload", "compressed"))
        t.flush()
        #expect(receiver.lines() == [
            "breakwater.store.time:1.5:2|ms",
            "breakwater.crash_size:4096:10|h|#payload:compressed",
        ])
    }

    /// A busy series never holds more than `maxPending` values, and no line is longer than a datagram.
    @Test func aFullSeriesIsSentAtOnceInDatagramSizedLines() {
        let receiver = UDPReceiver()
        let t = telemetry(receiver)
        let count = StatsdSeries.maxPending * 3 + 10
        for i in 0..<count { t.time(MetricCatalog.decodeTime, nanoseconds: UInt64(i) * 1_000_000 + 123_456) }
        let before = receiver.lines()
        #expect(!before.isEmpty, "sent when full, before any flush")
        t.flush()
        let lines = before + receiver.lines()
        #expect(lines.allSatisfy { $0.hasPrefix("breakwater.decode.time:") && $0.hasSuffix("|ms") })
        #expect(lines.allSatisfy { $0.utf8.count <= StatsdSender.maxDatagram })
        let values = lines.flatMap { $0.dropFirst("breakwater.decode.time:".count).dropLast(3).split(separator: ":") }
        #expect(values.count == count, "every value once")
        #expect(values.first == "0.123456" && values.last == "\(count - 1).123456", "in order")
    }

    /// swift-metrics handlers made twice for one series (a library's and ours) aggregate together.
    @Test func oneSeriesPerNameAndTags() {
        let receiver = UDPReceiver()
        let sender = StatsdSender(host: "127.0.0.1", port: receiver.port, flushInterval: 60)
        let factory = StatsdMetricsFactory(sender: sender, prefix: "breakwater")
        factory.makeCounter(label: "x", dimensions: [("a", "1")]).increment(by: 2)
        factory.makeCounter(label: "x", dimensions: [("a", "1")]).increment(by: 3)
        factory.makeCounter(label: "x", dimensions: [("a", "2")]).increment(by: 1)
        sender.flush()
        #expect(receiver.lines() == ["breakwater.x:5|c|#a:1", "breakwater.x:1|c|#a:2"])
    }

    /// Handlers are cached per thread as well as shared: two `Telemetry`s used in turns on the same
    /// threads never send to each other's socket, and counts from many threads all arrive.
    @Test func threadCachesKeepTelemetriesApartAndLoseNoCount() async {
        let (r1, r2) = (UDPReceiver(), UDPReceiver())
        let (t1, t2) = (telemetry(r1), telemetry(r2))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for i in 0..<500 {
                        t1.count(MetricCatalog.incomingCrash, ("endpoint", "breakpad"))
                        if i % 2 == 0 { t2.count(MetricCatalog.incomingCrash, ("endpoint", "breakpad")) }
                        t2.count(MetricCatalog.incomingCrash, ("endpoint", "no such endpoint"))
                    }
                }
            }
        }
        t1.flush()
        t2.flush()
        #expect(r1.lines() == ["breakwater.incoming_crash:4000|c|#endpoint:breakpad"])
        #expect(r2.lines().sorted() == ["breakwater.incoming_crash:2000|c|#endpoint:breakpad",
                                        "breakwater.incoming_crash:4000|c|#endpoint:other"])
    }
}
