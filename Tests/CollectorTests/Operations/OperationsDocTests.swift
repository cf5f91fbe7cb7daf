import Foundation
import Testing
import Telemetry
@testable import Collector

/// docs/operations.md: its metric table is the catalog, and its jq audit recipes answer their
/// questions on a real collector's log stream.
@Suite struct OperationsDocTests {
    static let doc = try! String(contentsOfFile: Tools.path("docs/operations.md"), encoding: .utf8)

    @Test func metricTableIsTheCatalog() throws {
        let rows = Self.doc.split(separator: "\n").filter { $0.hasPrefix("| `") && $0.contains("| `breakwater_") }
        let documented = rows.map { row -> [String] in
            row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
        }
        #expect(documented.map { $0[0] } == MetricCatalog.all.map(\.name))
        for (columns, entry) in zip(documented, MetricCatalog.all) {
            #expect(columns[1] == entry.kind.rawValue, "\(entry.name) type")
            #expect(columns[2] == (entry.tags.isEmpty ? "—" : entry.tags.joined(separator: ", ")), "\(entry.name) tags")
            #expect(columns[3] == PrometheusNaming.name(entry.name, kind: entry.kind), "\(entry.name) Prometheus name")
            #expect(columns[4] == entry.help, "\(entry.name) help")
        }
    }

    /// The first ```sh block after `marker`.
    static func shellBlock(after marker: String) throws -> String {
        let tail = try #require(Self.doc.range(of: marker)).upperBound
        let start = try #require(Self.doc.range(of: "```sh\n", range: tail..<Self.doc.endIndex)).upperBound
        let end = try #require(Self.doc.range(of: "```", range: start..<Self.doc.endIndex)).lowerBound
        return String(Self.doc[start..<end])
    }

    @Test func auditRecipesAnswerFromTheLogStream() async throws {
        let jq = try #require(Tools.which("jq"), "jq missing: apt-get install jq (scripts/test does)")
        let server = try await TestServer.start(throttler: DashboardTests.AnnotationThrottler())
        func crash(_ throttle: String) async throws -> TestServer.Response {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            form.field("Throttle", throttle)
            return try await server.submit(form.finished)
        }
        let accepted = try BreakpadIntakeTests.crashID(of: try await crash("accept"))
        _ = try await crash("reject")
        for _ in 0..<2 {
            _ = try await server.request(.POST, "/submit", headers: [("Content-Type", "text/plain")], body: Array("x".utf8))
        }
        try await server.stop()
        let folder = try Tools.temporaryFolder("audit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ("not a JSON line\n" + server.logs.lines.joined()).write(toFile: folder + "/breakwater.log", atomically: true, encoding: .utf8)
        let env = ["PATH": URL(fileURLWithPath: jq).deletingLastPathComponent().path + ":/usr/bin:/bin"]

        let whatHappened = try Self.shellBlock(after: "**What happened to crash X**")
            .replacingOccurrences(of: "de1bb258-cbbf-4589-a673-34f800251129", with: accepted)
        let one = try Tools.run("/bin/sh", ["-c", whatHappened], cwd: folder, environment: env)
        #expect(one.status == 0, "\(one.output)")
        let lines = one.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.contains { $0["type"] as? String == "crash" && $0["outcome"] as? String == "accepted" && $0["status"] as? Int == 200 })

        let dropped = try Self.shellBlock(after: "**How many crashes were dropped today")
        let many = try Tools.run("/bin/sh", ["-c", dropped], cwd: folder, environment: env)
        #expect(many.status == 0, "\(many.output)")
        let groups = try #require(try JSONSerialization.jsonObject(with: Data(many.output.utf8)) as? [[String: Any]])
        #expect(groups.count == 2)
        #expect(groups.contains { $0["outcome"] as? String == "malformed" && $0["why"] as? String == "wrong_content_type" && $0["count"] as? Int == 2 })
        #expect(groups.contains { $0["outcome"] as? String == "rejected" && $0["why"] as? String == "test_reject" && $0["count"] as? Int == 1 })
    }
}
