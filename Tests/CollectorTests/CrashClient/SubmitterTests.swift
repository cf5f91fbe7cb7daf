import Foundation
import Testing
@testable import Collector
import CrashClient

/// `CrashSubmitter` and `breakwater submit` against the in-process collector.
@Suite struct SubmitterTests {
    static func crashID(_ answer: CrashSubmitter.Answer) throws -> String {
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.body.hasPrefix("CrashID=bp-"))
        return String(answer.body.dropFirst("CrashID=bp-".count).trimmingCharacters(in: .newlines))
    }

    @Test func syntheticCrashesAtARateGzipped() async throws {
        let server = try await TestServer.start()
        let submitter = CrashSubmitter(url: "http://127.0.0.1:\(server.port)/submit", gzip: true)
        let started = Date()
        let answers = try await submitter.run(count: 6, rate: 20) {
            SubmittedCrash.synthetic(index: $0, size: 5000, annotations: [("ProductName", "Load")])
        }
        #expect(Date().timeIntervalSince(started) >= 0.25, "6 crashes at 20/s take at least 0.25 s")
        #expect(answers.map(\.label) == (0..<6).map { "synthetic-\($0)" })
        let ids = try answers.map(Self.crashID)
        #expect(Set(ids).count == 6)
        for id in ids {
            let raw = try #require(server.captured.rawCrash(id))
            #expect(raw["ProductName"] as? String == "Load")
            #expect((raw["metadata"] as? [String: Any])?["payload_compressed"] as? String == "1")
            #expect(server.captured[id]?.dumps.first?.bytes.readableBytes == 5000)
        }
        try await server.stop()
    }

    @Test func minidumpWithAnnotations() async throws {
        let server = try await TestServer.start()
        let file = Tools.path("Tests/Fixtures/test.dmp")
        let crash = try SubmittedCrash.minidump(path: file, annotations: [("ProductName", "Firefox"), ("Version", "120.0")])
        let answer = await CrashSubmitter(url: "http://127.0.0.1:\(server.port)/submit").submit(crash)
        let id = try Self.crashID(answer)
        let raw = try #require(server.captured.rawCrash(id))
        #expect(raw["ProductName"] as? String == "Firefox" && raw["Version"] as? String == "120.0")
        let stored = try #require(server.captured[id])
        #expect(stored.dumpNames == ["upload_file_minidump"])
        #expect(Array(stored.dumps[0].bytes.readableBytesView) == Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        try await server.stop()
    }

    /// A crash stored in the storage layout is posted again: same annotations and dumps, new crash ID.
    @Test func storedCrashFolderRoundTrip() async throws {
        let server = try await TestServer.start()
        var form = MultipartBody()
        form.json("extra", #"{"ProductName":"Firefox","Version":"120.0","Nested":{"a":[1,2]}}"#)
        form.file("upload_file_minidump", Fixtures.bytes("test.dmp"))
        form.file("upload_file_minidump_browser", Fixtures.bytes("linux-mini.dmp"))
        let firstID = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
        let root = try Tools.temporaryFolder("stored")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (key, bytes) in StorageKeys.objects(of: try #require(server.captured[firstID])) {
            let url = URL(fileURLWithPath: root + "/" + key)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes.readableBytesView).write(to: url)
        }

        let crashes = try SubmittedCrash.stored(root: root)
        #expect(crashes.map(\.label) == [firstID])
        let answers = try await CrashSubmitter(url: "http://127.0.0.1:\(server.port)/submit").run(count: 1) { crashes[$0] }
        let secondID = try Self.crashID(answers[0])
        #expect(secondID != firstID)
        let first = try #require(server.captured.rawCrash(firstID)), second = try #require(server.captured.rawCrash(secondID))
        #expect(second["ProductName"] as? String == "Firefox")
        #expect((second["Nested"] as? [String: Any])?["a"] as? [Int] == [1, 2])
        #expect(Set(first.keys) == Set(second.keys))
        let a = try #require(server.captured[firstID]), b = try #require(server.captured[secondID])
        #expect(Dictionary(uniqueKeysWithValues: a.dumps.map { ($0.name, Array($0.bytes.readableBytesView)) })
            == Dictionary(uniqueKeysWithValues: b.dumps.map { ($0.name, Array($0.bytes.readableBytesView)) }))
        #expect(throws: SubmittedCrash.LoadError.self) { try SubmittedCrash.stored(root: root, crashID: "nope") }
        try await server.stop()
    }

    @Test func commandLinePrintsTheAnswers() async throws {
        let server = try await TestServer.start()
        let url = "http://127.0.0.1:\(server.port)/submit"
        let run = try await Task.detached {
            try Tools.run(Tools.breakwater, ["submit", url, "--count", "3", "--size", "1000", "--gzip", "-a", "ProductName=CLI"])
        }.value
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").filter { $0.hasPrefix("synthetic-") }
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.contains(" 200 CrashID=bp-") })
        #expect(run.output.contains("sent 3 (status: 200: 3)"))
        #expect(server.captured.all.count == 3)

        let refused = try Tools.run(Tools.breakwater, ["submit", "http://127.0.0.1:1/submit", "--timeout", "1"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("synthetic-0 0 "))
        try await server.stop()
    }
}
