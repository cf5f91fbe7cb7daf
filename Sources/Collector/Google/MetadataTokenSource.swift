import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Tokens of the instance's service account from the metadata server (Compute Engine, GKE,
/// Cloud Run): plain HTTP to `metadata.google.internal`, or `GCE_METADATA_HOST` as Google's
/// libraries honour it.
public final class MetadataTokenSource: AccessTokenSource {
    public static let defaultHost = "metadata.google.internal"
    public let host: String
    private let http: HTTPClient
    private let timeout: TimeAmount

    public init(host: String?, timeout: Double = 5) {
        self.host = (host?.isEmpty ?? true) ? Self.defaultHost : host!
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        http = BackendHTTPClient.make(timeout: self.timeout)
    }

    /// The pooled client must be shut down before it goes away; nothing waits for it.
    deinit {
        http.shutdown { _ in }
    }

    public var description: String { "metadata server \(host)" }

    public func fetch() throws -> AccessToken {
        var headers = HTTPHeaders()
        headers.add(name: "Metadata-Flavor", value: "Google")
        let request = try HTTPClient.Request(url: "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token",
                                             method: .GET, headers: headers)
        let response = try http.execute(request: request, deadline: .now() + timeout).wait()
        // The metadata server answers 404 when the instance has no service account: that will not change.
        return try AccessToken.parse(status: Int(response.status.code), body: response.body ?? ByteBuffer(),
                                     from: description)
    }
}
