import CRabbitMQ
import Foundation
import Telemetry

/// One rabbitmq-c connection with one channel in publisher-confirm mode. rabbitmq-c connections
/// are not thread-safe: an instance is used by one thread at a time (`AMQPConnectionPool` sees to it).
/// Any failure that may leave the protocol state unknown marks it broken; it is then only closed.
final class AMQPConnection {
    /// Heartbeat negotiated with the broker. rabbitmq-c only handles heartbeats inside library
    /// calls, so a connection idle longer than this is presumed dropped by the broker.
    static let heartbeatSeconds: Int32 = 60
    /// Where amqps:// finds trusted CAs by default: rabbitmq-c does not load OpenSSL's default paths.
    static let systemCABundle = ProcessInfo.processInfo.environment["SSL_CERT_FILE"] ?? "/etc/ssl/certs/ca-certificates.crt"

    let url: AMQPURL
    private let amqp: breakwater_amqp_functions
    let state: amqp_connection_state_t
    let channel: amqp_channel_t = 1
    private(set) var isBroken = false
    private(set) var lastUsed = MonotonicClock.now()
    private var deliveryTag: UInt64 = 0

    /// Connects, logs in, opens the channel, turns confirms on and declares `queue` durable.
    /// - Parameter caBundle: PEM file of the CAs trusted for amqps:// (the peer and its host name are verified).
    init(url: AMQPURL, queue: String, timeout: Double, caBundle: String = systemCABundle) throws {
        self.url = url
        let amqp = try RabbitMQLibrary.loaded.get()
        self.amqp = amqp
        guard let state = amqp.amqp_new_connection() else { throw RabbitMQError(kind: .connect, url: url.masked, message: "out of memory") }
        self.state = state
        try open(queue: queue, timeout: timeout, caBundle: caBundle)
    }

    deinit {
        if !isBroken {
            _ = amqp.amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
            _ = amqp.amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        _ = amqp.amqp_destroy_connection(state)
    }

    var idleSeconds: Double { Double(MonotonicClock.now() - lastUsed) / 1e9 }

    /// Gives the connection up without the close handshake, which would only wait out the RPC
    /// timeout on a connection the broker has likely dropped.
    func abandon() { isBroken = true }

    private func open(queue: String, timeout: Double, caBundle: String) throws {
        guard let socket = url.tls ? amqp.amqp_ssl_socket_new(state) : amqp.amqp_tcp_socket_new(state) else {
            throw failure(.connect, "cannot create a socket")
        }
        if url.tls {
            amqp.amqp_ssl_socket_set_verify_peer(socket, 1)
            amqp.amqp_ssl_socket_set_verify_hostname(socket, 1)
            try check(amqp.amqp_ssl_socket_set_cacert(socket, caBundle), .connect, "cannot load CA bundle \(caBundle)")
        }
        var tv = Self.duration(timeout)
        // Both refuse only a negative time, which `duration` never makes.
        _ = amqp.amqp_set_handshake_timeout(state, &tv)
        _ = amqp.amqp_set_rpc_timeout(state, &tv)
        try check(amqp.amqp_socket_open_noblock(socket, url.host, Int32(url.port), &tv), .connect, "cannot connect to \(url.host):\(url.port)")
        try reply(breakwater_amqp_login(amqp, state, url.vhost, 0, 131_072, Self.heartbeatSeconds, url.user, url.password),
                  .login, "login as \(url.user.debugDescription) to vhost \(url.vhost.debugDescription) failed")
        _ = amqp.amqp_channel_open(state, channel)
        try reply(amqp.amqp_get_rpc_reply(state), .connect, "cannot open a channel")
        _ = amqp.amqp_confirm_select(state, channel)
        try reply(amqp.amqp_get_rpc_reply(state), .connect, "cannot turn publisher confirms on")
        queue.withCString { name in
            _ = amqp.amqp_queue_declare(state, channel, amqp.amqp_cstring_bytes(name), 0, 1, 0, 0, Self.emptyTable)
        }
        try reply(amqp.amqp_get_rpc_reply(state), .declare, "cannot declare durable queue \(queue.debugDescription) (does it exist with other arguments?)")
    }

    /// Publishes `body` persistently to `queue` through the default exchange and waits up to
    /// `timeout` seconds for the broker's confirm. `mandatory` makes a missing queue an error
    /// instead of a silent drop.
    func publish(_ body: String, to queue: String, timeout: Double) throws {
        defer { lastUsed = MonotonicClock.now(); amqp.amqp_maybe_release_buffers(state) }
        var props = amqp_basic_properties_t()
        props._flags = amqp_flags_t(AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG)
        props.delivery_mode = 2
        let status: Int32 = "text/plain".withCString { contentType in
            props.content_type = amqp.amqp_cstring_bytes(contentType)
            return queue.withCString { routingKey in
                var utf8 = Array(body.utf8)
                return utf8.withUnsafeMutableBytes { bytes in
                    amqp.amqp_basic_publish(state, channel, Self.emptyBytes, amqp.amqp_cstring_bytes(routingKey), 1, 0, &props,
                                       amqp_bytes_t(len: bytes.count, bytes: bytes.baseAddress))
                }
            }
        }
        // A failed write may still have sent part or all of the frames.
        try check(status, .unconfirmed, "publish failed")
        deliveryTag += 1
        try waitForConfirm(of: deliveryTag, timeout: timeout)
    }

    private func waitForConfirm(of tag: UInt64, timeout: Double) throws {
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        var returned: String?
        while true {
            let now = MonotonicClock.now()
            guard now < deadline else { throw failure(.unconfirmed, "no confirm within \(timeout) s") }
            var tv = Self.duration(Double(deadline - now) / 1e9)
            var frame = amqp_frame_t()
            try check(amqp.amqp_simple_wait_frame_noblock(state, &frame, &tv), .unconfirmed, "waiting for the confirm failed")
            // Content frames of a returned message carry nothing we need.
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            let method = frame.payload.method
            switch method.id {
            case Self.basicAck:
                let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                guard ack.delivery_tag >= tag else { continue }
                if let returned { throw RabbitMQError(kind: .rejected, url: url.masked, message: "message returned: \(returned)") }
                return
            case Self.basicNack:
                throw RabbitMQError(kind: .rejected, url: url.masked, message: "the broker refused the message (nack)")
            case Self.basicReturn:
                let ret = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
                returned = "\(ret.reply_code) \(Self.string(ret.reply_text))"
            case Self.channelClose, Self.connectionClose:
                throw failure(.unconfirmed, "the broker closed the connection: \(Self.closeReason(method))")
            default:
                continue
            }
        }
    }

    /// Asks the broker whether `queue` exists: a round trip proving the connection works.
    func ping(queue: String) throws {
        defer { lastUsed = MonotonicClock.now(); amqp.amqp_maybe_release_buffers(state) }
        queue.withCString { name in
            _ = amqp.amqp_queue_declare(state, channel, amqp.amqp_cstring_bytes(name), 1, 0, 0, 0, Self.emptyTable)
        }
        try reply(amqp.amqp_get_rpc_reply(state), .declare, "queue \(queue.debugDescription) is not there")
    }

    // MARK: - rabbitmq-c results

    /// What the library's `amqp_empty_table` and `amqp_empty_bytes` hold: they are variables, which
    /// the function table does not carry.
    static var emptyTable: amqp_table_t { amqp_table_t(num_entries: 0, entries: nil) }
    static var emptyBytes: amqp_bytes_t { amqp_bytes_t(len: 0, bytes: nil) }

    static let basicAck = amqp_method_number_t(0x003C_0050)
    static let basicNack = amqp_method_number_t(0x003C_0078)
    static let basicReturn = amqp_method_number_t(0x003C_0032)
    static let channelClose = amqp_method_number_t(0x0014_0028)
    static let connectionClose = amqp_method_number_t(0x000A_0032)

    /// Marks the connection broken and makes the error.
    private func failure(_ kind: RabbitMQError.Kind, _ message: String) -> RabbitMQError {
        isBroken = true
        return RabbitMQError(kind: kind, url: url.masked, message: message)
    }

    private func check(_ status: Int32, _ kind: RabbitMQError.Kind, _ what: String) throws {
        guard status != AMQP_STATUS_OK.rawValue else { return }
        throw failure(kind, "\(what): \(errorText(status))")
    }

    private func errorText(_ status: Int32) -> String {
        amqp.amqp_error_string2(status).map { String(cString: $0) } ?? "status \(status)"
    }

    func reply(_ r: amqp_rpc_reply_t, _ kind: RabbitMQError.Kind, _ what: String) throws {
        switch r.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            // Only the broker's own answer makes a login or a declare a configuration error: a
            // timeout or a closed socket there is a hung broker or a proxy without one, an outage.
            throw failure(kind == .login || kind == .declare ? .connect : kind, "\(what): \(errorText(r.library_error))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            throw failure(kind, "\(what): \(Self.closeReason(r.reply))")
        default:
            throw failure(kind, "\(what): no reply")
        }
    }

    /// "403 ACCESS_REFUSED - Login was refused…" from a channel.close or connection.close.
    private static func closeReason(_ method: amqp_method_t) -> String {
        switch method.id {
        case connectionClose:
            let c = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return "\(c.reply_code) \(string(c.reply_text))"
        case channelClose:
            let c = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            return "\(c.reply_code) \(string(c.reply_text))"
        default:
            return "unexpected method \(method.id)"
        }
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        guard let p = bytes.bytes, bytes.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: bytes.len), as: UTF8.self)
    }

    private static func duration(_ seconds: Double) -> timeval {
        let s = max(seconds, 0.001)
        return Glibc.timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1e6))
    }
}
