import Benchmark
import Collector
import Foundation
import Logging
import NIOCore
import Telemetry

/// The per-crash hot pieces, one benchmark each, on the peer benchmark's payloads (the bodies
/// `bench/run` loads the server with). Figures are for reading and comparing, never pass/fail.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .mallocBytesCount, .throughput],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    let payloads = Payloads.load()

    // Multipart split: the 29 annotation parts and the dump, as slices of the body.
    for name in ["small", "typical"] {
        let body = payloads.body(name)
        Benchmark("multipart split \(name) (\(body.readableBytes / 1024) KiB)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try MultipartForm.parse(body, boundary: payloads.boundary, maxParts: 100))
            }
        }
    }

    // Gzip inflate of a whole `Content-Encoding: gzip` body, as the decoder does it.
    for name in ["small", "typical", "large"] {
        let gzipped = payloads.body(name + ".gz")
        Benchmark("gzip inflate \(name) (\(gzipped.readableBytes / 1024) KiB)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try Inflater.inflate(gzipped, format: .gzip, limit: 32 << 20))
            }
        }
    }

    // Raw-crash JSON of a decoded crash (the SHA-256 of its dump included, as stored).
    let decoder = BreakpadDecoder(limits: DecodeLimits(CollectorConfiguration()))
    let receivedAt = Date()
    for name in ["small", "typical"] {
        let request = CollectorRequest(method: "POST", uri: "/submit",
                                       headers: [("Content-Type", payloads.contentType)], body: payloads.body(name))
        let report = try! decoder.decode(request)
        let crashID = CrashID.make(result: .accept, date: receivedAt)
        Benchmark("raw-crash JSON \(name) (\(report.annotations.count) annotations)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(RawCrash.json(of: report, crashID: crashID, rule: "accept_everything", receivedAt: receivedAt))
            }
        }
    }

    // The audit line of an accepted crash, formatted by MozlogHandler into a sink that drops it.
    let quiet = Telemetry(sink: DiscardingSink(), logLevel: .info, statsd: nil)
    let record = AuditRecord(crashID: CrashID.make(result: .accept, date: receivedAt), endpoint: "/submit",
                             outcome: .accepted, rule: "accept_everything", payloadSize: 148_517,
                             dumps: ["upload_file_minidump"], durationMs: 2.718, status: 200, queued: true)
    Benchmark("audit line") { benchmark in
        for _ in benchmark.scaledIterations {
            quiet.audit(record)
        }
    }

    // A whole small crash as a worker runs it: decode, null throttler, storage and queue (each
    // logging its line), metrics to both backends, the audit line. The end-to-end figure without
    // the sockets and threads `bench/run` adds, so a change to any step shows here.
    let served = Telemetry(sink: DiscardingSink(), statsd: StatsdSender(host: "127.0.0.1", port: 9),
                           prometheus: PrometheusNaming())
    let intake = CrashIntake(pipeline: CrashPipeline(
        throttler: NullThrottler(logger: served.logger("breakwater.throttler")),
        saver: CrashSaver(storage: NullCrashStorage(logger: served.logger("breakwater.crashstorage")), telemetry: served),
        publisher: QueuePublisher(queue: NullCrashQueue(logger: served.logger("breakwater.crashqueue")), telemetry: served),
        telemetry: served), telemetry: served)
    let breakpad = BreakpadResource(intake: intake, decoder: decoder, submitterToken: "")
    let small = CollectorRequest(method: "POST", uri: "/submit", headers: [("Content-Type", payloads.contentType)],
                                 body: payloads.body("small"))
    Benchmark("small crash, null backends (decode to audit line)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(breakpad.handle(small))
        }
    }

    // A counter increment through the facade, fed to both backends the server runs: statsd
    // (batched UDP to the discard port) and Prometheus.
    let metered = Telemetry(sink: DiscardingSink(), statsd: StatsdSender(host: "127.0.0.1", port: 9),
                            prometheus: PrometheusNaming())
    Benchmark("metric update (tagged counter)") { benchmark in
        for _ in benchmark.scaledIterations {
            metered.count(MetricCatalog.saveCrash, ("result", "success"))
        }
    }
}

/// Drops every line after making sure it was built.
struct DiscardingSink: LogSink {
    func write(line: [UInt8]) { blackHole(line) }
}

/// The bench payloads: `$BREAKWATER_BENCH_PAYLOADS`, else `.build-bench/payloads` of the main package
/// (`scripts/bench-micro` writes them there with `bench/gen_payloads.py`).
struct Payloads: Sendable {
    let folder: String
    let contentType: String
    let boundary: String

    static func load() -> Payloads {
        let folder = ProcessInfo.processInfo.environment["BREAKWATER_BENCH_PAYLOADS"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../.build-bench/payloads").standardized.path
        guard let type = try? String(contentsOfFile: folder + "/content_type.txt", encoding: .utf8) else {
            fatalError("no payloads in \(folder): run scripts/bench-micro, or set BREAKWATER_BENCH_PAYLOADS")
        }
        let contentType = type.trimmingCharacters(in: .whitespacesAndNewlines)
        return Payloads(folder: folder, contentType: contentType,
                        boundary: try! MultipartForm.boundary(ofContentType: contentType))
    }

    /// `name.body`, or `small.body.gz` for `small.gz`.
    func body(_ name: String) -> ByteBuffer {
        let file = name.hasSuffix(".gz") ? name.dropLast(3) + ".body.gz" : name + ".body"
        guard let data = FileManager.default.contents(atPath: folder + "/" + file) else {
            fatalError("missing payload \(folder)/\(file)")
        }
        return ByteBuffer(bytes: data)
    }
}
