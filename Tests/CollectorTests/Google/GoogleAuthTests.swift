import _CryptoExtras
import Foundation
import NIOConcurrencyHelpers
import Testing
import Telemetry
@testable import Collector

/// Application Default Credentials end to end: a service-account key file's RS256 JWT checked
/// by a stand-in token endpoint against the key's public half, the metadata server, caching and
/// refresh, and the `Authorization` header that really reaches the emulators (through a
/// recording proxy; the emulators themselves ignore credentials).
@Suite struct GoogleAuthTests {
    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let account = "breakwater@test-project.iam.gserviceaccount.com"

    /// Google's OAuth token endpoint, as far as the JWT bearer grant goes: it verifies the
    /// assertion's signature with the public key and its claims, then hands out `token-N`.
    final class TokenEndpoint: Sendable {
        let server: StubHTTPServer
        let issued: NIOLockedValueBox<Int>
        let refused: NIOLockedValueBox<[String]>

        /// - Parameter issuing: tokens it issues before it refuses every request (an endpoint
        ///   that breaks down).
        init(lifetime: Int = 3600, reject: Bool = false, issuing: Int = .max) throws {
            let issued = NIOLockedValueBox(0), refused = NIOLockedValueBox<[String]>([])
            self.issued = issued
            self.refused = refused
            let publicKey = GoogleAuthTests.key.publicKey
            server = try StubHTTPServer { request in
                let form = Dictionary(request.body.split(separator: "&").map { pair -> (String, String) in
                    let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
                    return (kv[0], kv.count > 1 ? kv[1] : "")
                }, uniquingKeysWith: { $1 })
                func refuse(_ why: String) -> (Int, String) {
                    refused.withLockedValue { $0.append(why) }
                    return (400, #"{"error":"invalid_grant","error_description":"\#(why)"}"#)
                }
                guard request.method == "POST", request.uri == "/token",
                      form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer",
                      let parts = form["assertion"]?.split(separator: ".").map(String.init), parts.count == 3,
                      let header = TokenEndpoint.json(parts[0]), let claims = TokenEndpoint.json(parts[1]),
                      let signature = TokenEndpoint.base64URL(parts[2]) else { return refuse("malformed grant") }
                guard publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                                 for: Data("\(parts[0]).\(parts[1])".utf8), padding: .insecurePKCS1v1_5) else {
                    return refuse("Invalid JWT Signature.")
                }
                let iat = claims["iat"] as? Int ?? 0, exp = claims["exp"] as? Int ?? 0
                guard header["alg"] as? String == "RS256", header["kid"] as? String == "key-1",
                      claims["iss"] as? String == GoogleAuthTests.account,
                      claims["aud"] as? String == "http://127.0.0.1:\(request.headers.first(name: "host")?.split(separator: ":").last ?? "")/token",
                      claims["scope"] as? String == "https://www.googleapis.com/auth/cloud-platform",
                      exp - iat == 3600, abs(Double(iat) - Date().timeIntervalSince1970) < 60 else { return refuse("bad claims") }
                if reject { return refuse("Invalid grant: account not found") }
                if issued.withLockedValue({ $0 }) >= issuing { return refuse("token endpoint down") }
                let n = issued.withLockedValue { $0 += 1; return $0 }
                return (200, #"{"access_token":"token-\#(n)","expires_in":\#(lifetime),"token_type":"Bearer"}"#)
            }
        }

        var tokenURI: String { "http://127.0.0.1:\(server.port)/token" }

        static func base64URL(_ s: String) -> Data? {
            var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while b.count % 4 != 0 { b += "=" }
            return Data(base64Encoded: b)
        }

        static func json(_ part: String) -> [String: Any]? {
            base64URL(part).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }

    /// A key file as the console downloads it, pointing at `tokenURI`.
    static func keyFile(tokenURI: String) throws -> String {
        let path = try Tools.temporaryFolder("key") + "/key.json"
        let json: [String: Any] = ["type": "service_account", "project_id": "test-project", "private_key_id": "key-1",
                                   "private_key": key.pkcs8PEMRepresentation, "client_email": account,
                                   "client_id": "1234", "token_uri": tokenURI]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func gcs(_ env: GoogleTestEnvironment, proxy: TCPProxy, credentials: AccessTokenCache, bucket: String,
                    telemetry: Telemetry = .silent()) throws -> GCSCrashStorage {
        GCSCrashStorage(client: try GoogleAPIClient(baseURL: "http://127.0.0.1:\(proxy.port)", credentials: credentials, requestTimeout: 5),
                        bucket: bucket, telemetry: telemetry)
    }

    @Test func keyFileTokenReachesTheServiceAndIsCached() throws {
        let env = try GoogleTestEnvironment.load()
        let endpoint = try TokenEndpoint()
        defer { endpoint.server.stop() }
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.storagePort)
        defer { try? proxy.stop() }
        let credentials = try ApplicationDefaultCredentials.tokenCache(keyFile: try Self.keyFile(tokenURI: endpoint.tokenURI), metadataHost: "")
        let bucket = try env.makeBucket()
        let (telemetry, logs) = StorageFixtures.telemetry()
        let storage = try Self.gcs(env, proxy: proxy, credentials: credentials, bucket: bucket, telemetry: telemetry)
        try storage.verifyAtStartup()
        let crash = StorageFixtures.crash()
        try storage.save(crash)

        #expect(endpoint.refused.withLockedValue { $0 } == [])
        #expect(endpoint.issued.withLockedValue { $0 } == 1)
        // Start-up object, dump, dump_names, raw_crash: four uploads, one token.
        #expect(proxy.authorizations == Array(repeating: "Bearer token-1", count: 4))
        #expect(try env.objects(in: bucket, under: "v1/raw_crash/").count == 1)
        #expect(!logs.lines.contains { $0.contains("token-1") || $0.contains("PRIVATE KEY") })
    }

    /// Four-second tokens, due for refresh after three: the current one serves while the next is
    /// fetched in the background, so a token endpoint that breaks down at that moment
    /// (`issuing: 1`) fails nothing while the token is valid.
    @Test(arguments: [Int.max, 1]) func tokenIsRefreshedInTheBackgroundBeforeItExpires(issuing: Int) async throws {
        let env = try GoogleTestEnvironment.load()
        let endpoint = try TokenEndpoint(lifetime: 4, issuing: issuing)
        defer { endpoint.server.stop() }
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.storagePort)
        defer { try? proxy.stop() }
        let credentials = try ApplicationDefaultCredentials.tokenCache(keyFile: try Self.keyFile(tokenURI: endpoint.tokenURI), metadataHost: "")
        let storage = try Self.gcs(env, proxy: proxy, credentials: credentials, bucket: try env.makeBucket())
        #expect(storage.check() == .ok)
        try await Task.sleep(nanoseconds: 3_300_000_000)
        #expect(storage.check() == .ok)
        let broken = issuing == 1
        #expect(await Self.waitUntil { broken ? !endpoint.refused.withLockedValue { $0 }.isEmpty : credentials.fetchCount == 2 })
        #expect(storage.check() == .ok)
        #expect(proxy.authorizations == ["Bearer token-1", "Bearer token-1", broken ? "Bearer token-1" : "Bearer token-2"])
    }

    static func waitUntil(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<100 where !condition() { try? await Task.sleep(nanoseconds: 50_000_000) }
        return condition()
    }

    /// No key file: the metadata server's token (asked with `Metadata-Flavor: Google` at
    /// `GCE_METADATA_HOST`) is the one Pub/Sub receives.
    @Test func metadataServerTokenReachesPubSub() async throws {
        let env = try GoogleTestEnvironment.load()
        let metadata = try StubHTTPServer { request in
            guard request.headers.first(name: "Metadata-Flavor") == "Google" else { return (403, "{}") }
            guard request.uri == "/computeMetadata/v1/instance/service-accounts/default/token" else { return (404, "{}") }
            return (200, #"{"access_token":"metadata-token","expires_in":3599,"token_type":"Bearer"}"#)
        }
        defer { metadata.stop() }
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.pubsubPort)
        defer { try? proxy.stop() }
        let credentials = try ApplicationDefaultCredentials.tokenCache(keyFile: "", metadataHost: "127.0.0.1:\(metadata.port)")
        let (topic, subscription) = try env.makeTopic()
        let queue = PubSubCrashQueue(client: try GoogleAPIClient(baseURL: "http://127.0.0.1:\(proxy.port)", credentials: credentials,
                                                                 requestTimeout: 5),
                                     project: env.project, topic: topic, telemetry: .silent())
        let id = CrashID.make(result: .accept, date: Date())
        try queue.publish(id)
        #expect(try await env.waitFor([id], on: subscription, timeout: 10) == [id])
        #expect(proxy.authorizations == ["Bearer metadata-token"])
        #expect(metadata.requests.count == 1)
    }

    /// A key the token endpoint refuses is a configuration error: start-up stops with Google's
    /// reason, and nothing secret in the message.
    @Test func refusedKeyStopsStartup() throws {
        let env = try GoogleTestEnvironment.load()
        let endpoint = try TokenEndpoint(reject: true)
        defer { endpoint.server.stop() }
        let proxy = try TCPProxy(upstreamHost: "127.0.0.1", upstreamPort: env.storagePort)
        defer { try? proxy.stop() }
        let credentials = try ApplicationDefaultCredentials.tokenCache(keyFile: try Self.keyFile(tokenURI: endpoint.tokenURI), metadataHost: "")
        let storage = try Self.gcs(env, proxy: proxy, credentials: credentials, bucket: "breakwater-test")
        let error = try #require(throws: Backends.StartupError.self) { try storage.verifyAtStartup() }
        #expect(error.description.contains("invalid_grant") && error.description.contains(Self.account))
        #expect(!error.description.contains("PRIVATE KEY") && !error.description.contains("eyJ"))
        #expect(proxy.requestLines.isEmpty, "nothing reaches the service without a token")
    }

    /// An unreachable token endpoint is an outage, not a configuration error.
    @Test func unreachableTokenEndpointStartsDegraded() throws {
        let env = try GoogleTestEnvironment.load()
        let credentials = try ApplicationDefaultCredentials.tokenCache(
            keyFile: try Self.keyFile(tokenURI: "http://127.0.0.1:\(Tools.freePort())/token"), metadataHost: "")
        let storage = GCSCrashStorage(client: try GoogleAPIClient(baseURL: env.storageHost, credentials: credentials, requestTimeout: 2),
                                      bucket: "breakwater-test", telemetry: .silent())
        try storage.verifyAtStartup()
        #expect(storage.check().isFailing)
    }

    @Test func unusableKeyFilesAreNamedNotPrinted() throws {
        let missing = try #require(throws: Backends.StartupError.self) {
            try ApplicationDefaultCredentials.tokenCache(keyFile: "/nonexistent/key.json", metadataHost: "")
        }
        #expect(missing.description.contains("GOOGLE_APPLICATION_CREDENTIALS") && missing.description.contains("/nonexistent/key.json"))
        let path = try Tools.temporaryFolder("key") + "/bad.json"
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"
        try JSONSerialization.data(withJSONObject: ["type": "service_account", "client_email": Self.account, "private_key": secret])
            .write(to: URL(fileURLWithPath: path))
        let bad = try #require(throws: Backends.StartupError.self) {
            try ApplicationDefaultCredentials.tokenCache(keyFile: path, metadataHost: "")
        }
        #expect(bad.description.contains("private_key") && !bad.description.contains("c2VjcmV0"))
        try JSONSerialization.data(withJSONObject: ["type": "authorized_user", "refresh_token": "r3fresh"]).write(to: URL(fileURLWithPath: path))
        let user = try #require(throws: Backends.StartupError.self) {
            try ApplicationDefaultCredentials.tokenCache(keyFile: path, metadataHost: "")
        }
        #expect(user.description.contains("service_account") && !user.description.contains("r3fresh"))
    }
}
