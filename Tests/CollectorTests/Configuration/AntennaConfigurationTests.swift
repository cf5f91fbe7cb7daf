import Foundation
import Testing
@testable import Collector

/// Antenna's environment variables stand in for Breakwater's when those are unset.
@Suite struct AntennaConfigurationTests {
    static let antenna = [
        "CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.gcs.crashstorage.GcsCrashStorage",
        "CRASHMOVER_CRASHSTORAGE_BUCKET_NAME": "antennabucket",
        "CRASHMOVER_CRASHPUBLISH_CLASS": "antenna.ext.pubsub.crashpublish.PubSubCrashPublish",
        "CRASHMOVER_CRASHPUBLISH_PROJECT_ID": "test-project",
        "CRASHMOVER_CRASHPUBLISH_TOPIC_NAME": "antennatopic",
        "BREAKPAD_THROTTLER_RULES": "antenna.throttler.MOZILLA_RULES",
        "BREAKPAD_STAGE_SUBMITTER_BEARER_TOKEN": "s3cret-bearer",
        "LOGGING_LEVEL": "WARNING",
    ]

    @Test func antennaNamesAreHonoured() async throws {
        let config = try await CollectorConfiguration.load(environment: Self.antenna)
        #expect(config.crashStorage == "gcs" && config.gcsBucket == "antennabucket")
        #expect(config.crashQueue == "pubsub" && config.pubsubProjectID == "test-project" && config.pubsubTopic == "antennatopic")
        #expect(config.throttler == "rules" && config.throttleRules == "config/throttle/mozilla.yaml")
        #expect(config.submitterToken == "s3cret-bearer")
        #expect(config.logLevel == "warning")
        #expect(config.source(of: "CRASHSTORAGE", environment: Self.antenna) == "CRASHMOVER_CRASHSTORAGE_CLASS (Antenna)")
        #expect(config.source(of: "PUBSUB_TOPIC", environment: Self.antenna) == "CRASHMOVER_CRASHPUBLISH_TOPIC_NAME (Antenna)")
        #expect(config.source(of: "PORT", environment: Self.antenna) == "default")
    }

    @Test func theOtherClassesMapToo() async throws {
        let fs = try await CollectorConfiguration.load(environment: [
            "CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.fs.crashstorage.FSCrashStorage", "CRASHMOVER_CRASHSTORAGE_FS_ROOT": "/data/crashes",
            "CRASHMOVER_CRASHPUBLISH_CLASS": "antenna.ext.crashpublish_base.NoOpCrashPublish",
            "BREAKPAD_THROTTLER_RULES": "antenna.throttler.ACCEPT_ALL",
        ])
        #expect(fs.crashStorage == "fs" && fs.fsRoot == "/data/crashes" && fs.crashQueue == "null")
        // ACCEPT_ALL keeps Antenna's rule name, `accept_everything`, in raw crashes and metrics.
        #expect(fs.throttler == "rules" && fs.throttleRules == "config/throttle/accept-all.yaml")
        let rules = try RuleThrottler(contentsOfFile: Tools.path(fs.throttleRules))
        #expect(rules.throttle(CrashReport(annotations: ["ProductName": .string("Anything")], payloadKind: "multipart")).rule == "accept_everything")
        let noop = try await CollectorConfiguration.load(environment: ["CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.crashstorage_base.NoOpCrashStorage"])
        #expect(noop.crashStorage == "null")
    }

    /// An Antenna environment that names no rules gets Antenna's default, Mozilla's, not the null
    /// throttler; an environment without Antenna's names keeps Breakwater's default.
    @Test func antennaEnvironmentsDefaultToMozillasRules() async throws {
        let env = ["CRASHMOVER_CRASHSTORAGE_CLASS": "antenna.ext.crashstorage_base.NoOpCrashStorage"]
        let config = try await CollectorConfiguration.load(environment: env)
        #expect(config.throttler == "rules" && config.throttleRules == "config/throttle/mozilla.yaml")
        #expect(config.source(of: "THROTTLER", environment: env) == "BREAKPAD_THROTTLER_RULES's default (Antenna)")
        let withTheirOwn = try await CollectorConfiguration.load(environment: env.merging(["THROTTLER": "null"]) { $1 })
        #expect(withTheirOwn.throttler == "null")
        #expect(try await CollectorConfiguration.load(environment: ["LOGGING_LEVEL": "INFO"]).throttler == "null")
        // A config file of the operator's own says what it wants: not overridden.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("own-\(UUID().uuidString).json")
        try Data(#"{"throttler": "null"}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let own = try await CollectorConfiguration.load(environment: env.merging(["BREAKWATER_CONFIG": file.path]) { $1 })
        #expect(own.throttler == "null" && own.source(of: "THROTTLER", environment: env) == "config file")
        #expect(try await CollectorConfiguration.load(environment: [:]).throttler == "null")
    }

    @Test func breakwaterNamesWin() async throws {
        var env = Self.antenna
        env["CRASHSTORAGE"] = "fs"
        env["PUBSUB_TOPIC"] = "mine"
        env["THROTTLER"] = "null"
        let config = try await CollectorConfiguration.load(environment: env)
        #expect(config.crashStorage == "fs" && config.pubsubTopic == "mine")
        // The throttler and its rule file go together: Breakwater's THROTTLER keeps Antenna's rules out.
        #expect(config.throttler == "null" && config.throttleRules == CollectorConfiguration().throttleRules)
        #expect(config.source(of: "CRASHSTORAGE", environment: env) == "CRASHSTORAGE")
        #expect(config.source(of: "CRASHSTORAGE_GCS_BUCKET", environment: env) == "CRASHMOVER_CRASHSTORAGE_BUCKET_NAME (Antenna)")
    }

    /// An Antenna class Breakwater does not implement is refused at start-up, naming the variable.
    @Test func unknownClassIsAnError() async throws {
        for (name, value) in [("CRASHMOVER_CRASHSTORAGE_CLASS", "antenna.ext.s3.crashstorage.S3CrashStorage"),
                              ("CRASHMOVER_CRASHPUBLISH_CLASS", "antenna.ext.sqs.crashpublish.SQSCrashPublish"),
                              ("BREAKPAD_THROTTLER_RULES", "myorg.throttler.RULES")] {
            let error = try await #require(throws: CollectorConfiguration.ConfigurationError.self) {
                try await CollectorConfiguration.load(environment: [name: value])
            }
            #expect(error.description.contains(name) && error.description.contains(value))
        }
    }

    /// docs/antenna.md maps every variable the translation knows.
    @Test func theDocTableListsEveryTranslatedVariable() throws {
        let doc = try String(contentsOfFile: Tools.path("docs/antenna.md"), encoding: .utf8)
        for mapping in AntennaNames.mappings { #expect(doc.contains("`\(mapping.antenna)`"), "\(mapping.antenna)") }
        for name in AntennaNames.storageClasses.keys.sorted() + AntennaNames.publishClasses.keys.sorted() + AntennaNames.throttlerRules.keys.sorted() {
            #expect(doc.contains(name), "\(name)")
        }
    }
}
