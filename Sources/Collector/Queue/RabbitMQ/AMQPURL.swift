import Foundation

/// A parsed `amqp://` or `amqps://` URL (the RabbitMQ URI spec): user, password, host, port and
/// vhost, with the spec's defaults (guest/guest, 5672 or 5671, vhost `/`).
struct AMQPURL: Sendable {
    var tls: Bool
    var host: String
    var port: Int
    var user: String
    var password: String
    var vhost: String
    /// The URL as given, password masked: the only form that goes into errors and logs.
    var masked: String

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    init(_ string: String) throws {
        masked = CollectorConfiguration.maskingPassword(in: string)
        guard let parts = URLComponents(string: string), let scheme = parts.scheme?.lowercased(),
              scheme == "amqp" || scheme == "amqps" else {
            throw Invalid(description: "RabbitMQ URL must look like amqp://user:password@host:port/vhost or amqps://…, got \(masked.debugDescription)")
        }
        tls = scheme == "amqps"
        host = parts.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = parts.port ?? (tls ? 5671 : 5672)
        user = parts.user ?? "guest"
        password = parts.password ?? "guest"
        // The path is the percent-encoded vhost ("%2f" is "/"); no path means the default vhost.
        let path = parts.percentEncodedPath
        if path.isEmpty || path == "/" {
            vhost = "/"
        } else {
            vhost = String(path.dropFirst()).removingPercentEncoding ?? String(path.dropFirst())
        }
    }
}
