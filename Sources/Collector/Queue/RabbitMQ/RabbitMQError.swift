/// Why a RabbitMQ operation failed. Carries the URL with its password masked, never the secret.
public struct RabbitMQError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// TCP, TLS or AMQP handshake failed: the broker may be down.
        case connect
        /// The broker refused the login: wrong user, password or vhost.
        case login
        /// The broker refused to declare the queue (for example it exists with other arguments).
        case declare
        /// The broker refused or returned the message: it surely does not have it.
        case rejected
        /// The message was sent but no confirm came back: the broker may or may not have it,
        /// so publishing it again may make a duplicate.
        case unconfirmed
        /// No connection attempt was made: the last one failed and the backoff has not elapsed.
        case backingOff
        /// No pooled connection became free in time.
        case busy
    }

    public let kind: Kind
    public let url: String
    public let message: String

    public var description: String { "RabbitMQ at \(url): \(message)" }
}

extension RabbitMQError: DefinitiveFailure {
    /// A refused login or a queue that cannot be declared is configuration; the rest may pass.
    public var isDefinitive: Bool { kind == .login || kind == .declare }
}
