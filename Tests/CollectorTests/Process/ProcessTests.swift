import Foundation
import Testing
@testable import Collector

/// The executable as operators run it: a bare start, check-config, SIGTERM.
@Suite(.serialized) struct ProcessTests {
    @Test func sigtermFinishesARequestStillArriving() async throws {
        let collector = try await CollectorProcess()
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", Fixtures.bytes("linux-mini.dmp"))
        let body = form.finished.bytes
        let connection = try RawConnection(port: collector.port)
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: body.count))
        connection.send(Array(body.prefix(1000)))
        try await Task.sleep(nanoseconds: 200_000_000)
        collector.signal(SIGTERM)
        try await Task.sleep(nanoseconds: 300_000_000)
        connection.send(Array(body.dropFirst(1000)))
        let answer = connection.readAll(timeout: 5)
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(answer.contains("CrashID=bp-"))
        #expect(await collector.waitForExit(timeout: 10) == 0)
        let log = collector.log
        #expect(log.contains("\"Type\":\"crash\""))
        #expect(log.contains("\"outcome\":\"accepted\""))
        // After SIGTERM nothing new is accepted.
        #expect((try? RawConnection(port: collector.port)) == nil)
    }

    /// A statsd host that does not resolve turns statsd off: said once at start, not silently.
    @Test func anUnresolvableStatsdHostIsAStartupWarning() async throws {
        let collector = try await CollectorProcess(environment: ["STATSD_HOST": "statsd.invalid"])
        collector.signal(SIGTERM)
        #expect(await collector.waitForExit(timeout: 10) == 0)
        let warning = collector.log.split(separator: "\n").first { $0.contains("STATSD_HOST does not resolve") }
        #expect(warning?.contains("statsd.invalid") == true && warning?.contains("\"Severity\":4") == true, "\(collector.log.prefix(2000))")
    }

    @Test func bareStartAnswersACrash() async throws {
        let collector = try await CollectorProcess()
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let connection = try RawConnection(port: collector.port)
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: form.finished.bytes.count, extra: "Connection: close\r\n"))
        connection.send(form.finished.bytes)
        #expect(connection.readAll(timeout: 5).contains("CrashID=bp-"))
        collector.signal(SIGINT)
        #expect(await collector.waitForExit(timeout: 10) == 0)
    }

    /// rabbitmq-c, and the OpenSSL it brings, are loaded only by a collector whose queue is
    /// RabbitMQ (about 1.7 MB resident otherwise); that collector still queues its crashes.
    @Test func rabbitMQLibraryIsLoadedOnlyForARabbitMQQueue() async throws {
        let plain = try await CollectorProcess()
        let maps = try plain.mappedFiles()
        #expect(maps.contains("libc.so"))
        #expect(!maps.contains("librabbitmq") && !maps.contains("libcrypto.so") && !maps.contains("libssl.so"))
        plain.signal(SIGTERM)
        #expect(await plain.waitForExit(timeout: 10) == 0)

        let broker = try RabbitMQTestBroker()
        let queue = broker.uniqueQueue()
        let rabbit = try await CollectorProcess(environment: ["CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": broker.url, "RABBITMQ_QUEUE": queue])
        var form = MultipartBody()
        form.field("ProductName", "Test")
        let connection = try RawConnection(port: rabbit.port)
        connection.send(RawConnection.head(contentType: form.contentType, contentLength: form.finished.bytes.count, extra: "Connection: close\r\n"))
        connection.send(form.finished.bytes)
        let answer = connection.readAll(timeout: 5)
        let id = try #require(answer.range(of: "CrashID=bp-").map { String(answer[$0.upperBound...].prefix(36)) })
        #expect(try broker.drain(queue).map(\.body) == [id])
        #expect(try rabbit.mappedFiles().contains("librabbitmq.so.4"))
        rabbit.signal(SIGTERM)
        #expect(await rabbit.waitForExit(timeout: 10) == 0)
        try broker.delete(queue)

        // A library that cannot be loaded is a start-up error that names it, not an outage.
        let folder = try Tools.temporaryFolder("no-rabbitmq")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = FileManager.default.createFile(atPath: folder + "/librabbitmq.so.4", contents: Data("not a library".utf8))
        let refused = try Tools.run(CollectorProcess.executable.path, ["serve"], cwd: CollectorProcess.root.path, environment: [
            "LD_LIBRARY_PATH": folder, "CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": broker.url, "RABBITMQ_QUEUE": queue,
            "PORT": String(Tools.freePort()), "STATSD_PORT": "9", "PATH": "/usr/bin:/bin"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("CRASHQUEUE=rabbitmq needs librabbitmq.so.4"), "\(refused.output)")
    }

    @Test func checkConfigMasksSecretsAndRefusesBadValues() throws {
        func run(_ env: [String: String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = CollectorProcess.executable
            p.arguments = ["check-config"]
            p.currentDirectoryURL = CollectorProcess.root
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let (ok, text) = try run(["AWS_SECRET_ACCESS_KEY": "hunter2secret", "SUBMITTER_TOKEN": "tok3n",
                                  "RABBITMQ_URL": "amqp://user:pa55word@broker:5672/vhost"])
        #expect(ok == 0)
        #expect(text.contains("AWS_SECRET_ACCESS_KEY=********"))
        #expect(text.contains("RABBITMQ_URL=amqp://user:********@broker:5672/vhost"))
        #expect(!text.contains("hunter2secret") && !text.contains("tok3n") && !text.contains("pa55word"))
        #expect(text.contains("route: POST /submit"))
        let (bad, message) = try run(["WORKERS": "many"])
        #expect(bad != 0)
        #expect(message.contains("WORKERS") && message.contains("many"))
    }

    /// `check-config` and `spool list` run beside a collector serving the same `SPOOL_DIR` (only the
    /// serving collector locks it; a second one refuses to start); `check-config` reports a backend
    /// that is down (exit 1, password masked) instead of stopping on it.
    @Test func toolsRunBesideAServingCollectorAndCheckConfigReportsADownBackend() async throws {
        let spool = try Tools.temporaryFolder("spool")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let collector = try await CollectorProcess(environment: ["SPOOL_DIR": spool])
        let env = ["SPOOL_DIR": spool, "PATH": "/usr/bin:/bin", "STATSD_PORT": "9"]
        let tool = CollectorProcess.executable.path, cwd = CollectorProcess.root.path

        let check = try Tools.run(tool, ["check-config"], cwd: cwd, environment: env)
        #expect(check.status == 0 && check.output.contains("check spool: ok"), "\(check.output)")
        let down = try Tools.run(tool, ["check-config"], cwd: cwd, environment: env.merging(
            ["CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": "amqp://u:n0tsecret@127.0.0.1:1/"]) { $1 })
        #expect(down.status == 1 && down.output.contains("check queue: error"), "\(down.output)")
        #expect(!down.output.contains("n0tsecret"))
        let list = try Tools.run(tool, ["spool", "list"], cwd: cwd, environment: env)
        #expect(list.status == 0 && list.output == "CRASH_ID\tSTATE\tATTEMPTS\tAGE_S\tLAST_ERROR\n", "\(list.output)")
        let second = try Tools.run(tool, ["serve"], cwd: cwd, environment: env.merging(["PORT": String(Tools.freePort())]) { $1 })
        #expect(second.status != 0 && second.output.contains("in use by another collector"), "\(second.output)")

        collector.signal(SIGTERM)
        #expect(await collector.waitForExit(timeout: 10) == 0)
    }

    /// `breakwater republish --date` puts every crash stored on that date on the queue.
    @Test func republishADateFromFilesystemStorage() async throws {
        let broker = try RabbitMQTestBroker()
        let queue = broker.uniqueQueue()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("republish-\(UUID().uuidString)").path
        let storage = try FilesystemCrashStorage(root: root)
        let date = Date(timeIntervalSince1970: 1_700_000_000)  // 2023-11-14
        let ids = (0..<3).map { _ in CrashID.make(result: .accept, date: date) }
        for id in ids { try storage.save(StoredCrash(crashID: id, rawCrash: Array("{}".utf8), dumps: [])) }

        let p = Process()
        p.executableURL = CollectorProcess.executable
        p.arguments = ["republish", "--date", "2023-11-14"]
        p.currentDirectoryURL = CollectorProcess.root
        p.environment = ["CRASHQUEUE": "rabbitmq", "RABBITMQ_URL": broker.url, "RABBITMQ_QUEUE": queue,
                         "CRASHSTORAGE": "fs", "CRASHSTORAGE_FS_ROOT": root, "STATSD_PORT": "9", "LOG_LEVEL": "error"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(text.contains("queued 3"))
        #expect(Set(try broker.drain(queue).map(\.body)) == Set(ids))
        try broker.delete(queue)
    }
}
