import CrashClient
import Foundation
import Testing
@testable import Collector

/// What real crash reporters send is accepted (every compression, nested dumps), and what a
/// hostile client controls cannot corrupt telemetry, overwrite a stored dump or hold a worker's
/// health check.
@Suite struct ClientInputTests {
    static let dump = Fixtures.bytes("linux-mini.dmp")

    static func notes(_ raw: [String: Any]?) -> [String] {
        ((raw?["metadata"] as? [String: Any])?["collector_notes"] as? [String]) ?? []
    }

    static func checksums(_ raw: [String: Any]?) -> [String: String] {
        ((raw?["metadata"] as? [String: Any])?["dump_checksums"] as? [String: String]) ?? [:]
    }

    /// `dump_names` and `dump_checksums` describe exactly the stored bytes.
    static func expectConsistent(_ crash: StoredCrash, _ raw: [String: Any]?) {
        let stored = Dictionary(uniqueKeysWithValues: crash.dumps.map { ($0.name, RawCrash.sha256Hex($0.bytes)) })
        #expect(checksums(raw) == stored)
        #expect(Set(crash.dumps.map { StorageKeys.dump($0.name, crash.crashID) }).count == crash.dumps.count)
    }

    @Test func compressedAndNestedMinidumpPartsAreStoredDecompressed() async throws {
        let server = try await TestServer.start()
        let wrapped: [(String, [UInt8])] = [
            ("gzip", Fixtures.bytes("compressed/linux-mini.dmp.gz")), ("zstd", Fixtures.bytes("compressed/linux-mini.dmp.zst")),
            ("xz", Fixtures.bytes("compressed/linux-mini.dmp.xz")), ("bzip2", Fixtures.bytes("compressed/linux-mini.dmp.bz2")),
            ("nested", MinidumpUnwrappingTests.nested(Self.dump)),
        ]
        for (kind, bytes) in wrapped {
            var form = MultipartBody()
            form.field("ProductName", "Test")
            form.file("upload_file_minidump", bytes)
            let id = try BreakpadIntakeTests.crashID(of: try await server.submit(form.finished))
            let crash = try #require(server.captured[id])
            #expect(crash.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump], "\(kind)")
            let raw = server.captured.rawCrash(id)
            #expect(Self.notes(raw) == [kind == "nested" ? "Unwrapped upload_file_minidump from a nested multipart body."
                                                         : "Decompressed upload_file_minidump (\(kind))."], "\(kind)")
            Self.expectConsistent(crash, raw)
        }
        // The notes name a dump as stored, never by the part's name as sent (here 10 KiB, odd bytes).
        let longName = "upload_file_minidump_content/../\u{1}é" + String(repeating: "x", count: 10_000)
        var odd = MultipartBody()
        odd.field("ProductName", "Test")
        odd.file(longName, Fixtures.bytes("compressed/linux-mini.dmp.gz"))
        let oddID = try BreakpadIntakeTests.crashID(of: try await server.submit(odd.finished))
        let oddCrash = try #require(server.captured[oddID])
        #expect(oddCrash.dumps.map(\.name) == ["upload_file_minidump_contentxx"])
        #expect(Self.notes(server.captured.rawCrash(oddID)) == ["Decompressed upload_file_minidump_contentxx (gzip)."])
        // A cut compressed dump is refused, not stored as garbage.
        var cut = MultipartBody()
        cut.field("ProductName", "Test")
        cut.file("upload_file_minidump", Array(Fixtures.bytes("compressed/linux-mini.dmp.zst").prefix(500)))
        try await HostileInputTests.expectMalformed(server, "bad_dump_compression", contentType: cut.contentType, body: cut.finished.bytes)
        try await server.stop()
    }

    @Test func sentryMinidumpsArriveCompressedToo() async throws {
        let server = try await SentryTests.start()
        // The bare dump as the body, itself xz-compressed, the request zstd-encoded.
        let response = try await server.request(.POST, "/api/42/minidump/?sentry_key=pubkey",
                                                headers: [("Content-Type", "application/octet-stream"), ("Content-Encoding", "zstd")],
                                                body: Zstd.compress(Fixtures.bytes("compressed/linux-mini.dmp.xz")))
        #expect(response.status == 200)
        let (crash, raw) = try SentryTests.stored(server, eventID: response.body)
        #expect(SentryTests.dump(crash, "upload_file_minidump") == Self.dump)
        #expect(Self.notes(raw) == ["Decompressed upload_file_minidump (xz)."])
        #expect(raw["metadata"].flatMap { ($0 as? [String: Any])?["payload_compressed"] as? String } == "1")

        // An envelope whose minidump attachment is gzip, plus an attachment that claims its name.
        let minidump = Fixtures.bytes("compressed/linux-mini.dmp.gz")
        let log = Array("log".utf8)
        var envelope = Array("{\"event_id\":\"0123456789abcdef0123456789abcdef\"}\n".utf8)
        envelope += Array("{\"type\":\"attachment\",\"length\":\(log.count),\"filename\":\"upload_file_minidump\"}\n".utf8) + log + [10]
        envelope += Array("{\"type\":\"attachment\",\"length\":\(minidump.count),\"attachment_type\":\"event.minidump\",\"filename\":\"m.dmp\"}\n".utf8)
            + minidump + [10]
        let answer = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth, ("Content-Type", "application/x-sentry-envelope")],
                                              body: envelope)
        #expect(answer.status == 200)
        let (stored, storedRaw) = try SentryTests.stored(server, eventID: "0123456789abcdef0123456789abcdef")
        #expect(SentryTests.dump(stored, "upload_file_minidump") == Self.dump)
        #expect(SentryTests.dump(stored, "upload_file_minidump_2") == log)
        Self.expectConsistent(stored, storedRaw)
        try await server.stop()
    }

    /// `Content-Encoding: zstd` on /submit, the generic endpoint and the Sentry endpoints.
    @Test func zstdContentEncodingOnEveryEndpoint() async throws {
        let server = try await SentryTests.start { $0.maxDecompressedBytes = 8 << 20 }
        var form = MultipartBody()
        form.field("ProductName", "Zstd")
        form.file("upload_file_minidump", Self.dump)
        for path in ["/submit", "/generic/submit"] {
            let response = try await server.request(.POST, path, headers: [("Content-Type", form.contentType), ("Content-Encoding", "zstd")],
                                                    body: Zstd.compress(form.finished.bytes))
            let id = try BreakpadIntakeTests.crashID(of: response)
            #expect(server.captured[id]?.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump], "\(path)")
            #expect((server.captured.rawCrash(id)?["metadata"] as? [String: Any])?["payload_compressed"] as? String == "1")
        }
        let event = Array(#"{"event_id":"fedcba9876543210fedcba9876543210","release":"1.0"}"#.utf8)
        let store = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                             body: Zstd.compress(event))
        #expect(store.status == 200)
        #expect(try SentryTests.stored(server, eventID: "fedcba9876543210fedcba9876543210").raw["Version"] as? String == "1.0")
        let envelope = Array("{}\n{\"type\":\"event\"}\n{\"event_id\":\"aaaabbbbccccddddeeeeffff00001111\"}\n".utf8)
        let posted = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                              body: Zstd.compress(envelope))
        #expect(posted.status == 200)
        _ = try SentryTests.stored(server, eventID: "aaaabbbbccccddddeeeeffff00001111")

        let broken = try await server.request(.POST, "/api/42/store/", headers: [SentryTests.auth, ("Content-Encoding", "zstd")],
                                              body: Array(Zstd.compress(event).dropLast(4)))
        #expect(broken.status == 400 && broken.body.contains("bad_zstd"))
        let bomb = try await server.request(.POST, "/submit", headers: [("Content-Type", form.contentType), ("Content-Encoding", "zstd")],
                                            body: Fixtures.bytes("compressed/zeros-64MiB.zst"))
        #expect(bomb.status == 413)
        #expect(bomb.body == "Discarded=too_large")
        #expect(await server.statsd.waitForCount("breakwater.malformed", tags: "reason:too_large", atLeast: 1) == 1)
        let audited = server.auditLines().filter { $0["reason"] as? String == "too_large" }
        #expect(audited.count == 1 && audited.first?["endpoint"] as? String == "breakpad" && audited.first?["status"] as? Int == 413
                && audited.first?["outcome"] as? String == "too_large", "\(audited)")
        try await server.stop()
    }

    /// Two parts can never share a storage key: `dump` is reserved, and names that would merge are
    /// renamed, with `dump_names` and `dump_checksums` matching the stored bytes.
    @Test func storageKeysAreInjective() async throws {
        let server = try await TestServer.start()
        var reserved = MultipartBody()
        reserved.field("ProductName", "Test")
        reserved.file("upload_file_minidump", Self.dump)
        reserved.file("dump", Array("other".utf8))
        try await HostileInputTests.expectMalformed(server, "invalid_dump_name", contentType: reserved.contentType, body: reserved.finished.bytes)

        let long = "upload_file_minidump_browser_" + "x"
        var merging = MultipartBody()
        merging.field("ProductName", "Test")
        merging.file("upload_file_minidump", Self.dump)
        merging.file("upload_file_minidump", Array("second".utf8))
        merging.file(long + "1", Array("one".utf8))
        merging.file(long + "2", Array("two".utf8))
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(merging.finished))
        let crash = try #require(server.captured[id])
        #expect(crash.dumpNames == ["upload_file_minidump", "upload_file_minidump_2", "upload_file_minidump_browser_x",
                                    "upload_file_minidump_browser_2"])
        #expect(crash.dumps.map { Array($0.bytes.readableBytesView) } == [Self.dump, Array("second".utf8), Array("one".utf8), Array("two".utf8)])
        Self.expectConsistent(crash, server.captured.rawCrash(id))
        try await server.stop()
    }

    /// An item type crafted to inject statsd lines is counted as `other`; no injected line is sent.
    @Test func clientTextCannotInjectStatsdLinesOrSeries() async throws {
        let server = try await SentryTests.start()
        var envelope = Array("{}\n".utf8)
        for i in 0..<20 {
            envelope += Array("{\"type\":\"x\(i)\\nbreakwater.save_crash:1|c|#result:INJECTED\",\"length\":2}\n{}\n".utf8)
        }
        envelope += Array("{\"type\":\"session\",\"length\":2}\n{}\n".utf8)
        let response = try await server.request(.POST, "/api/42/envelope/", headers: [SentryTests.auth], body: envelope)
        #expect(response.status == 200)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:session", atLeast: 1) > 0)
        #expect(await server.statsd.waitForCount("breakwater.ignored_item", tags: "type:other", atLeast: 20) == 20)
        #expect(!server.statsd.lines.contains { $0.contains("INJECTED") })
        let metrics = try await server.request(.GET, "/metrics")
        #expect(!metrics.body.contains("INJECTED"))
        #expect(metrics.body.contains(#"breakwater_ignored_item_total{type="other"} 20"#))
        try await server.stop()
    }

    /// The generic endpoint reads urlencoded forms a field at a time under the same limits.
    @Test func genericURLEncodedFormsHonourTheLimits() async throws {
        let server = try await TestServer.start { $0.maxParts = 100; $0.maxAnnotations = 50; $0.maxAnnotationBytes = 1000 }
        func post(_ body: String) async throws -> TestServer.Response {
            try await server.request(.POST, "/generic/submit", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
        }
        let ok = try await post("ProductName=Test&Comments=a+b%21&Nul=x%00y")
        let id = try BreakpadIntakeTests.crashID(of: ok)
        let raw = server.captured.rawCrash(id)
        #expect(raw?["Comments"] as? String == "a b!" && raw?["Nul"] as? String == "xy")
        // One name repeated: a single annotation, but 20,000 fields.
        for (body, reason) in [(Array(repeating: "a=b", count: 20_000).joined(separator: "&"), "too_many_parts"),
                               ((0..<60).map { "k\($0)=v" }.joined(separator: "&"), "too_many_annotations"),
                               ("ProductName=" + String(repeating: "%41", count: 2000), "annotation_too_large")] {
            try await HostileInputTests.expectMalformed(server, reason, contentType: "application/x-www-form-urlencoded",
                                                        body: Array(body.utf8), path: "/generic/submit", endpoint: "generic")
        }
        // The limits are the configured ones, not the defaults (1000 parts, 500 annotations,
        // 1 MiB): exactly at each limit is taken, one more is refused.
        let fields = { (n: Int) in (0..<n).map { "k\($0)=v" }.joined(separator: "&") }
        _ = try BreakpadIntakeTests.crashID(of: try await post(Array(repeating: "a=b", count: 100).joined(separator: "&")))
        try await HostileInputTests.expectMalformed(server, "too_many_parts", contentType: "application/x-www-form-urlencoded",
                                                    body: Array(Array(repeating: "a=b", count: 101).joined(separator: "&").utf8),
                                                    path: "/generic/submit", endpoint: "generic")
        _ = try BreakpadIntakeTests.crashID(of: try await post(fields(50)))
        try await HostileInputTests.expectMalformed(server, "too_many_annotations", contentType: "application/x-www-form-urlencoded",
                                                    body: Array(fields(51).utf8), path: "/generic/submit", endpoint: "generic")
        _ = try BreakpadIntakeTests.crashID(of: try await post("ProductName=" + String(repeating: "x", count: 1000)))
        try await HostileInputTests.expectMalformed(server, "annotation_too_large", contentType: "application/x-www-form-urlencoded",
                                                    body: Array(("ProductName=" + String(repeating: "x", count: 1001)).utf8),
                                                    path: "/generic/submit", endpoint: "generic")
        try await server.stop()
    }

    /// With the only CPU slot held (a crash stuck in its throttler, which runs before any crash
    /// hands its slot on) and the waiting line full, `/__heartbeat__` still answers its JSON at
    /// once, from the heartbeat's own queue; and when a check itself hangs, a probe is answered
    /// with the latest result instead of waiting for it. The bounds are generous: the promise is
    /// 100 ms, and a heartbeat waiting for a worker or a check would take seconds.
    @Test func heartbeatNeverWaitsForWorkers() async throws {
        let throttler = BlockingThrottler()
        let storage = SlowCheckStorage()
        let server = try await TestServer.start(configure: { $0.workers = 1; $0.workerQueue = 1 }, throttler: throttler, storage: storage)
        var form = MultipartBody()
        form.field("ProductName", "Test")
        // A first result, while nothing is busy (a probe before any run answers 503 with no checks).
        var warm = 0
        for _ in 0..<100 where warm != 200 {
            warm = try await server.request(.GET, "/__heartbeat__").status
            if warm != 200 { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(warm == 200)

        let held = Task { try await server.submit(form.finished) }
        for _ in 0..<500 where throttler.entered == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(throttler.entered == 1)
        let queued = Task { try await server.submit(form.finished) }
        for _ in 0..<500 where server.collector.pool.inFlight < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(server.collector.pool.inFlight == 2)
        // The pool is full: a crash now is refused at once.
        #expect(try await server.submit(form.finished).status == 503)

        for _ in 0..<5 {
            let started = Date()
            let heartbeat = try await server.request(.GET, "/__heartbeat__")
            let elapsed = Date().timeIntervalSince(started)
            #expect(elapsed < 1, "\(elapsed) s")
            #expect(heartbeat.status == 200, "\(heartbeat.body)")
            #expect(heartbeat.headers.first(name: "Content-Type") == "application/json")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(heartbeat.body.utf8)) as? [String: Any])
            #expect(json["status"] as? String == "ok")
            #expect((json["checks"] as? [String: Any])?["storage"] as? String == "ok")
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        // Storage's check now takes 3 s: past the 250 ms a result is reused, a probe starts a run
        // and is answered with the latest result meanwhile.
        storage.checkDelay = 3
        try await Task.sleep(nanoseconds: 300_000_000)
        let started = Date()
        let heartbeat = try await server.request(.GET, "/__heartbeat__")
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 1, "the probe waited \(elapsed) s for a check")
        #expect(heartbeat.status == 200 && heartbeat.body.contains(#""storage":"ok""#), "\(heartbeat.body)")
        #expect(storage.checksStarted > 0)
        storage.checkDelay = 0

        throttler.release()
        #expect(try await held.value.status == 200)
        #expect(try await queued.value.status == 200)
        try await server.stop()
    }

    /// A refused bomb gives back everything it reserved: the in-flight gauge, sampled after the
    /// refusals, is 0, and a body as large as nearly the whole budget is still taken.
    @Test func refusedBombsGiveBackTheirReservations() async throws {
        let server = try await SentryTests.start {
            $0.maxInflightBytes = 24 << 20
            $0.maxDecompressedBytes = 8 << 20
        }
        var form = MultipartBody()
        form.field("ProductName", "Bomb")
        form.file("upload_file_minidump", [UInt8](repeating: 0, count: 16 << 20))
        var dumpBomb = MultipartBody()
        dumpBomb.field("ProductName", "Bomb")
        dumpBomb.file("upload_file_minidump", Fixtures.bytes("compressed/zeros-64MiB.zst"))
        let event = Array("{\"message\":\"".utf8) + [UInt8](repeating: 0x61, count: 16 << 20) + Array("\"}".utf8)
        let bombs: [(path: String, headers: [(String, String)], body: [UInt8])] = [
            ("/submit", [("Content-Type", form.contentType), ("Content-Encoding", "gzip")], Deflater.compress(form.finished.bytes)),
            ("/submit", [("Content-Type", form.contentType), ("Content-Encoding", "zstd")], Zstd.compress(form.finished.bytes)),
            ("/submit", [("Content-Type", dumpBomb.contentType)], dumpBomb.finished.bytes),
            ("/api/42/store/", [SentryTests.auth, ("Content-Encoding", "gzip")], Deflater.compress(event)),
        ]
        for _ in 0..<2 {
            for bomb in bombs {
                let response = try await server.request(.POST, bomb.path, headers: bomb.headers, body: bomb.body)
                #expect(response.status == 413, "\(bomb.path) \(bomb.headers): \(response.body)")
            }
        }
        // A fresh sample (the sampler samples when started, then every 10 s): only lines from now.
        let before = server.statsd.lines.count
        server.collector.sampler.start()
        var sampled: String?
        for _ in 0..<250 where sampled == nil {
            sampled = server.statsd.lines.dropFirst(before).first { $0.hasPrefix("breakwater.inflight.bytes:") }
            if sampled == nil { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        #expect(sampled == "breakwater.inflight.bytes:0|g")
        // 23 MiB on the wire: taken only if the bombs left less than 1 MiB of the 24 MiB reserved.
        var big = MultipartBody()
        big.field("ProductName", "Big")
        big.file("upload_file_minidump", [UInt8](repeating: 7, count: 23 << 20))
        let id = try BreakpadIntakeTests.crashID(of: try await server.submit(big.finished))
        #expect(server.captured[id]?.dumps.first?.bytes.readableBytes == 23 << 20)
        try await server.stop()
    }
}

/// A throttler that holds every crash until released: it runs before a crash hands its CPU slot
/// on (`WorkerPool.nowWaitingOnIO`), so a held crash keeps its worker's only slot.
final class BlockingThrottler: Throttler, @unchecked Sendable {
    private let gate = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var count = 0

    /// Crashes that reached the throttler.
    var entered: Int { lock.withLock { count } }

    func release() { gate.signal() }

    func throttle(_ crash: CrashReport) -> ThrottleDecision {
        lock.withLock { count += 1 }
        gate.wait()
        gate.signal()
        return ThrottleDecision(.accept, rule: "blocking")
    }
}

/// Storage that keeps nothing and whose health check takes `checkDelay` seconds (a hung backend).
final class SlowCheckStorage: CrashStorage, @unchecked Sendable {
    private let lock = NSLock()
    private var delay = 0.0
    private var started = 0

    var checkDelay: Double {
        get { lock.withLock { delay } }
        set { lock.withLock { delay = newValue } }
    }

    /// Checks begun while `checkDelay` was set.
    var checksStarted: Int { lock.withLock { started } }

    func save(_ crash: StoredCrash) throws {}

    func check() -> HealthStatus {
        let seconds = lock.withLock { () -> Double in
            if delay > 0 { started += 1 }
            return delay
        }
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
        return .ok
    }

    func crashIDs(onDate date: String) throws -> [String] { [] }
}
