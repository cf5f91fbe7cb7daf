import Testing
@testable import Telemetry

@Suite struct PrometheusNamingTests {
    @Test func placeholder() {}
}
