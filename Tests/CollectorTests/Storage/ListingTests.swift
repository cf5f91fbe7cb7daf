import Foundation
import Testing
import Telemetry
@testable import Collector

/// `republish --date` lists a day's crashes page by page: a server that gives the same
/// continuation token again, or a page that is not one, stops the listing with an error instead of
/// looping forever or returning part of the day. The servers are stand-ins answering only that.
@Suite struct ListingTests {
    @Test func anS3ListingThatRepeatsItsTokenStops() throws {
        let server = try StubHTTPServer { _ in
            (200, "<ListBucketResult><Contents><Key>v1/raw_crash/20261207/a</Key></Contents><IsTruncated>true</IsTruncated>"
                + "<NextContinuationToken>same</NextContinuationToken></ListBucketResult>")
        }
        defer { server.stop() }
        let client = try S3Client(bucket: "b", endpoint: "http://127.0.0.1:\(server.port)", region: "us-east-1",
                                  credentials: .init(accessKeyID: "a", secretAccessKey: "s"), requestTimeout: 2)
        #expect(throws: ListingFailure.self) { try client.listKeys(prefix: "v1/raw_crash/20261207/") }
        #expect(server.requests.count == 2)
    }

    @Test func aGCSListingThatRepeatsItsTokenOrSendsNoPageStops() throws {
        for answer in [#"{"items":[],"nextPageToken":"same"}"#, "<html>proxy error</html>"] {
            let server = try StubHTTPServer { _ in (200, answer) }
            defer { server.stop() }
            let client = try GoogleAPIClient(baseURL: "http://127.0.0.1:\(server.port)", credentials: nil, requestTimeout: 2)
            let storage = GCSCrashStorage(client: client, bucket: "b", telemetry: .silent())
            #expect(throws: ListingFailure.self) { try storage.crashIDs(onDate: "20261207") }
        }
    }
}
