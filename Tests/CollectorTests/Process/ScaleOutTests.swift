import AsyncHTTPClient
import Foundation
import Testing
@testable import Collector
import CrashClient

/// Two `breakwater serve` processes behind Debian's nginx on loopback sharing one S3 bucket (moto)
/// and one RabbitMQ queue (docs/operations.md, "Scale-out"): every crash gets one unique crash ID,
/// one audit line on exactly one process, one raw crash in the bucket and one message on the
/// queue; throughput through one upstream and through two is measured and printed.
@Suite struct ScaleOutTests {
    /// A collector process writing its log lines to a file.
    final class CollectorProcess {
        let port = Tools.freePort()
        let log: String
        let process = Process()

        init(folder: String, name: String, backends: [String: String]) throws {
            log = folder + "/\(name).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: Tools.breakwater)
            process.arguments = ["serve"]
            process.currentDirectoryURL = Tools.root
            process.environment = ["PORT": String(port), "WORKERS": "4", "LOG_LEVEL": "info", "STATSD_PORT": "9",
                                   "DYNO": name, "PATH": "/usr/bin:/bin", "SPOOL_DIR": folder + "/\(name)-spool"].merging(backends) { $1 }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        /// SIGTERM, then waits for the drain to finish.
        func stop() {
            process.terminate()
            process.waitUntilExit()
        }

        /// The `Fields` of its audit lines.
        func auditLines() throws -> [[String: Any]] {
            try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      obj["Type"] as? String == "crash" else { return nil }
                return obj["Fields"] as? [String: Any]
            }
        }
    }

    static func nginxConfig(folder: String, one: Int, two: Int, upstreams: [Int]) -> String {
        """
        worker_processes 1;
        daemon off;
        pid \(folder)/nginx.pid;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path \(folder)/body;
            proxy_temp_path \(folder)/proxy;
            fastcgi_temp_path \(folder)/fastcgi;
            uwsgi_temp_path \(folder)/uwsgi;
            scgi_temp_path \(folder)/scgi;
            client_max_body_size 30m;
            upstream one { server 127.0.0.1:\(upstreams[0]); keepalive 16; }
            upstream two { \(upstreams.map { "server 127.0.0.1:\($0);" }.joined(separator: " ")) keepalive 16; }
            server {
                listen 127.0.0.1:\(one);
                location / { proxy_pass http://one; proxy_http_version 1.1; proxy_set_header Connection ""; }
            }
            server {
                listen 127.0.0.1:\(two);
                location / { proxy_pass http://two; proxy_http_version 1.1; proxy_set_header Connection ""; }
            }
        }
        """
    }

    static func waitForHeartbeat(_ client: HTTPClient, port: Int) async throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let response = try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/__lbheartbeat__"), timeout: .seconds(1)),
               response.status == .ok { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        Issue.record("nothing answers on port \(port)")
    }

    /// Accepted crashes per second with `clients` concurrent clients each posting one after another.
    static func throughput(url: String, crashes: Int, clients: Int) async -> Double {
        let submitter = CrashSubmitter(url: url)
        let started = Date()
        let accepted = await withTaskGroup(of: Int.self) { group in
            for c in 0..<clients {
                group.addTask {
                    var ok = 0
                    for i in stride(from: c, to: crashes, by: clients) {
                        if await submitter.submit(.synthetic(index: i, size: 16384)).status == 200 { ok += 1 }
                    }
                    return ok
                }
            }
            return await group.reduce(0, +)
        }
        return Double(accepted) / Date().timeIntervalSince(started)
    }

    @Test func twoProcessesBehindNginx() async throws {
        let nginx = try #require(Tools.which("nginx"), "nginx missing: apt-get install nginx (scripts/test does)")
        let s3 = try S3TestEnvironment.load()
        let broker = try RabbitMQTestBroker()
        let queue = broker.uniqueQueue()
        let backends = ["CRASHSTORAGE": "s3", "CRASHSTORAGE_S3_BUCKET": s3.bucket, "CRASHSTORAGE_S3_ENDPOINT": s3.endpoint,
                        "AWS_ACCESS_KEY_ID": s3.accessKeyID, "AWS_SECRET_ACCESS_KEY": s3.secretAccessKey,
                        "CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": broker.url, "RABBITMQ_QUEUE": queue]
        let folder = try Tools.temporaryFolder("scaleout")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let collectors = [try CollectorProcess(folder: folder, name: "web.1", backends: backends),
                          try CollectorProcess(folder: folder, name: "web.2", backends: backends)]
        let one = Tools.freePort(), two = Tools.freePort()
        try Self.nginxConfig(folder: folder, one: one, two: two, upstreams: collectors.map(\.port))
            .write(toFile: folder + "/nginx.conf", atomically: true, encoding: .utf8)
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: nginx)
        proxy.arguments = ["-p", folder, "-c", folder + "/nginx.conf", "-e", folder + "/error.log"]
        try proxy.run()
        defer {
            proxy.terminate()
            proxy.waitUntilExit()
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        for port in collectors.map(\.port) + [one, two] { try await Self.waitForHeartbeat(client, port: port) }

        // Correctness: crashes spread over both processes, each answered once with its own ID.
        let answers = try await CrashSubmitter(url: "http://127.0.0.1:\(two)/submit").run(count: 40, rate: 40) {
            .synthetic(index: $0, size: 4096)
        }
        let ids = answers.compactMap { $0.status == 200 ? String($0.body.dropFirst("CrashID=bp-".count).dropLast()) : nil }
        #expect(ids.count == 40)
        #expect(Set(ids).count == ids.count, "duplicate crash IDs")

        // Throughput: the same load through one upstream, then through two.
        let single = await Self.throughput(url: "http://127.0.0.1:\(one)/submit", crashes: 400, clients: 16)
        let double = await Self.throughput(url: "http://127.0.0.1:\(two)/submit", crashes: 400, clients: 16)
        print("scale-out throughput (accepted crashes/s, 16 KiB, 16 clients): 1 process \(Int(single)), 2 processes \(Int(double))")
        #expect(single > 0 && double > 0)
        try await client.shutdown()

        for collector in collectors { collector.stop() }
        let audits = try collectors.map { try $0.auditLines() }
        for id in ids {
            let seen = audits.map { lines in lines.filter { $0["crash_id"] as? String == id } }
            #expect(seen.map(\.count).reduce(0, +) == 1, "\(id) audited \(seen.map(\.count)) times")
            #expect(seen.joined().first?["outcome"] as? String == "accepted")
        }
        let perProcess = audits.map { lines in lines.filter { ids.contains($0["crash_id"] as? String ?? "") }.count }
        #expect(perProcess.allSatisfy { $0 > 0 }, "one process got nothing: \(perProcess)")
        #expect(audits.joined().allSatisfy { $0["dyno"] != nil })

        // The shared backends hold each crash once: its raw crash in the bucket, its ID on the queue.
        let bucket = try s3.client()
        for id in ids {
            let stored = try await bucket.send(.GET, key: StorageKeys.rawCrash(id)).get()
            #expect(stored.status == 200, "\(id) not in the bucket")
        }
        let messages = try broker.drain(queue).map(\.body)
        let accepted = audits.joined().compactMap { $0["crash_id"] as? String }
        #expect(Set(ids).isSubset(of: Set(messages)), "crash IDs missing from the queue")
        #expect(messages.count == Set(messages).count, "duplicated messages on the queue")
        #expect(Set(messages) == Set(accepted), "queue and audit lines disagree")
        try broker.delete(queue)
    }
}
