import Foundation
import Testing
import Telemetry
@testable import Collector

/// `GET /metrics`: the Prometheus backend is fed by the same Telemetry calls as statsd.
@Suite struct MetricsEndpointTests {
    @Test func namingRule() {
        #expect(PrometheusNaming.name("incoming_crash", kind: .counter) == "breakwater_incoming_crash_total")
        #expect(PrometheusNaming.name("store.time", kind: .timer) == "breakwater_store_time_seconds")
        #expect(PrometheusNaming.name("spool.size", kind: .gauge) == "breakwater_spool_size")
        #expect(PrometheusNaming.name("crash_size", kind: .histogram) == "breakwater_crash_size")
        let names = MetricCatalog.all.map { PrometheusNaming.name($0.name, kind: $0.kind) }
        #expect(Set(names).count == names.count, "two catalog metrics map to one Prometheus name")
    }

    @Test func crashShowsInBothBackends() async throws {
        let server = try await TestServer.start()
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", Array(repeating: 7, count: 3000))
        #expect(try await server.submit(form.finished, gzip: true).status == 200)
        #expect(try await server.request(.POST, "/submit", headers: [("Content-Type", "text/plain")], body: Array("x".utf8)).status == 400)

        let metrics = try await server.request(.GET, "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = metrics.body
        for line in [
            #"breakwater_incoming_crash_total{endpoint="breakpad"} 2"#,
            #"breakwater_throttle_total{result="accept"} 1"#,
            #"breakwater_throttle_rule_total{rule="ACCEPT_ALL"} 1"#,
            #"breakwater_malformed_total{reason="wrong_content_type"} 1"#,
            #"breakwater_save_crash_total{result="success"} 1"#,
            #"breakwater_publish_crash_total{result="success"} 1"#,
            #"breakwater_crash_size_count{payload="compressed"} 1"#,
            #"breakwater_request_time_seconds_count 2"#,
            #"breakwater_store_time_seconds_bucket{le="+Inf"} 1"#,
            #"breakwater_response_total{status="200"} 1"#,
            #"breakwater_response_total{status="400"} 1"#,
            #"breakwater_heartbeat{check="storage"} 1.0"#,
        ] {
            #expect(text.contains(line + "\n"), "missing \(line)")
        }
        // Metrics without tags are exposed from the start, at zero when nothing happened, each with
        // its catalog help text.
        for entry in MetricCatalog.all where entry.tags.isEmpty {
            let name = PrometheusNaming.name(entry.name, kind: entry.kind)
            #expect(text.contains("# TYPE \(name) "), "\(name) not exposed")
            #expect(text.contains("# HELP \(name) \(entry.help)\n"), "\(name) has no help line")
        }
        #expect(text.contains("# HELP breakwater_incoming_crash_total Crash reports that reached the pipeline.\n"))
        // promtool's linter: valid exposition, and no family without help.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let promtool = try #require(Tools.which("promtool"), "promtool missing: apt-get install prometheus (scripts/test does)")
        let check = try Tools.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, file.path])
        #expect(check.status == 0 && !check.output.contains("no help text"), "\(check.output)")
        #expect(text.contains("breakwater_spool_size 0.0\n"))
        // The same calls reached statsd (summed between flushes).
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:breakpad", atLeast: 2) == 2)
        try await server.stop()
    }

    /// The null storage and queue keep nothing: no success is counted, so a collector left on its
    /// defaults by mistake does not look like one storing and queueing on the dashboards.
    @Test func nullBackendsCountNoSuccess() async throws {
        let server = try await TestServer.start(storage: NullCrashStorage(), queue: NullCrashQueue())
        var form = MultipartBody()
        form.field("ProductName", "Test")
        _ = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        #expect(await server.statsd.waitForCount("breakwater.incoming_crash", tags: "endpoint:breakpad", atLeast: 1) == 1)
        let text = try await server.request(.GET, "/metrics").body
        #expect(!text.contains(#"breakwater_save_crash_total{result="success"}"#))
        #expect(!text.contains(#"breakwater_publish_crash_total{result="success"}"#))
        #expect(text.contains("breakwater_save_crash_bytes_total 0\n"), "\(text)")
        #expect(server.statsd.counted("breakwater.save_crash", tags: "result:success") == 0)
        try await server.stop()
    }

    /// swift-prometheus stops the process when one name is used with two label sets, so every
    /// Telemetry call in Sources must name a catalog metric with exactly its catalog tags.
    @Test func everyTelemetryCallUsesCatalogTags() throws {
        let catalogSource = try String(contentsOfFile: Tools.path("Sources/Telemetry/MetricCatalog.swift"), encoding: .utf8)
        let constants = Dictionary(uniqueKeysWithValues: catalogSource.matches(of: #/static let (\w+) = "([^"]+)"/#)
            .map { (String($0.output.1), String($0.output.2)) })
        let files = FileManager.default.enumerator(atPath: Tools.path("Sources"))!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        var calls = 0
        for file in files {
            let text = try String(contentsOfFile: Tools.path("Sources/" + file), encoding: .utf8)
            for match in text.matches(of: #/\.(count|gauge|histogram|time|timed)\(MetricCatalog\.(\w+)/#) {
                // The call's arguments: up to the parenthesis closing it.
                var depth = 1, end = match.range.upperBound
                while depth > 0, end < text.endIndex {
                    if text[end] == "(" { depth += 1 } else if text[end] == ")" { depth -= 1 }
                    end = text.index(after: end)
                }
                let tags = text[match.range.upperBound..<end].matches(of: #/\("(\w+)",/#).map { String($0.output.1) }
                let name = try #require(constants[String(match.output.2)], "\(file): MetricCatalog.\(match.output.2)")
                let entry = try #require(MetricCatalog.entry(name))
                #expect(tags == entry.tags, "\(file): \(name) tagged \(tags), catalog says \(entry.tags)")
                calls += 1
            }
        }
        #expect(calls >= 15)
    }
}
