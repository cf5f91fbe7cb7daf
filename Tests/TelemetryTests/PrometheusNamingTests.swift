import Testing
@testable import Telemetry

/// Catalog names become Prometheus names by one rule, which the shipped dashboards rely on.
@Suite struct PrometheusNamingTests {
    @Test func theNamingRule() {
        #expect(PrometheusNaming.name("incoming_crash", kind: .counter) == "breakwater_incoming_crash_total")
        #expect(PrometheusNaming.name("store.time", kind: .timer) == "breakwater_store_time_seconds")
        #expect(PrometheusNaming.name("spool.size", kind: .gauge) == "breakwater_spool_size")
    }

    @Test func everyCatalogNameIsAValidPrometheusName() {
        for metric in MetricCatalog.all {
            let name = PrometheusNaming.name(metric.name, kind: metric.kind)
            #expect(name.hasPrefix("breakwater_"))
            #expect(name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }, "\(name)")
        }
    }

    @Test func exposedNamesFollowTheRule() {
        let naming = PrometheusNaming()
        let counter = naming.makeCounter(label: "incoming_crash", dimensions: [("endpoint", "submit")])
        counter.increment(by: 3)
        let text = naming.registry.emitToString()
        #expect(text.contains(#"breakwater_incoming_crash_total{endpoint="submit"} 3"#), "\(text)")
    }
}
