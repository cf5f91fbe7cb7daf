import _CryptoExtras
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Tokens for a service-account key (OAuth 2.0 JWT bearer grant, RFC 7523): an RS256-signed JWT
/// asserting the account and the cloud-platform scope, exchanged at the key's `token_uri`.
public final class ServiceAccountTokenSource: AccessTokenSource {
    public static let scope = "https://www.googleapis.com/auth/cloud-platform"
    public let key: ServiceAccountKey
    private let signingKey: _RSA.Signing.PrivateKey
    private let http: HTTPClient
    private let timeout: TimeAmount

    public init(key: ServiceAccountKey, timeout: Double = 10) throws {
        self.key = key
        do {
            signingKey = try _RSA.Signing.PrivateKey(pemRepresentation: key.privateKeyPEM)
        } catch {
            throw ServiceAccountKey.Invalid(description: "\"private_key\" is not a PEM RSA private key")
        }
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        http = BackendHTTPClient.make(timeout: self.timeout)
    }

    /// The pooled client must be shut down before it goes away; nothing waits for it.
    deinit {
        http.shutdown { _ in }
    }

    public var description: String { key.description }

    /// The signed assertion: `header.claims.signature`, each base64url without padding.
    public func assertion(now: Date = Date()) throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        let header: [String: Any] = ["alg": "RS256", "typ": "JWT", "kid": key.privateKeyID]
        let claims: [String: Any] = ["iss": key.clientEmail, "scope": Self.scope, "aud": key.tokenURI,
                                     "iat": issued, "exp": issued + 3600]
        let signingInput = try [header, claims].map {
            Self.base64URL(try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]))
        }.joined(separator: ".")
        let signature = try signingKey.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Self.base64URL(signature.rawRepresentation)
    }

    public func fetch() throws -> AccessToken {
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(try assertion())"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let request = try HTTPClient.Request(url: key.tokenURI, method: .POST, headers: headers, body: .string(form))
        let response = try http.execute(request: request, deadline: .now() + timeout).wait()
        return try AccessToken.parse(status: Int(response.status.code), body: response.body ?? ByteBuffer(),
                                     from: "token endpoint \(key.tokenURI) for \(key)")
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

extension AccessToken {
    /// A token endpoint's answer: `{"access_token": …, "expires_in": …}`, or an OAuth error whose
    /// `error` and `error_description` (never secrets) go into the message.
    static func parse(status: Int, body: ByteBuffer, from source: String) throws -> AccessToken {
        let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        guard (200..<300).contains(status) else {
            let reason = [json?["error"] as? String, json?["error_description"] as? String].compactMap { $0 }
                .joined(separator: ": ").prefix(300)
            throw GoogleAuthError("\(source) answered HTTP \(status)" + (reason.isEmpty ? "" : " (\(reason))"),
                                  rejected: [400, 401, 403].contains(status))
        }
        guard let value = json?["access_token"] as? String, !value.isEmpty else {
            throw GoogleAuthError("\(source) answered without an access_token", rejected: false)
        }
        let lifetime = (json?["expires_in"] as? Int).map(Double.init) ?? (json?["expires_in"] as? Double) ?? 3600
        return AccessToken(value: value, lifetime: lifetime)
    }
}
