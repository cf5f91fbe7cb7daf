import Foundation
import Logging
import Synchronization
import Telemetry

/// Publishes crash IDs to a durable RabbitMQ queue as persistent messages, each confirmed by
/// the broker (publisher confirms) before `publish` returns.
///
/// Connections come from a small pool, each used by one thread at a time. A connection that
/// failed is dropped and reopened by the next publish that needs it; reconnects back off
/// exponentially across the pool, so a down broker is not hammered by every worker.
public final class RabbitMQCrashQueue: CrashQueue, Sendable {
    public let queueName: String
    /// The URL with its password masked.
    public let maskedURL: String
    private let url: AMQPURL
    private let pool: AMQPConnectionPool
    private let connectTimeout: Double
    private let confirmTimeout: Double
    private let caBundle: String
    private let telemetry: Telemetry
    private let logger: Logger
    /// Shared by every pool slot: one reconnect backoff for the whole pool.
    private struct Reconnect {
        var backoff = Backoff(initial: 0.1, maximum: 5)
        var nextConnect: UInt64 = 0
    }
    private let reconnect = Mutex(Reconnect())
    private let unconfirmed = Atomic<Int>(0)
    /// Whether the last publish that ended failed: with every connection held, the heartbeat
    /// cannot ask the broker itself, and busy connections behind a failure are a broker that hangs.
    private let lastPublishFailed = Atomic<Bool>(false)

    /// Checks the URL only; `connect` is the start-up check (`Backends.queue` applies the start-up rule).
    /// - Parameters:
    ///   - poolSize: connections kept; more workers than this wait their turn.
    ///   - connectTimeout: seconds for TCP, TLS and AMQP handshakes and each RPC.
    ///   - confirmTimeout: seconds to wait for the broker's confirm of one message.
    ///   - caBundle: PEM file of the CAs trusted for amqps://; the system bundle by default.
    public init(url: String, queue: String, telemetry: Telemetry, poolSize: Int = 4,
                connectTimeout: Double = 5, confirmTimeout: Double = 2, caBundle: String? = nil) throws {
        self.url = try AMQPURL(url)
        // A library that cannot be loaded stops start-up with its reason, not as a broker outage.
        _ = try RabbitMQLibrary.loaded.get()
        maskedURL = self.url.masked
        queueName = queue
        self.connectTimeout = connectTimeout
        self.confirmTimeout = confirmTimeout
        self.caBundle = caBundle ?? AMQPConnection.systemCABundle
        self.telemetry = telemetry
        logger = telemetry.logger("breakwater.rabbitmq")
        pool = AMQPConnectionPool(size: poolSize)
    }

    /// Opens a pooled connection and declares the queue: a wrong password or a queue declared
    /// with other arguments fails definitively, an unreachable broker as an outage.
    public func connect() throws {
        _ = try pool.withSlot(timeout: connectTimeout) { slot in _ = try self.connection(in: slot) }
        logger.info("rabbitmq queue ready", metadata: ["url": "\(maskedURL)", "queue": "\(queueName)"])
    }

    /// Publishes that got no confirm: the broker may have them, so a retry may duplicate them.
    public var unconfirmedCount: Int { unconfirmed.load(ordering: .relaxed) }

    public func publish(_ crashID: String) throws {
        let done: Void? = try pool.withSlot(timeout: confirmTimeout) { slot in
            var published = false
            defer { lastPublishFailed.store(!published, ordering: .relaxed) }
            let connection = try self.connection(in: slot)
            do {
                try connection.publish(crashID, to: queueName, timeout: confirmTimeout)
                published = true
            } catch let error as RabbitMQError {
                if connection.isBroken { slot.connection = nil }
                if error.kind == .unconfirmed {
                    unconfirmed.add(1, ordering: .relaxed)
                    logger.warning("publish not confirmed; a retry may duplicate it",
                                   metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
                }
                throw error
            }
        }
        if done == nil { throw RabbitMQError(kind: .busy, url: maskedURL, message: "no free connection within \(confirmTimeout) s") }
    }

    /// Round trip to the broker on a pooled connection: is it up and is the queue there?
    public func check() -> HealthStatus {
        do {
            let done: Void? = try pool.withSlot(timeout: 0.5) { slot in
                let connection = try self.connection(in: slot)
                do {
                    try connection.ping(queue: queueName)
                } catch {
                    if connection.isBroken { slot.connection = nil }
                    throw error
                }
            }
            guard done == nil else { return .ok }
            return lastPublishFailed.load(ordering: .relaxed)
                ? .error("all RabbitMQ connections busy, and the last publish failed: the broker is not answering")
                : .warning("all RabbitMQ connections busy")
        } catch {
            return .error("\(error)")
        }
    }

    /// The slot's open connection, or a new one when it has none, its last one broke, or it sat
    /// idle past the heartbeat (the broker has likely dropped it). Honours the reconnect backoff.
    private func connection(in slot: AMQPConnectionPool.Slot) throws -> AMQPConnection {
        if let c = slot.connection {
            if !c.isBroken && c.idleSeconds < Double(AMQPConnection.heartbeatSeconds) { return c }
            c.abandon()
            slot.connection = nil
        }
        let now = MonotonicClock.now()
        let wait = reconnect.withLock { $0.nextConnect > now ? Double($0.nextConnect - now) / 1e9 : 0 }
        if wait > 0 {
            throw RabbitMQError(kind: .backingOff, url: maskedURL, message: String(format: "reconnecting in %.1f s after a failure", wait))
        }
        do {
            let c = try AMQPConnection(url: url, queue: queueName, timeout: connectTimeout, caBundle: caBundle)
            reconnect.withLock { $0.backoff.reset(); $0.nextConnect = 0 }
            telemetry.count(MetricCatalog.queueReconnect)
            logger.info("rabbitmq connection opened", metadata: ["url": "\(maskedURL)"])
            slot.connection = c
            return c
        } catch {
            reconnect.withLock { $0.nextConnect = MonotonicClock.now() + UInt64($0.backoff.next() * 1e9) }
            throw error
        }
    }
}
