import Crypto
import Foundation

/// AWS Signature Version 4 for requests signed in the `Authorization` header.
/// Written by hand (DESIGN.md: no listed library signs S3 requests); checked against AWS's
/// published SigV4 test suite in `SigV4SignerTests`.
public struct SigV4Signer: Sendable {
    public struct Credentials: Sendable {
        public var accessKeyID: String
        public var secretAccessKey: String
        /// Temporary credentials (STS) come with a token sent as `x-amz-security-token`.
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// SHA-256 of an empty payload, the hash of every request without a body.
    public static let emptyPayloadHash = Hex.encode(SHA256.hash(data: [UInt8]()))

    /// Signs a request. `headers` must include `host`; `path` and the query are unencoded.
    /// Returns `headers` plus `x-amz-date`, the session token when there is one, and `authorization`.
    public func sign(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)],
                     payloadHash: String, date: Date = Date()) -> [(String, String)] {
        let (amzDate, day) = Self.timestamps(date)
        var signed = headers
        signed.append(("x-amz-date", amzDate))
        if let token = credentials.sessionToken, !token.isEmpty { signed.append(("x-amz-security-token", token)) }

        let (request, signedHeaders) = canonicalRequest(method: method, path: path, query: query, headers: signed,
                                                        payloadHash: payloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Hex.encode(SHA256.hash(data: Array(request.utf8))))"
        let signature = Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: signingKey(day: day)))
        signed.append(("authorization",
                       "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return signed
    }

    /// The canonical request and the `SignedHeaders` list. Header names are lower-cased and sorted,
    /// repeated headers joined with commas, values trimmed with inner runs of spaces collapsed.
    func canonicalRequest(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                          payloadHash: String) -> (String, String) {
        var grouped: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            grouped[name.lowercased(), default: []].append(trimmed)
        }
        let names = grouped.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let request = [method, Self.canonicalURI(path), Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash]
            .joined(separator: "\n")
        return (request, signedHeaders)
    }

    /// Each path segment URI-encoded once (S3's rule; no dot-segment normalization), slashes kept.
    public static func canonicalURI(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { uriEncode(String($0)) }.joined(separator: "/")
    }

    /// `key=value` pairs, encoded, sorted by key then value. Also used as the URL's query string so
    /// what is sent is exactly what was signed.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let pairs: [(key: String, value: String)] = query.map { (uriEncode($0.0), uriEncode($0.1)) }
        let sorted = pairs.sorted { $0.key == $1.key ? $0.value < $1.value : $0.key < $1.key }
        return sorted.map { $0.key + "=" + $0.value }.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, upper-case hex.
    public static func uriEncode(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    private func signingKey(day: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ message: String) -> SymmetricKey {
            SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        return hmac(hmac(hmac(hmac(secret, day), region), service), "aws4_request")
    }

    /// `YYYYMMDDTHHMMSSZ` and `YYYYMMDD`, in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        let t = UTCTime(date)
        return (t.compactDate + "T" + t.compactTime + "Z", t.compactDate)
    }
}
