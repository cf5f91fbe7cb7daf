import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One Google REST API (Cloud Storage's JSON API, Pub/Sub) on one pooled AsyncHTTPClient, each
/// request with its own deadline and, outside an emulator, a bearer token from `credentials`.
/// Requests are futures, as with `S3Client`; callers on worker threads wait for them.
public final class GoogleAPIClient: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let body: ByteBuffer
    }

    /// `https://storage.googleapis.com`, `https://pubsub.googleapis.com` or an emulator's address.
    public let baseURL: String
    /// nil against an emulator: Google's libraries send no credentials there either.
    public let credentials: AccessTokenCache?
    private let http: HTTPClient
    private let requestTimeout: TimeAmount
    /// Added to a request's deadline per MiB of body, as for S3: a big dump is not refused for being big.
    private let timeoutPerMiB: Double

    public struct InvalidAddress: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - baseURL: scheme, host and port, no path.
    ///   - requestTimeout: seconds allowed to each request, connecting included.
    ///   - timeoutPerMiB: seconds added to a request's deadline per MiB of its body.
    public init(baseURL: String, credentials: AccessTokenCache?, requestTimeout: Double, timeoutPerMiB: Double = 0) throws {
        guard let url = URLComponents(string: baseURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/" else {
            throw InvalidAddress(description: "expected http(s)://host[:port], got \(baseURL.debugDescription)")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.credentials = credentials
        self.requestTimeout = .nanoseconds(Int64(requestTimeout * 1e9))
        self.timeoutPerMiB = timeoutPerMiB
        http = BackendHTTPClient.make(timeout: self.requestTimeout)
    }

    /// A client as configured: plain HTTP without credentials to an emulator (`host:port`, or a
    /// URL as `STORAGE_EMULATOR_HOST` often is), else `service` with Application Default Credentials.
    public static func configured(_ config: CollectorConfiguration, emulator: String, emulatorVariable: String, service: String,
                                  timeout: Double, timeoutPerMiB: Double = 0) throws -> GoogleAPIClient {
        do {
            if !emulator.isEmpty {
                let url = emulator.contains("://") ? emulator : "http://\(emulator)"
                return try GoogleAPIClient(baseURL: url, credentials: nil, requestTimeout: timeout, timeoutPerMiB: timeoutPerMiB)
            }
            let credentials = try ApplicationDefaultCredentials.tokenCache(keyFile: config.googleApplicationCredentials,
                                                                           metadataHost: config.gceMetadataHost)
            return try GoogleAPIClient(baseURL: service, credentials: credentials, requestTimeout: timeout, timeoutPerMiB: timeoutPerMiB)
        } catch let error as InvalidAddress {
            throw Backends.StartupError("\(emulatorVariable): \(error)")
        }
    }

    /// The pooled client must be shut down before it goes away; nothing waits for it.
    deinit {
        http.shutdown { _ in }
    }


    /// Sends one request and returns the response whatever its status; fails only on transport
    /// errors, timeouts and credentials that cannot be had. Blocks while a token is fetched, so it
    /// is called from worker threads, never from an event loop.
    /// - Parameter pathAndQuery: already percent-encoded, starting with `/`.
    public func send(_ method: HTTPMethod, _ pathAndQuery: String, contentType: String? = nil,
                     body: ByteBuffer? = nil) -> EventLoopFuture<Response> {
        do {
            var headers = HTTPHeaders()
            if let credentials { headers.add(name: "Authorization", value: "Bearer \(try credentials.token())") }
            if let contentType { headers.add(name: "Content-Type", value: contentType) }
            let request = try HTTPClient.Request(url: baseURL + pathAndQuery, method: method, headers: headers,
                                                 body: body.map { .byteBuffer($0) })
            let allowance = TimeAmount.nanoseconds(Int64(timeoutPerMiB * Double(body?.readableBytes ?? 0) / 1_048_576 * 1e9))
            return http.execute(request: request, deadline: .now() + requestTimeout + allowance).map {
                Response(status: Int($0.status.code), body: $0.body ?? ByteBuffer())
            }
        } catch {
            return http.eventLoopGroup.next().makeFailedFuture(error)
        }
    }

    /// `send`, then a `GoogleAPIError` unless the status is 2xx; the body of a success.
    public func call(_ operation: String, _ method: HTTPMethod, _ pathAndQuery: String, contentType: String? = nil,
                     body: ByteBuffer? = nil) -> EventLoopFuture<ByteBuffer> {
        send(method, pathAndQuery, contentType: contentType, body: body).flatMapThrowing { response in
            guard (200..<300).contains(response.status) else {
                throw GoogleAPIError(operation: operation, status: response.status, body: response.body)
            }
            return response.body
        }
    }

    /// An event loop of the client's group, for combining its futures.
    public var eventLoop: EventLoop { http.eventLoopGroup.next() }

    /// Percent-encodes one path segment or query value (an object name's `/` included).
    public static func encode(_ component: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return component.addingPercentEncoding(withAllowedCharacters: allowed) ?? component
    }
}
