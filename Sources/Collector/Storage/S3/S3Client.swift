import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Just enough of the S3 REST API for crash storage: signed requests on one pooled
/// AsyncHTTPClient (connections are reused), each with its own deadline. Path-style addressing
/// when an endpoint is configured (S3-compatible servers), virtual-hosted style on AWS.
public final class S3Client: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: ByteBuffer
    }

    public let bucket: String
    /// Where requests go, for messages: the endpoint or AWS's regional host.
    public let endpointDescription: String
    private let signer: SigV4Signer
    private let http: HTTPClient
    private let requestTimeout: TimeAmount
    /// Added to a request's deadline per MiB of body: a fixed timeout cannot carry a 100 MiB dump.
    private let timeoutPerMiB: Double
    private let scheme: String
    /// The `Host` header: host, plus the port when it is not the scheme's default.
    private let host: String
    private let pathStyle: Bool

    public struct InvalidEndpoint: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - endpoint: `http(s)://host[:port]` of an S3-compatible server, or empty for AWS.
    ///   - requestTimeout: seconds allowed to each request, connecting included.
    ///   - timeoutPerMiB: seconds added to a request's deadline per MiB of its body.
    public init(bucket: String, endpoint: String, region: String, credentials: SigV4Signer.Credentials,
                requestTimeout: Double, timeoutPerMiB: Double = 0) throws {
        self.timeoutPerMiB = timeoutPerMiB
        self.bucket = bucket
        signer = SigV4Signer(credentials: credentials, region: region)
        if endpoint.isEmpty {
            scheme = "https"
            host = "\(bucket).s3.\(region).amazonaws.com"
            pathStyle = false
        } else {
            guard let url = URLComponents(string: endpoint), let s = url.scheme?.lowercased(), ["http", "https"].contains(s),
                  let h = url.host, !h.isEmpty else {
                throw InvalidEndpoint(description: "CRASHSTORAGE_S3_ENDPOINT must look like http(s)://host[:port], got \(endpoint.debugDescription)")
            }
            scheme = s
            host = url.port.map { "\(h):\($0)" } ?? h
            pathStyle = true
        }
        endpointDescription = "\(scheme)://\(host)"
        self.requestTimeout = .nanoseconds(Int64(requestTimeout * 1e9))
        http = BackendHTTPClient.make(timeout: self.requestTimeout)
    }

    /// The pooled client must be shut down before it goes away; nothing waits for it.
    deinit {
        http.shutdown { _ in }
    }

    /// Sends one signed request and returns the response whatever its status; the future fails
    /// only on transport errors and timeouts.
    public func send(_ method: HTTPMethod, key: String, query: [(String, String)] = [], body: ByteBuffer? = nil,
                     extraHeaders: [(String, String)] = []) -> EventLoopFuture<Response> {
        let path = pathStyle ? "/\(bucket)" + (key.isEmpty ? "" : "/\(key)") : "/\(key)"
        var headers = [("host", host)] + extraHeaders
        let payloadHash: String
        if let body {
            payloadHash = body.withUnsafeReadableBytes { Hex.encode(SHA256.hash(data: $0)) }
            // S3 checks the bytes against both: a body damaged in transit is refused, not stored.
            headers.append(("content-md5", body.withUnsafeReadableBytes { Data(Insecure.MD5.hash(data: $0)).base64EncodedString() }))
        } else {
            payloadHash = SigV4Signer.emptyPayloadHash
        }
        headers.append(("x-amz-content-sha256", payloadHash))
        let signed = signer.sign(method: method.rawValue, path: path, query: query, headers: headers, payloadHash: payloadHash)

        let queryString = SigV4Signer.canonicalQuery(query)
        let url = "\(scheme)://\(host)\(SigV4Signer.canonicalURI(path))" + (queryString.isEmpty ? "" : "?\(queryString)")
        do {
            let request = try HTTPClient.Request(url: url, method: method, headers: HTTPHeaders(signed),
                                                 body: body.map { .byteBuffer($0) })
            return http.execute(request: request, deadline: .now() + deadline(forBodyBytes: body?.readableBytes ?? 0)).map {
                Response(status: Int($0.status.code), headers: $0.headers, body: $0.body ?? ByteBuffer())
            }
        } catch {
            return http.eventLoopGroup.next().makeFailedFuture(error)
        }
    }

    /// The request timeout plus the per-MiB allowance for a body of `bytes`.
    func deadline(forBodyBytes bytes: Int) -> TimeAmount {
        requestTimeout + .nanoseconds(Int64(timeoutPerMiB * Double(bytes) / 1_048_576 * 1e9))
    }

    public func put(_ key: String, _ body: ByteBuffer) -> EventLoopFuture<Void> {
        send(.PUT, key: key, body: body).flatMapThrowing { try self.check($0, .PUT, key) }
    }

    public func delete(_ key: String) -> EventLoopFuture<Void> {
        send(.DELETE, key: key).flatMapThrowing { try self.check($0, .DELETE, key) }
    }

    /// Every key under `prefix` (ListObjectsV2, following continuation tokens). Blocks: not for event loops.
    /// - Parameter pageSize: keys per response; S3's default (1000) when nil.
    public func listKeys(prefix: String, pageSize: Int? = nil) throws -> [String] {
        var keys: [String] = []
        var token: String?
        var tokens: Set<String> = []
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let pageSize { query.append(("max-keys", String(pageSize))) }
            if let token { query.append(("continuation-token", token)) }
            let response = try send(.GET, key: "", query: query).wait()
            try check(response, .GET, prefix)
            let xml = String(buffer: response.body)
            keys += S3XML.values(of: "Key", in: xml)
            token = S3XML.value(of: "IsTruncated", in: xml) == "true" ? S3XML.value(of: "NextContinuationToken", in: xml) : nil
            try ListingFailure.refuseRepeated(token, seen: &tokens, in: "S3 listing of \(prefix)")
        } while token != nil
        return keys
    }

    /// An event loop of the client's group, for combining its futures.
    public var eventLoop: EventLoop { http.eventLoopGroup.next() }

    private func check(_ response: Response, _ method: HTTPMethod, _ key: String) throws {
        guard (200..<300).contains(response.status) else {
            throw S3Error(method: method.rawValue, key: key, status: response.status, body: String(buffer: response.body),
                          requestIDHeader: response.headers.first(name: "x-amz-request-id"))
        }
    }
}
