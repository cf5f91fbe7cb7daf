/// A bearer token and how long Google says it lives.
public struct AccessToken: Sendable {
    public let value: String
    public let lifetime: Double

    public init(value: String, lifetime: Double) {
        self.value = value
        self.lifetime = lifetime
    }
}

/// Where Application Default Credentials get a fresh token: a service-account key file or the
/// metadata server. `fetch` blocks (worker threads only).
public protocol AccessTokenSource: Sendable {
    func fetch() throws -> AccessToken
    /// For messages: the account or the server, never a secret.
    var description: String { get }
}

/// A token request that failed. `rejected` when the token endpoint refused the credentials
/// (a revoked key, a wrong account): start-up stops on it, whereas an unreachable endpoint is an
/// outage. Never carries the key, the assertion or a token.
public struct GoogleAuthError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public let rejected: Bool

    public init(_ description: String, rejected: Bool) {
        self.description = description
        self.rejected = rejected
    }
}
