import Crypto
import Foundation
import Testing
@testable import Collector

/// The signer against AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite,
/// 2015-08-30 vectors: service `service`, region `us-east-1`, credentials `AKIDEXAMPLE`).
/// Each case is the request, its expected canonical request and expected `Authorization` header.
@Suite struct SigV4SignerTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let method: String
        let path: String
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        var body = ""
        let canonicalRequest: String
        let authorization: String
        var testDescription: String { name }
    }

    static let credentials = SigV4Signer.Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let date = Date(timeIntervalSince1970: 1_440_938_160) // 2015-08-30T12:36:00Z
    static let stsToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let scope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

    static let vectors: [Vector] = [
        Vector(name: "get-vanilla", method: "GET", path: "/",
               canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(name: "post-vanilla", method: "POST", path: "/",
               canonicalRequest: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Vector(name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
               canonicalRequest: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(name: "get-vanilla-query-order-value", method: "GET", path: "/", query: [("Param1", "value2"), ("Param1", "value1")],
               canonicalRequest: "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        Vector(name: "get-vanilla-utf8-query", method: "GET", path: "/", query: [("ሴ", "bar")],
               canonicalRequest: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Vector(name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               canonicalRequest: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        Vector(name: "get-space", method: "GET", path: "/example space/",
               canonicalRequest: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        Vector(name: "get-header-key-duplicate", method: "GET", path: "/",
               headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
               canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        Vector(name: "get-header-value-trim", method: "GET", path: "/",
               headers: [("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
               canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\(emptyHash)",
               authorization: "\(scope), SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        Vector(name: "post-x-www-form-urlencoded", method: "POST", path: "/",
               headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1",
               canonicalRequest: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
               authorization: "\(scope), SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ]

    static func payloadHash(_ body: String) -> String {
        body.isEmpty ? SigV4Signer.emptyPayloadHash : Hex.encode(SHA256.hash(data: Array(body.utf8)))
    }

    @Test(arguments: vectors)
    func awsTestSuite(_ v: Vector) {
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "service")
        let headers = [("Host", "example.amazonaws.com")] + v.headers
        let hash = Self.payloadHash(v.body)
        let (canonical, _) = signer.canonicalRequest(method: v.method, path: v.path, query: v.query,
                                                     headers: headers + [("X-Amz-Date", "20150830T123600Z")], payloadHash: hash)
        #expect(canonical == v.canonicalRequest)
        let signed = signer.sign(method: v.method, path: v.path, query: v.query, headers: headers, payloadHash: hash, date: Self.date)
        #expect(signed.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(signed.first { $0.0 == "authorization" }?.1 == v.authorization)
    }

    /// post-sts-header-before: temporary credentials sign their token as a header.
    @Test func sessionTokenIsSigned() {
        var credentials = Self.credentials
        credentials.sessionToken = Self.stsToken
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
        let signed = signer.sign(method: "POST", path: "/", headers: [("Host", "example.amazonaws.com")],
                                 payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signed.first { $0.0 == "x-amz-security-token" }?.1 == Self.stsToken)
        #expect(signed.first { $0.0 == "authorization" }?.1
            == "\(Self.scope), SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")
    }

    @Test func s3KeysAreEncodedOncePerSegment() {
        #expect(SigV4Signer.canonicalURI("/bucket/v1/raw_crash/20261129/de1bb258-cbbf-4589-a673-34f800261129")
            == "/bucket/v1/raw_crash/20261129/de1bb258-cbbf-4589-a673-34f800261129")
        #expect(SigV4Signer.canonicalURI("/bucket/a b+c%") == "/bucket/a%20b%2Bc%25")
        #expect(SigV4Signer.canonicalQuery([("prefix", "v1/raw_crash/20261129/"), ("list-type", "2")])
            == "list-type=2&prefix=v1%2Fraw_crash%2F20261129%2F")
    }
}
