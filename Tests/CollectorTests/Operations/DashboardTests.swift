import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import Telemetry
@testable import Collector

/// dashboards/: the alert rules pass promtool, every metric they and the dashboard name is in the
/// catalog, the statsd_exporter mapping yields the same names, and a real Prometheus scraping a
/// collector under real crashes returns data for every dashboard query.
@Suite struct DashboardTests {
    static let dashboard = Tools.path("dashboards/breakwater.json")
    static let alerts = Tools.path("dashboards/alerts.yml")

    /// Every PromQL expression of the dashboard, with Grafana's interval variable made concrete.
    static func panelQueries() throws -> [(panel: String, expr: String)] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dashboard))) as! [String: Any]
        return (json["panels"] as! [[String: Any]]).flatMap { panel in
            (panel["targets"] as! [[String: Any]]).map {
                (panel["title"] as! String, ($0["expr"] as! String).replacingOccurrences(of: "$__rate_interval", with: "1m"))
            }
        }
    }

    /// The Prometheus names a catalog metric exposes (histograms as _bucket, _count, _sum series).
    static var exposedNames: Set<String> {
        var names = Set<String>()
        for entry in MetricCatalog.all {
            let name = PrometheusNaming.name(entry.name, kind: entry.kind)
            names.insert(name)
            if entry.kind == .histogram || entry.kind == .timer {
                for suffix in ["_bucket", "_count", "_sum"] { names.insert(name + suffix) }
            }
        }
        return names
    }

    static func metricNames(in text: String) -> Set<String> {
        Set(text.matches(of: #/breakwater_[a-z0-9_]+/#).map { String($0.output) })
    }

    @Test func promtoolChecksAndTestsTheRules() throws {
        let promtool = try #require(Tools.which("promtool"), "promtool missing: apt-get install prometheus (scripts/test does)")
        let check = try Tools.run(promtool, ["check", "rules", Self.alerts])
        #expect(check.status == 0, "\(check.output)")
        let test = try Tools.run(promtool, ["test", "rules", "alerts.test.yml"], cwd: Tools.path("dashboards"))
        #expect(test.status == 0, "\(test.output)")
    }

    @Test func everyAlertHasARunbook() throws {
        let text = try String(contentsOfFile: Self.alerts, encoding: .utf8)
        let alerts = text.matches(of: #/- alert: (\w+)/#).map { String($0.output.1) }
        #expect(alerts.count == 10)
        #expect(text.matches(of: #/\n +runbook: "[^"]{40,}"/#).count == alerts.count)
        let tests = try String(contentsOfFile: Tools.path("dashboards/alerts.test.yml"), encoding: .utf8)
        for alert in alerts {
            #expect(tests.contains("alertname: \(alert)\n    exp_alerts:\n    - exp_labels"), "\(alert) never fires in a test")
            #expect(tests.contains("alertname: \(alert)\n    exp_alerts: []"), "\(alert) has no test where it stays quiet")
        }
    }

    @Test func dashboardAndAlertsUseOnlyCatalogMetrics() throws {
        let exposed = Self.exposedNames
        let queries = try Self.panelQueries()
        #expect(queries.count >= 13)
        var used = Set<String>()
        for (_, expr) in queries { used.formUnion(Self.metricNames(in: expr)) }
        used.formUnion(Self.metricNames(in: try String(contentsOfFile: Self.alerts, encoding: .utf8)))
        #expect(used.count >= 10)
        #expect(used.subtracting(exposed).isEmpty, "not in MetricCatalog: \(used.subtracting(exposed).sorted())")
    }

    @Test func dashboardDatasourceIsAVariable() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.dashboard))) as! [String: Any]
        let variables = (json["templating"] as! [String: Any])["list"] as! [[String: Any]]
        #expect(variables.contains { $0["name"] as? String == "datasource" && $0["type"] as? String == "datasource" && $0["query"] as? String == "prometheus" })
        for panel in json["panels"] as! [[String: Any]] {
            #expect((panel["datasource"] as? [String: Any])?["uid"] as? String == "${datasource}")
        }
    }

    /// Applies the mapping file the way statsd_exporter's glob mapper does (first mapping of the
    /// metric's type whose components all match; `*` is one component) to every catalog metric
    /// as the statsd backend names and types it.
    @Test func statsdExporterMappingGivesTheSameNames() throws {
        let text = try String(contentsOfFile: Tools.path("dashboards/statsd_exporter.yml"), encoding: .utf8)
        var mappings: [(match: [Substring], type: String, name: String)] = []
        for block in text.components(separatedBy: "  - match: ").dropFirst() {
            let match = block.prefix { $0 != "\n" }.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let type = try #require(block.firstMatch(of: #/match_metric_type: (\w+)/#)).output.1
            let name = try #require(block.firstMatch(of: #/\n +name: "([^"]+)"/#)).output.1
            mappings.append((match.split(separator: ".", omittingEmptySubsequences: false), String(type), String(name)))
        }
        #expect(mappings.count >= 4)
        for entry in MetricCatalog.all {
            let type = entry.kind == .counter ? "counter" : entry.kind == .gauge ? "gauge" : "observer"
            let components = ("breakwater." + entry.name).split(separator: ".", omittingEmptySubsequences: false)
            let mapping = mappings.first { m in
                m.type == type && m.match.count == components.count && zip(m.match, components).allSatisfy { $0 == "*" || $0 == $1 }
            }
            var name = try #require(mapping, "no mapping for \(entry.name)").name
            let globs = zip(mapping!.match, components).filter { $0.0 == "*" }.map { String($0.1) }
            for (i, value) in globs.enumerated() { name = name.replacingOccurrences(of: "${\(i + 1)}", with: value) }
            #expect(name == PrometheusNaming.name(entry.name, kind: entry.kind))
        }
    }

    /// Crashes decided by their `Throttle` annotation, so every throttle result shows up.
    struct AnnotationThrottler: Throttler {
        func throttle(_ crash: CrashReport) -> ThrottleDecision {
            switch crash.field("Throttle") {
            case "reject": return ThrottleDecision(.reject, rule: "test_reject")
            case "defer": return ThrottleDecision(.defer, rule: "test_defer")
            default: return ThrottleDecision(.accept, rule: "test_accept")
            }
        }
    }

    @Test func prometheusScrapesEveryPanel() async throws {
        let prometheusBinary = try #require(Tools.which("prometheus"), "prometheus missing: apt-get install prometheus (scripts/test does)")
        let server = try await TestServer.start(throttler: AnnotationThrottler())
        let folder = try Tools.temporaryFolder("prometheus")
        let promPort = Tools.freePort()
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: breakwater
            static_configs:
              - targets: ["127.0.0.1:\(server.port)"]
        """.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: prometheusBinary)
        prometheus.arguments = ["--config.file=\(folder)/prometheus.yml", "--storage.tsdb.path=\(folder)/data",
                                "--web.listen-address=127.0.0.1:\(promPort)"]
        _ = FileManager.default.createFile(atPath: folder + "/prometheus.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/prometheus.log"))
        prometheus.standardOutput = log
        prometheus.standardError = log
        try prometheus.run()
        defer {
            prometheus.terminate()
            prometheus.waitUntilExit()
            try? FileManager.default.removeItem(atPath: folder)
        }

        // A stream of real crashes: accepted, deferred, rejected, gzipped, malformed.
        let stream = Task {
            var n = 0
            while !Task.isCancelled {
                var form = MultipartBody()
                form.field("ProductName", "Test")
                form.field("Throttle", ["accept", "defer", "reject"][n % 3])
                form.file("upload_file_minidump", Array(repeating: UInt8(n % 251), count: 2000 + n * 10))
                _ = try? await server.submit(form.finished, gzip: n % 2 == 0)
                if n % 4 == 0 {
                    _ = try? await server.request(.POST, "/submit", headers: [("Content-Type", "text/plain")], body: Array("x".utf8))
                }
                n += 1
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        defer { stream.cancel() }

        var missing = try Self.panelQueries()
        let deadline = Date().addingTimeInterval(60)
        while !missing.isEmpty && Date() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            var still: [(panel: String, expr: String)] = []
            for query in missing {
                if try await Self.resultCount(server.client, port: promPort, query.expr) == 0 { still.append(query) }
            }
            missing = still
        }
        #expect(missing.isEmpty, "no data for: \(missing.map { "\($0.panel): \($0.expr)" })")
        stream.cancel()
        _ = await stream.result
        try await server.stop()
    }

    /// How many series an instant query returns (0 on any error, so the caller polls again).
    static func resultCount(_ client: HTTPClient, port: Int, _ expr: String) async throws -> Int {
        var query = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
        query.queryItems = [URLQueryItem(name: "query", value: expr)]
        let url = query.url!.absoluteString.replacingOccurrences(of: "+", with: "%2B")
        guard let response = try? await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5)),
              response.status == .ok else { return 0 }
        let body = try await response.body.collect(upTo: 1 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        return ((json?["data"] as? [String: Any])?["result"] as? [Any])?.count ?? 0
    }
}
