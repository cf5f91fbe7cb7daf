import Foundation
import Testing
@testable import Collector

/// The rule throttler end to end through `/submit`: answer, storage, queue, audit line and statsd
/// for each result (DESIGN.md, "Throttle results").
@Suite("RuleThrottler through /submit")
struct RuleThrottlerSubmitTests {
    /// A minidump-carrying crash report with these annotations.
    func form(_ annotations: [String: String]) -> MultipartBody {
        var form = MultipartBody()
        for (name, value) in annotations.sorted(by: { $0.key < $1.key }) { form.field(name, value) }
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        return form.finished
    }

    /// The crash ID of a `CrashID=bp-<id>\n` answer.
    func crashID(_ response: TestServer.Response) throws -> String {
        #expect(response.status == 200)
        #expect(response.body.hasPrefix("CrashID=bp-") && response.body.hasSuffix("\n"))
        let id = String(response.body.dropFirst("CrashID=bp-".count).dropLast())
        #expect(CrashID.isValid(id), "\(id)")
        return id
    }

    /// A server throttling with the shipped mozilla rules as configured (`THROTTLER=rules`).
    func mozillaServer() async throws -> TestServer {
        try await TestServer.start { config in
            config.throttler = "rules"
            config.throttleRules = ThrottleFixtures.mozillaPath
        }
    }

    @Test func rejectAnswersDiscardedAndStoresNothing() async throws {
        let server = try await mozillaServer()
        let response = try await server.submit(form(["ProductName": "Fennec", "Version": "68.0"]))
        #expect(response.status == 200)
        #expect(response.body == "Discarded=rule_unsupported_product")
        #expect(server.captured.all.isEmpty)
        #expect(server.capturedQueue.published.isEmpty)
        let audit = try #require(server.auditLines().first)
        #expect(audit["outcome"] as? String == "rejected")
        #expect(audit["rule"] as? String == "unsupported_product")
        #expect(await server.statsd.waitForCount("breakwater.throttle", tags: "result:reject", atLeast: 1) > 0)
        #expect(await server.statsd.waitForCount("breakwater.throttle_rule", tags: "rule:unsupported_product", atLeast: 1) > 0)
        #expect(server.logs.lines.contains { $0.contains("Fennec: matched by unsupported_product; returned REJECT") })
        try await server.stop()
    }

    @Test func fakeacceptAnswersACrashIDAndStoresNothing() async throws {
        let server = try await mozillaServer()
        let id = try crashID(try await server.submit(form(["ProductName": "B2G"])))
        #expect(id.hasSuffix("0" + CrashID.yymmdd(Date())))
        #expect(server.captured.all.isEmpty)
        #expect(server.capturedQueue.published.isEmpty)
        let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == id })
        #expect(audit["outcome"] as? String == "fakeaccepted")
        #expect(audit["rule"] as? String == "b2g")
        #expect(await server.statsd.waitForCount("breakwater.throttle", tags: "result:fakeaccept", atLeast: 1) > 0)
        try await server.stop()
    }

    @Test func acceptStoresAndQueues() async throws {
        let server = try await mozillaServer()
        let id = try crashID(try await server.submit(form(["ProductName": "Firefox", "ReleaseChannel": "release", "Comments": "it crashed"])))
        #expect(id.hasSuffix("0" + CrashID.yymmdd(Date())))
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["Comments"] as? String == "it crashed")
        #expect((raw["metadata"] as? [String: Any])?["throttle_rule"] as? String == "has_comments")
        #expect(server.capturedQueue.published == [id])
        let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == id })
        #expect(audit["outcome"] as? String == "accepted")
        #expect(audit["rule"] as? String == "has_comments")
        #expect(await server.statsd.waitForCount("breakwater.throttle_rule", tags: "rule:has_comments", atLeast: 1) > 0)
        try await server.stop()
    }

    @Test func percentageRuleWithInjectedRandomness() async throws {
        let accepting = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: FixedThrottleRandom(value: 0.05))
        let rejecting = try RuleThrottler(contentsOfFile: ThrottleFixtures.mozillaPath, random: FixedThrottleRandom(value: 0.5))
        let release = form(["ProductName": "Firefox", "ReleaseChannel": "release"])

        let lucky = try await TestServer.start(throttler: accepting)
        let id = try crashID(try await lucky.submit(release))
        #expect((lucky.captured.rawCrash(id)?["metadata"] as? [String: Any])?["throttle_rule"] as? String == "is_firefox_desktop")
        #expect(lucky.capturedQueue.published == [id])
        try await lucky.stop()

        let unlucky = try await TestServer.start(throttler: rejecting)
        #expect(try await unlucky.submit(release).body == "Discarded=rule_is_firefox_desktop")
        #expect(unlucky.captured.all.isEmpty)
        try await unlucky.stop()
    }

    @Test func deferStoresWithDigitOneAndDoesNotQueue() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("defer-\(UUID().uuidString).yaml")
        try """
            rules:
              - name: is_test
                field: ProductName
                equals: Test
                result: defer
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let server = try await TestServer.start { config in
            config.throttler = "rules"
            config.throttleRules = file.path
        }
        let id = try crashID(try await server.submit(form(["ProductName": "Test"])))
        #expect(id.hasSuffix("1" + CrashID.yymmdd(Date())))
        let raw = try #require(server.captured.rawCrash(id))
        #expect((raw["metadata"] as? [String: Any])?["throttle_rule"] as? String == "is_test")
        #expect(server.captured[id]?.dumps.count == 1)
        #expect(server.capturedQueue.published.isEmpty)
        let audit = try #require(server.auditLines().first { $0["crash_id"] as? String == id })
        #expect(audit["outcome"] as? String == "deferred")
        #expect(audit["rule"] as? String == "is_test")
        #expect(await server.statsd.waitForCount("breakwater.throttle", tags: "result:defer", atLeast: 1) > 0)

        // No rule matched: the default, reject with NO_MATCH.
        #expect(try await server.submit(form(["ProductName": "Other"])).body == "Discarded=rule_NO_MATCH")
        try await server.stop()
    }

    @Test func badRuleFileStopsTheCollectorFromStarting() throws {
        var config = CollectorConfiguration()
        config.throttler = "rules"
        config.throttleRules = "/nonexistent/rules.yaml"
        #expect(throws: ThrottleRuleError.self) { try Collector(config: config, telemetry: .silent()) }
    }
}
