import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Telemetry
@testable import Collector
import CrashClient

/// A collector started in-process on an ephemeral port, with its log lines, statsd datagrams and
/// stored crashes captured, driven by a real HTTP client.
final class TestServer: @unchecked Sendable {
    let collector: Collector
    let port: Int
    let logs: CapturingLogSink
    let statsd: StatsdReceiver
    let storage: CrashStorage
    let queue: CrashQueue
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    private let stopped = Atomic<Bool>(false)

    /// Starts a collector; `configure` edits the configuration (port 0 and test statsd are preset).
    static func start(configure: (inout CollectorConfiguration) -> Void = { _ in },
                      throttler: Throttler? = nil,
                      storage: CrashStorage = CapturingCrashStorage(),
                      queue: CrashQueue = CapturingCrashQueue()) async throws -> TestServer {
        var config = CollectorConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.workers = 2
        config.versionFile = "/nonexistent/version.json"
        // Tests that want an outbox give it a folder of their own.
        config.spoolDir = ""
        configure(&config)
        let statsd = try StatsdReceiver()
        let logs = CapturingLogSink()
        let telemetry = Telemetry(sink: logs, logLevel: .debug,
                                  statsd: StatsdSender(host: "127.0.0.1", port: statsd.port, flushInterval: 0.05),
                                  prefix: config.statsdPrefix, prometheus: PrometheusNaming())
        let collector = try Collector(config: config, telemetry: telemetry, throttler: throttler, storage: storage, queue: queue)
        let port = try await collector.start()
        return TestServer(collector: collector, port: port, logs: logs, statsd: statsd, storage: storage, queue: queue)
    }

    private init(collector: Collector, port: Int, logs: CapturingLogSink, statsd: StatsdReceiver, storage: CrashStorage, queue: CrashQueue) {
        self.collector = collector
        self.port = port
        self.logs = logs
        self.statsd = statsd
        self.storage = storage
        self.queue = queue
    }

    var captured: CapturingCrashStorage { storage as! CapturingCrashStorage }
    var capturedQueue: CapturingCrashQueue { queue as! CapturingCrashQueue }

    struct Response {
        let status: Int
        let headers: HTTPHeaders
        let body: String
    }

    func request(_ method: HTTPMethod = .POST, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Response {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 10 << 20)
        return Response(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    func submit(_ form: MultipartBody, gzip: Bool = false, headers: [(String, String)] = []) async throws -> Response {
        var h = [("Content-Type", form.contentType)] + headers
        var body = form.bytes
        if gzip {
            h.append(("Content-Encoding", "gzip"))
            body = Deflater.compress(body)
        }
        return try await request(.POST, "/submit", headers: h, body: body)
    }

    /// The `Fields` of every audit line (`Type: "crash"`).
    func auditLines() -> [[String: Any]] {
        logs.lines.compactMap { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  obj["Type"] as? String == "crash" else { return nil }
            return obj["Fields"] as? [String: Any]
        }
    }

    func stop() async throws {
        await collector.shutdown(deadline: Date().addingTimeInterval(5))
        try await client.shutdown()
        stopped.store(true, ordering: .releasing)
        statsd.close()
    }

    /// A test that throws before `stop()` (a service not running) must fail, not take the whole
    /// test process down with it: AsyncHTTPClient traps when a client is released unstopped.
    /// Only then: `syncShutdown` itself traps on an event loop thread, wherever the last
    /// reference happens to go.
    deinit {
        if !stopped.load(ordering: .acquiring) { try? client.syncShutdown() }
    }
}

/// Storage that keeps crashes in memory so tests can read what the pipeline stored.
final class CapturingCrashStorage: CrashStorage, @unchecked Sendable {
    private let lock = NSLock()
    private var crashes: [String: StoredCrash] = [:]
    /// Seconds each save takes (a slow backend).
    var delay: Double = 0
    var failing = false
    /// Crash IDs refused for good (as S3 refuses a key with 403).
    var refused: Set<String> = []

    struct Refused: DefinitiveFailure, CustomStringConvertible {
        let crashID: String
        var isDefinitive: Bool { true }
        var description: String { "403 AccessDenied for \(crashID)" }
    }

    func save(_ crash: StoredCrash) throws {
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if failing { throw Backends.StartupError("storage failing") }
        if lock.withLock({ refused.contains(crash.crashID) }) { throw Refused(crashID: crash.crashID) }
        lock.withLock { crashes[crash.crashID] = crash }
    }

    func check() -> HealthStatus { failing ? .error("failing") : .ok }
    func crashIDs(onDate date: String) throws -> [String] { lock.withLock { Array(crashes.keys) } }

    var all: [StoredCrash] { lock.withLock { Array(crashes.values) } }
    subscript(id: String) -> StoredCrash? { lock.withLock { crashes[id] } }

    /// The stored raw crash of `id`, parsed.
    func rawCrash(_ id: String) -> [String: Any]? {
        guard let crash = self[id] else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(crash.rawCrash)) as? [String: Any]
    }
}

final class CapturingCrashQueue: CrashQueue, @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    var failing = false

    func publish(_ crashID: String) throws {
        if failing { throw Backends.StartupError("queue failing") }
        lock.withLock { ids.append(crashID) }
    }
    func check() -> HealthStatus { failing ? .error("failing") : .ok }
    var published: [String] { lock.withLock { ids } }
}
