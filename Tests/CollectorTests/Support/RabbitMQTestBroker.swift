import CRabbitMQ
import Foundation
@testable import Collector

/// The private broker started by `scripts/services/rabbitmq.sh start`, and a real consumer
/// (rabbitmq-c `basic.get`) to read what was published.
struct RabbitMQTestBroker {
    struct NotConfigured: Error, CustomStringConvertible {
        let description = """
            BREAKWATER_TEST_RABBITMQ_URL is not set: these tests need a real broker. \
            Run `eval "$(scripts/services/rabbitmq.sh start)"` first, then `swift test --filter RabbitMQ`.
            """
    }

    struct Message {
        var body: String
        var deliveryMode: UInt8
    }

    let url: String
    /// The same broker over TLS (amqps://localhost), and the CA that signed its certificate.
    let tlsURL: String
    let caBundle: String
    private let stopAppCommand: String
    private let startAppCommand: String

    init() throws {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["BREAKWATER_TEST_RABBITMQ_URL"], let tlsURL = env["BREAKWATER_TEST_RABBITMQ_TLS_URL"],
              let ca = env["BREAKWATER_TEST_RABBITMQ_CA"], let stop = env["BREAKWATER_TEST_RABBITMQ_STOP_APP"],
              let start = env["BREAKWATER_TEST_RABBITMQ_START_APP"] else { throw NotConfigured() }
        self.url = url
        self.tlsURL = tlsURL
        caBundle = ca
        stopAppCommand = stop
        startAppCommand = start
    }

    /// A fresh queue name per test, so tests never see each other's messages.
    func uniqueQueue() -> String { "breakwater.test.\(UUID().uuidString.lowercased())" }

    /// Takes the broker down (the Erlang node stays up); clients see their connections closed.
    func stopApp() throws { try run(stopAppCommand) }

    /// Starts the broker again and returns once it answers.
    func startApp() throws { try run(startAppCommand) }

    /// Reads (and acknowledges) every message now in `queue`.
    func drain(_ queue: String) throws -> [Message] {
        let connection = try AMQPConnection(url: AMQPURL(url), queue: queue, timeout: 5)
        var messages: [Message] = []
        while let m = try connection.get(from: queue) { messages.append(m) }
        return messages
    }

    /// Declares `queue` with `durable`, as another application might have; throws on a mismatch.
    func declare(_ queue: String, durable: Bool) throws {
        let connection = try AMQPConnection(url: AMQPURL(url), queue: "breakwater.test.scratch", timeout: 5)
        try connection.declare(queue, durable: durable)
    }

    func delete(_ queue: String) throws {
        let connection = try AMQPConnection(url: AMQPURL(url), queue: queue, timeout: 5)
        _ = queue.withCString { amqp_queue_delete(connection.state, connection.channel, amqp_cstring_bytes($0), 0, 0) }
        try connection.reply(amqp_get_rpc_reply(connection.state), .declare, "cannot delete \(queue)")
    }

    private func run(_ command: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "RabbitMQTestBroker", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(command) exited with \(p.terminationStatus)"])
        }
    }
}

extension AMQPConnection {
    /// `basic.get` with auto-ack: one message, or nil when the queue is empty.
    func get(from queue: String) throws -> RabbitMQTestBroker.Message? {
        defer { amqp_maybe_release_buffers(state) }
        let r = queue.withCString { amqp_basic_get(state, channel, amqp_cstring_bytes($0), 1) }
        try reply(r, .declare, "basic.get failed")
        guard r.reply.id == amqp_method_number_t(0x003C_0047) else { return nil }  // basic.get-ok
        var message = amqp_message_t()
        let read = amqp_read_message(state, channel, &message, 0)
        defer { amqp_destroy_message(&message) }
        try reply(read, .declare, "reading the message failed")
        let hasMode = message.properties._flags & amqp_flags_t(AMQP_BASIC_DELIVERY_MODE_FLAG) != 0
        return .init(body: AMQPConnection.string(message.body), deliveryMode: hasMode ? message.properties.delivery_mode : 0)
    }

    func declare(_ queue: String, durable: Bool) throws {
        _ = queue.withCString {
            amqp_queue_declare(state, channel, amqp_cstring_bytes($0), 0, durable ? 1 : 0, 0, 0, amqp_empty_table)
        }
        try reply(amqp_get_rpc_reply(state), .declare, "cannot declare \(queue)")
    }
}
