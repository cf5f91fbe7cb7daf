import Foundation
import Testing
import Telemetry
@testable import Collector

/// The raw crash built from text annotations is reserved from `MAX_INFLIGHT_BYTES` before it is
/// built: control bytes grow sixfold in its JSON, so a small gzipped body could otherwise hold
/// hundreds of megabytes outside the bound.
@Suite struct RawCrashMemoryTests {
    static func form(controlBytes: Int) -> MultipartBody {
        var form = MultipartBody()
        form.field("ProductName", "Firefox")
        form.part(headers: "Content-Disposition: form-data; name=\"Notes\"", body: [UInt8](repeating: 0x01, count: controlBytes))
        return form
    }

    /// A JSON part's values were reserved by its parse (48×); they are not reserved again.
    @Test func aJSONPartIsReservedOnce() async throws {
        let server = try await TestServer.start { $0.maxInflightBytes = 8 << 20; $0.maxAnnotationBytes = 1 << 20 }
        var form = MultipartBody()
        form.json("extra", #"{"ProductName":"Firefox","Notes":""# + String(repeating: "n", count: 150_000) + #""}"#)
        _ = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        try await server.stop()
    }

    /// The null throttler's line names the product in at most 64 bytes, however many of them one
    /// Character spans.
    @Test func theNullThrottlersLineIsBounded() throws {
        let logs = CapturingLogSink()
        let telemetry = Telemetry(sink: logs, logLevel: .info, statsd: nil)
        let product = "a" + String(repeating: "\u{301}", count: 10_000)
        _ = NullThrottler(logger: telemetry.logger("breakwater.throttler"))
            .throttle(CrashReport(annotations: ["ProductName": .string(product)], payloadKind: "multipart"))
        let line = try #require(logs.lines.first { $0.contains("null throttler") })
        #expect(line.utf8.count < 600, "\(line.utf8.count) bytes")
    }

    @Test func annotationsWhoseRawCrashCouldNeverFitAre413() async throws {
        let server = try await TestServer.start { $0.maxInflightBytes = 4 << 20; $0.maxAnnotationBytes = 1 << 20 }
        // 13 × 100 KB fits in 4 MiB: stored, the control bytes escaped.
        let fits = try BreakpadIntakeTests.crashID(of: try await server.submit(Self.form(controlBytes: 100_000).finished, gzip: true))
        #expect((server.captured.rawCrash(fits)?["Notes"] as? String)?.utf8.count == 100_000)
        // 13 × 400 KB does not: refused before the raw crash is built, nothing stored.
        let response = try await server.submit(Self.form(controlBytes: 400_000).finished, gzip: true)
        #expect(response.status == 413 && response.body == "Discarded=too_large")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        #expect(server.auditLines().contains { $0["outcome"] as? String == "too_large" && $0["endpoint"] as? String == "breakpad" })
        #expect(server.captured.all.count == 1)
        try await server.stop()
    }
}
