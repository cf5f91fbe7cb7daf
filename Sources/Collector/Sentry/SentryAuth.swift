import Foundation

/// Who sent a Sentry request: the project from the path and the client's public key, from
/// `X-Sentry-Auth: Sentry sentry_key=…, sentry_version=…, sentry_client=…`, the same in
/// `Authorization: Sentry …`, or `sentry_key` query parameters (Crashpad upload URLs); failing
/// those, an envelope's own `dsn` header (Sentry's `tunnel` option and forwarding proxies).
public struct SentryAuth: Sendable, Equatable {
    public var project: String
    public var key: String
    public var client: String?

    /// Sentry project ids are unsigned 64-bit integers: at most 20 digits.
    public static let maxProjectDigits = 20

    /// The project of a request to `<prefix>/<project>/<endpoint>/`: 1 to 20 ASCII digits, else nil.
    static func project(of request: CollectorRequest) -> Substring? {
        let segments = request.path.split(separator: "/")
        // Bytes, not Characters: `1️⃣` and `1` + U+0301 are single Characters between "0" and "9".
        guard segments.count >= 2, let project = segments.dropLast().last, project.utf8.count <= maxProjectDigits,
              project.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return project
    }

    /// Reads and checks the auth of a request to `<prefix>/<project>/<endpoint>/`. With a key
    /// table, the project must be listed with that key (403 otherwise); without, any well-formed key passes.
    /// - Parameter envelopeDSN: the `dsn` of an envelope's header, read when the request names no
    ///   key; its project must be the path's.
    public static func authorize(_ request: CollectorRequest, projectKeys: [String: String], envelopeDSN: String? = nil) throws -> SentryAuth {
        guard let project = project(of: request) else { throw Malformed("invalid_project") }
        var fields = request.queryItems
        if let header = request.header("X-Sentry-Auth") ?? request.header("Authorization"),
           header.lowercased().hasPrefix("sentry ") {
            for pair in header.dropFirst(7).split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if kv.count == 2 { fields[kv[0]] = kv[1] }
            }
        }
        if fields["sentry_key"] == nil, let envelopeDSN {
            guard let dsn = URLComponents(string: envelopeDSN), let user = dsn.user,
                  dsn.path.split(separator: "/").last == project else { throw Malformed("invalid_auth", status: 401) }
            fields["sentry_key"] = user
        }
        guard let key = fields["sentry_key"], !key.isEmpty else { throw Malformed("missing_auth", status: 401) }
        guard key.utf8.count <= 64, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw Malformed("invalid_auth", status: 401)
        }
        if !projectKeys.isEmpty {
            guard let allowed = projectKeys[String(project)] else { throw Malformed("unknown_project", status: 403) }
            guard allowed == key else { throw Malformed("unknown_key", status: 403) }
        }
        return SentryAuth(project: String(project), key: key, client: fields["sentry_client"])
    }
}
