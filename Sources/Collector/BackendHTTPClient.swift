import AsyncHTTPClient
import NIOCore

/// The HTTP client settings of every backend that speaks HTTP (S3, GCS, Pub/Sub, Google's token
/// endpoints), in one place.
enum BackendHTTPClient {
    /// Connections to one host at once. AsyncHTTPClient's default, 8, is a hard cap for these
    /// requests, and a request's deadline counts its wait for a connection: eight large uploads
    /// made every other save, the outbox's and the heartbeat's, time out in the queue. The threads
    /// that send (the worker pool, the outbox mover, the heartbeat) bound the connections instead.
    static let connectionsPerHost = 1_024

    /// No connection-level retries: after failed connects AsyncHTTPClient backs off up to a minute
    /// before trying again, so after an S3 outage of ~20 s the collector stayed cut off for up to a
    /// minute more (found by the fault suite). A failed connect fails the request at once;
    /// `CrashSaver`, the outbox and the publisher have their own retry policy. No redirects, no
    /// decompression: a backend's 3xx is not a success, and bodies are passed on as they are.
    static func make(timeout: TimeAmount) -> HTTPClient {
        var pool = HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(60))
        pool.retryConnectionEstablishment = false
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
        return HTTPClient(eventLoopGroupProvider: .singleton,
                          configuration: .init(redirectConfiguration: .disallow,
                                               timeout: .init(connect: timeout, read: timeout),
                                               connectionPool: pool, decompression: .disabled))
    }
}
