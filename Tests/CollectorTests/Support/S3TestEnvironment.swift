import Foundation
@testable import Collector

/// The moto server `scripts/services/moto.sh start` runs, read from `BREAKWATER_TEST_*`.
struct S3TestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        let description = "BREAKWATER_TEST_S3_ENDPOINT, BREAKWATER_TEST_S3_BUCKET, BREAKWATER_TEST_AWS_ACCESS_KEY_ID and "
            + "BREAKWATER_TEST_AWS_SECRET_ACCESS_KEY are not set: run scripts/test, or eval \"$(scripts/services/moto.sh start)\" "
            + "before swift test"
    }

    let endpoint: String
    let bucket: String
    let accessKeyID: String
    let secretAccessKey: String

    static func load() throws -> S3TestEnvironment {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env["BREAKWATER_TEST_S3_ENDPOINT"], let bucket = env["BREAKWATER_TEST_S3_BUCKET"],
              let key = env["BREAKWATER_TEST_AWS_ACCESS_KEY_ID"], let secret = env["BREAKWATER_TEST_AWS_SECRET_ACCESS_KEY"],
              ![endpoint, bucket, key, secret].contains("") else { throw Missing() }
        return S3TestEnvironment(endpoint: endpoint, bucket: bucket, accessKeyID: key, secretAccessKey: secret)
    }

    /// moto's port, for a proxy in front of it.
    var port: Int { URLComponents(string: endpoint)!.port! }

    func client(endpoint: String? = nil, bucket: String? = nil, secret: String? = nil, requestTimeout: Double = 2) throws -> S3Client {
        try S3Client(bucket: bucket ?? self.bucket, endpoint: endpoint ?? self.endpoint, region: "us-east-1",
                     credentials: .init(accessKeyID: accessKeyID, secretAccessKey: secret ?? secretAccessKey),
                     requestTimeout: requestTimeout)
    }

    /// The configuration an operator would write for this bucket.
    func configuration() -> CollectorConfiguration {
        var config = CollectorConfiguration()
        config.crashStorage = "s3"
        config.s3Bucket = bucket
        config.s3Endpoint = endpoint
        config.awsAccessKeyID = accessKeyID
        config.awsSecretAccessKey = secretAccessKey
        return config
    }
}
