import Foundation
import Testing
import Telemetry
@testable import Collector

/// Against the real broker of `scripts/services/rabbitmq.sh`. The tests that take the broker
/// down are in `BrokerOutageTests`, which the test script runs alone.
@Suite(.serialized) struct RabbitMQTests {
    let broker: RabbitMQTestBroker
    let telemetry = Telemetry.silent()

    init() throws { broker = try RabbitMQTestBroker() }

    static func newCrashIDs(_ n: Int, date: Date = Date()) -> [String] {
        (0..<n).map { _ in CrashID.make(result: .accept, date: date) }
    }

    @Test func publishesOnePersistentMessagePerCrashIDOnADurableQueue() throws {
        let name = broker.uniqueQueue()
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: telemetry, poolSize: 3)
        let publisher = QueuePublisher(queue: queue, telemetry: telemetry)
        defer { try? broker.delete(name) }
        let ids = Self.newCrashIDs(40)

        // More threads than pooled connections: each connection is used by one thread at a time.
        let results = Locked([Bool](repeating: false, count: ids.count))
        DispatchQueue.concurrentPerform(iterations: ids.count) { i in
            let ok = publisher.publish(ids[i])
            results.withLock { $0[i] = ok }
        }

        #expect(results.withLock { $0 }.allSatisfy { $0 })
        #expect(queue.check() == .ok)
        let messages = try broker.drain(name)
        #expect(messages.map(\.body).sorted() == ids.sorted())
        #expect(messages.allSatisfy { $0.deliveryMode == 2 }, "persistent")
        // Declaring it non-durable is refused: the queue is durable.
        #expect(throws: RabbitMQError.self) { try broker.declare(name, durable: false) }
    }

    @Test func publishesOverTLSVerifyingTheBrokerCertificate() throws {
        let name = broker.uniqueQueue()
        defer { try? broker.delete(name) }
        let queue = try RabbitMQCrashQueue(url: broker.tlsURL, queue: name, telemetry: telemetry, caBundle: broker.caBundle)
        let ids = Self.newCrashIDs(3)
        for id in ids { try queue.publish(id) }
        #expect(try broker.drain(name).map(\.body) == ids)

        // A CA that did not sign the broker's certificate is refused.
        let error = #expect(throws: RabbitMQError.self) {
            try RabbitMQCrashQueue(url: broker.tlsURL, queue: name, telemetry: telemetry, caBundle: "/etc/ssl/certs/ca-certificates.crt").connect()
        }
        #expect(error.map { "\($0)".contains("amqps://breakwater:********@localhost") } == true, "\(String(describing: error))")
    }

    @Test func aMessageTheBrokerCannotRouteIsAnErrorNotASilentDrop() throws {
        let name = broker.uniqueQueue()
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: telemetry, poolSize: 1)
        try queue.connect()
        try broker.delete(name)
        let error = #expect(throws: RabbitMQError.self) { try queue.publish(Self.newCrashIDs(1)[0]) }
        #expect(error?.kind == .rejected && "\(error!)".contains("NO_ROUTE"), "\(String(describing: error))")
    }

    @Test func aQueueDeclaredWithOtherArgumentsIsAClearStartupError() throws {
        let name = broker.uniqueQueue()
        try broker.declare(name, durable: false)
        defer { try? broker.delete(name) }
        let error = #expect(throws: Backends.StartupError.self) {
            var config = CollectorConfiguration()
            config.crashQueue = "rabbitmq"
            config.rabbitmqURL = broker.url
            config.rabbitmqQueue = name
            return try Backends.queue(config, telemetry: telemetry)
        }
        let text = "\(error!)"
        #expect(text.contains(name) && text.contains("other arguments") && text.contains("durable"), "\(text)")
        #expect(text.contains("********") && !text.contains(password(of: broker.url)), "\(text)")
    }

    @Test func aWrongPasswordIsAClearStartupErrorWithThePasswordMasked() throws {
        var url = URLComponents(string: broker.url)!
        url.password = "not-the-password"
        var config = CollectorConfiguration()
        config.crashQueue = "rabbitmq"
        config.rabbitmqURL = url.string!
        let error = #expect(throws: Backends.StartupError.self) { try Backends.queue(config, telemetry: telemetry) }
        let text = "\(error!)"
        #expect(text.contains(CollectorConfiguration.maskingPassword(in: url.string!)), "\(text)")
        #expect(text.contains("ACCESS_REFUSED") || text.contains("login"), "\(text)")
        #expect(!text.contains("not-the-password"), "\(text)")
    }

    /// An unreachable broker is an outage, not a configuration error: the queue is made (the
    /// collector starts degraded) and its check names the masked URL.
    @Test func anUnreachableHostStartsDegradedWithThePasswordMasked() throws {
        var config = CollectorConfiguration()
        config.crashQueue = "rabbitmq"
        config.rabbitmqURL = "amqp://user:s3cret@127.0.0.1:1/vh"
        let logs = CapturingLogSink()
        let queue = try Backends.queue(config, telemetry: Telemetry(sink: logs, logLevel: .info, statsd: nil))
        guard case .error(let text) = queue.check() else { Issue.record("\(queue.check())"); return }
        #expect(text.contains("amqp://user:********@127.0.0.1:1/vh"), "\(text)")
        #expect(!text.contains("s3cret"), "\(text)")
        #expect(logs.lines.contains { $0.contains("starting degraded") && $0.contains("cannot connect") })
        #expect(!logs.lines.contains { $0.contains("s3cret") })
        let error = #expect(throws: RabbitMQError.self) { try queue.publish(Self.newCrashIDs(1)[0]) }
        #expect(error?.isDefinitive == false)
    }

    /// A listener that closes every connection at once (a load balancer with no broker behind
    /// it, or a broker restarting) is an outage too, not a refused login: the collector starts.
    @Test func aBrokerThatHangsUpAtLoginStartsDegraded() throws {
        let listener = try TCPListener(.hangUp)
        defer { listener.stop() }
        var config = CollectorConfiguration()
        config.crashQueue = "rabbitmq"
        config.rabbitmqURL = "amqp://user:s3cret@127.0.0.1:\(listener.port)/vh"
        let queue = try Backends.queue(config, telemetry: telemetry)
        guard case .error(let text) = queue.check() else { Issue.record("\(queue.check())"); return }
        #expect(!text.contains("s3cret"), "\(text)")
        let error = #expect(throws: RabbitMQError.self) { try queue.publish(Self.newCrashIDs(1)[0]) }
        #expect(error?.isDefinitive == false)
    }

    /// A broker that hangs holds every connection in a publish: the heartbeat cannot ask it, and
    /// reports it down once a publish has failed, not "busy" and healthy.
    @Test func busyConnectionsBehindAFailedPublishAreAnError() async throws {
        let listener = try TCPListener(.hold)
        defer { listener.stop() }
        let queue = try RabbitMQCrashQueue(url: "amqp://user:s3cret@127.0.0.1:\(listener.port)/vh", queue: "q", telemetry: telemetry,
                                           poolSize: 1, connectTimeout: 1)
        #expect(throws: RabbitMQError.self) { try queue.publish(Self.newCrashIDs(1)[0]) }
        try await Task.sleep(nanoseconds: 300_000_000)  // past the reconnect backoff
        let hung = Thread { _ = try? queue.publish(Self.newCrashIDs(1)[0]) }
        hung.start()
        try await Task.sleep(nanoseconds: 200_000_000)
        guard case .error(let text) = queue.check() else { Issue.record("\(queue.check())"); return }
        #expect(text.contains("busy") && text.contains("not answering"), "\(text)")
    }

    @Test func republishPutsEveryCrashOfADateOnTheQueue() throws {
        let name = broker.uniqueQueue()
        defer { try? broker.delete(name) }
        let day = Date(timeIntervalSince1970: 1_764_288_000)  // 2025-11-28
        let ids = Self.newCrashIDs(12, date: day)
        let storage = DatedStorage(byDate: ["20251128": ids, "20251129": Self.newCrashIDs(3)])
        let queue = try RabbitMQCrashQueue(url: broker.url, queue: name, telemetry: telemetry)
        let republisher = Republisher(queue: queue, storage: storage, telemetry: telemetry)

        let report = republisher.republish(try republisher.crashIDs(from: .date("2025-11-28")))

        #expect(report.queued == ids && report.succeeded)
        let messages = try broker.drain(name)
        #expect(messages.map(\.body).sorted() == ids.sorted())
        #expect(messages.allSatisfy { $0.deliveryMode == 2 })
    }

    private func password(of url: String) -> String { URLComponents(string: url)!.password! }
}

/// A queue whose broker is always down.
struct RefusingQueue: CrashQueue {
    func publish(_ crashID: String) throws { throw RabbitMQError(kind: .backingOff, url: "amqp://down", message: "down") }
    func check() -> HealthStatus { .error("down") }
}

/// Storage that only knows which crash IDs it holds per date folder.
struct DatedStorage: CrashStorage {
    let byDate: [String: [String]]
    func save(_ crash: StoredCrash) throws {}
    func check() -> HealthStatus { .ok }
    func crashIDs(onDate date: String) throws -> [String] { byDate[date] ?? [] }
}
