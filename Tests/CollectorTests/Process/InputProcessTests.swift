import AsyncHTTPClient
import CrashClient
import Foundation
import NIOCore
import Testing
@testable import Collector

/// The executable under hostile input and at its default log level.
@Suite(.serialized) struct InputProcessTests {
    /// The README's bound: peak resident memory stays under `MAX_INFLIGHT_BYTES` plus this.
    static let memoryOverhead = 64 << 20

    static func logLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func post(_ client: HTTPClient, port: Int, contentType: String, encoding: String? = nil, body: [UInt8]) async throws -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/submit")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        if let encoding { request.headers.add(name: "Content-Encoding", value: encoding) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(60))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// 16 gzip bombs at once, each inflating to just under `MAX_DECOMPRESSED_BYTES`, against 16
    /// workers: inflated bytes are reserved from the in-flight budget before they exist, so what
    /// does not fit is answered 503, and the peak stays under the stated bound.
    @Test func concurrentNearLimitBombsStayUnderTheMemoryBound() async throws {
        let inflight = 128 << 20, decompressed = 32 << 20
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("bombs-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let collector = try await CollectorProcess(environment: [
            "WORKERS": "16", "MAX_INFLIGHT_BYTES": String(inflight), "MAX_DECOMPRESSED_BYTES": String(decompressed),
            "SPOOL_DIR": "", "LOG_LEVEL": "warning",
        ], logFile: log)
        var form = MultipartBody()
        form.field("ProductName", "Bomb")
        form.file("upload_file_minidump", [UInt8](repeating: 0, count: decompressed - (64 << 10)))
        let bomb = Deflater.compress(form.finished.bytes, level: 9)
        var clientConfig = HTTPClient.Configuration()
        clientConfig.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfig)
        let port = collector.port, contentType = form.contentType
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<16 {
                group.addTask {
                    var out: [Int] = []
                    for _ in 0..<3 { out.append(try await Self.post(client, port: port, contentType: contentType, encoding: "gzip", body: bomb)) }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let peak = try #require(collector.memory("VmHWM"))
        try await client.shutdown()
        collector.signal(SIGTERM)
        _ = await collector.waitForExit(timeout: 10)
        #expect(statuses.count == 48)
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses)")
        #expect(statuses.contains(200))
        // 16 near-limit bombs at once need about 4 × the budget: some must be refused for memory.
        #expect(statuses.contains(503))
        #expect(peak < inflight + Self.memoryOverhead, "peak \(peak >> 20) MiB")
        print("bombs: \(statuses.filter { $0 == 200 }.count) × 200, \(statuses.filter { $0 == 503 }.count) × 503, peak RSS \(peak >> 20) MiB")
        let lines = Self.logLines((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        #expect(lines.filter { ($0["Fields"] as? [String: Any])?["reason"] as? String == "memory" }.count == statuses.filter { $0 == 503 }.count)
    }

    /// At the default `LOG_LEVEL=info` the null throttler, storage and queue each write one line
    /// per crash, and the audit line does not claim the null queue queued it; at `debug` every
    /// stage of the crash has its line.
    @Test func nullBackendsLogOneInfoLineEachAndStagesTraceAtDebug() async throws {
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        for level in ["info", "debug"] {
            let collector = try await CollectorProcess(environment: ["SPOOL_DIR": "", "LOG_LEVEL": level])
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            #expect(try await Self.post(client, port: collector.port, contentType: form.contentType, body: form.finished.bytes) == 200)
            try await client.shutdown()
            collector.signal(SIGTERM)
            #expect(await collector.waitForExit(timeout: 10) == 0)
            let lines = Self.logLines(collector.log)
            for type in ["breakwater.throttler", "breakwater.crashstorage", "breakwater.crashqueue"] {
                let mine = lines.filter { $0["Type"] as? String == type }
                #expect(mine.count == 1, "\(level) \(type)")
                #expect(mine.first?["Severity"] as? Int == 6, "\(type)")
            }
            let audit = try #require(lines.first { $0["Type"] as? String == "crash" }?["Fields"] as? [String: Any])
            #expect(audit["outcome"] as? String == "accepted")
            #expect(audit["queued"] as? Bool == false)
            let id = try #require(audit["crash_id"] as? String)
            let stages = lines.filter { $0["Type"] as? String == "breakwater.stage" }.compactMap { $0["Fields"] as? [String: Any] }
            if level == "info" {
                #expect(stages.isEmpty)
            } else {
                #expect(stages.compactMap { $0["stage"] as? String } == ["decode", "throttle", "identify", "store", "publish"])
                #expect(stages.dropFirst(2).allSatisfy { $0["crash_id"] as? String == id })
                #expect(stages.allSatisfy { $0["duration_ms"] is Double || $0["duration_ms"] is Int })
            }
        }
    }
}
