import Foundation
import Testing
@testable import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// Client text cannot reach statsd or Prometheus: the statsd writer neutralises what its line
/// format reserves, and closed tag sets keep the number of series bounded.
@Suite struct TagValueTests {
    @Test func statsdLinesNeutraliseReservedCharactersInNamesAndTagValues() {
        let receiver = UDPReceiver()
        let sender = StatsdSender(host: "127.0.0.1", port: receiver.port)
        let telemetry = Telemetry(sink: CapturingLogSink(), statsd: sender)
        // Not catalog metrics, so nothing maps the values to `other`: only the writer protects the format.
        telemetry.count("evil\nbreakwater.save_crash:1|c|#result:INJECTED", ("kind", "a:b|c,d#e@f\r\ng"))
        telemetry.gauge("x,y", 2, ("t#ag", "v\u{0}"))
        telemetry.flush()
        let lines = receiver.lines()
        #expect(lines == [
            "breakwater.evil_breakwater.save_crash_1_c__result_INJECTED:1|c|#kind:a_b_c_d_e_f__g",
            "breakwater.x_y:2|g|#t_ag:v_",
        ])
    }

    @Test func everyTaggedMetricStatesTheValuesOfEachTag() {
        for entry in MetricCatalog.all {
            #expect(Set(entry.values.keys) == Set(entry.tags), "\(entry.name)")
            for case .closed(let values) in entry.values.values {
                #expect(!values.isEmpty && Set(values).count == values.count, "\(entry.name)")
                #expect(values.allSatisfy { StatsdMetricsFactory.neutralized($0) == $0 }, "\(entry.name)")
            }
        }
    }

    /// docs/operations.md's "Tag values" table is the catalog.
    @Test func operationsDocStatesTheAllowedValues() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let section = try #require(doc.components(separatedBy: "### Tag values").last?.components(separatedBy: "\n## ").first)
        var documented: [String: String] = [:]
        for row in section.split(separator: "\n") where row.hasPrefix("| `") {
            let columns = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            documented[columns[0].replacingOccurrences(of: "`", with: "") + " " + columns[1].replacingOccurrences(of: "`", with: "")] = columns[2]
        }
        var expected: [String: String] = [:]
        for entry in MetricCatalog.all {
            for (tag, values) in entry.values {
                switch values {
                case .closed(let v): expected[entry.name + " " + tag] = (v + [MetricCatalog.otherValue]).map { "`\($0)`" }.joined(separator: ", ")
                case .configured(let what): expected[entry.name + " " + tag] = "configured: " + what
                }
            }
        }
        #expect(documented == expected)
    }

    /// Every closed value passes as it is, in statsd and on `/metrics`; anything else becomes
    /// `other`, so a flood of distinct client values adds one series, not one per value.
    @Test func closedTagsPassTheirValuesAndMapEverythingElseToOther() {
        let receiver = UDPReceiver()
        let prometheus = PrometheusNaming()
        let telemetry = Telemetry(sink: CapturingLogSink(), statsd: StatsdSender(host: "127.0.0.1", port: receiver.port),
                                  prometheus: prometheus)
        var expected: [String] = []
        for entry in MetricCatalog.all where entry.kind == .counter {
            for (tag, values) in entry.values {
                guard case .closed(let allowed) = values else { continue }
                for value in allowed {
                    telemetry.count(entry.name, (tag, value))
                    expected.append("breakwater.\(entry.name):1|c|#\(tag):\(value)")
                }
                for i in 0..<50 { telemetry.count(entry.name, (tag, "client-\(i)\nbreakwater.x:1|c")) }
                // One series, summed between flushes.
                expected.append("breakwater.\(entry.name):50|c|#\(tag):other")
            }
        }
        telemetry.flush()
        #expect(receiver.lines().sorted() == expected.sorted())

        let exposition = prometheus.exposition()
        let ignored = exposition.split(separator: "\n").filter { $0.hasPrefix("breakwater_ignored_item_total{") }
        #expect(ignored.count == MetricCatalog.sentryItemTypes.count + 1)
        #expect(ignored.contains { $0.hasPrefix(#"breakwater_ignored_item_total{type="other"} 50"#) })
        #expect(!exposition.contains("client-"))
    }

    @Test func sentryItemTypesOutsideTheKnownSetAreOther() {
        #expect(MetricCatalog.sentryItemType("session") == "session")
        #expect(MetricCatalog.sentryItemType("Session") == "other")
        #expect(MetricCatalog.sentryItemType("x\nbreakwater.save_crash:1|c") == "other")
    }

    @Test func stageLinesAreDebugOnSuccessAndWarningOnFailure() throws {
        let sink = CapturingLogSink()
        let quiet = Telemetry(sink: sink, logLevel: .info, statsd: nil)
        quiet.stage("store", crashID: "abc", nanoseconds: 1_500_000)
        #expect(sink.lines.isEmpty)
        quiet.stage("store", crashID: "abc", nanoseconds: 1_500_000, failure: "S3 down")
        let verbose = Telemetry(sink: sink, logLevel: .debug, statsd: nil)
        verbose.stage("decode", crashID: nil, nanoseconds: 2_000)
        let lines = try sink.lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(lines.count == 2)
        let failed = try #require(lines.first?["Fields"] as? [String: Any])
        #expect(lines.first?["Severity"] as? Int == 4)
        #expect(failed["stage"] as? String == "store" && failed["crash_id"] as? String == "abc" && failed["error"] as? String == "S3 down")
        #expect(failed["duration_ms"] as? Double == 1.5)
        let decoded = try #require(lines.last?["Fields"] as? [String: Any])
        #expect(lines.last?["Severity"] as? Int == 7)
        #expect(decoded["stage"] as? String == "decode" && decoded["crash_id"] == nil)
    }
}
