import Configuration
import Foundation
import SystemPackage

/// Everything the collector is configured with. Names follow DESIGN.md: each setting is the key
/// of the config file (`config/breakwater.json`, behaviour) and, upper-cased, the environment
/// variable that overrides it (infrastructure and secrets). Built-in defaults make a bare start work.
public struct CollectorConfiguration: Sendable {
    // HTTP front
    public var host = "0.0.0.0"
    public var port = 8000
    public var maxRequestBytes = 26_214_400
    /// Cap on inflated bytes of a compressed body (a gzip bomb gets 413).
    public var maxDecompressedBytes = 104_857_600
    /// Cap on request bytes held in memory across all in-flight requests.
    public var maxInflightBytes = 268_435_456
    public var maxHeaderBytes = 65_536
    /// Seconds without a byte from the client before the connection is closed.
    public var readTimeout = 30.0
    /// Seconds a whole request (head and body) may take to arrive.
    public var requestTimeout = 60.0
    public var workers = 2 * ProcessInfo.processInfo.activeProcessorCount
    public var workerQueue = 128
    public var shutdownDeadline = 25.0

    // Decoding limits
    public var maxParts = 1_000
    public var maxAnnotations = 500
    public var maxAnnotationBytes = 1_048_576
    public var maxJSONDepth = 64
    public var redactedAnnotations = ["Email", "TelemetryClientId", "TelemetryServerURL", "TelemetrySessionId"]

    // Routes
    public var breakpadPath = "/submit"
    public var genericPath = "/generic/submit"
    public var sentryPrefix = "/api"

    // Sentry
    /// Allowed Sentry public key per project id; empty accepts any well-formed key.
    public var sentryProjectKeys: [String: String] = [:]
    /// `ProductName` per Sentry project id, so throttle rules written for Breakpad apply.
    public var sentryProducts: [String: String] = [:]

    // Throttling
    public var throttler = "null"
    public var throttleRules = "config/throttle/mozilla.yaml"

    // Storage
    public var crashStorage = "null"
    public var fsRoot = "./crashes"
    public var s3Bucket = ""
    public var s3Endpoint = ""
    public var s3Region = "us-east-1"
    public var awsAccessKeyID = ""
    public var awsSecretAccessKey = ""
    public var awsSessionToken = ""
    public var gcsBucket = ""
    /// Google's own name: a GCS emulator's address, talked to over plain HTTP without credentials.
    public var storageEmulatorHost = ""
    /// A service-account key file (Application Default Credentials); else the metadata server.
    public var googleApplicationCredentials = ""
    public var gceMetadataHost = ""
    /// Seconds a save may take, retries included, before the crash goes to the outbox (or, with
    /// no outbox, the client is told to retry later).
    public var saveBudget = 8.0
    /// Seconds allowed to one storage request with an empty body (`STORAGE_TIMEOUT`)...
    public var storageTimeout = 2.0
    /// ...plus this many per MiB of body (`STORAGE_TIMEOUT_PER_MIB`), so big crashes are not
    /// refused for being big.
    public var storageTimeoutPerMiB = 1.0

    // Queue
    public var crashQueue = "null"
    public var rabbitmqURL = ""
    public var rabbitmqQueue = "socorro.normal"
    public var pubsubProjectID = ""
    /// Socorro's default topic.
    public var pubsubTopic = "standard-queue"
    public var pubsubEmulatorHost = ""
    public var publishBudget = 3.0

    // Outbox
    /// The local outbox's folder, relative to the working directory; empty turns it off.
    public var spoolDir = "./spool"
    public var spoolMaxBytes = 1_073_741_824
    /// Failed store attempts (storage otherwise healthy) before a crash is quarantined; 0: never.
    public var spoolMaxAttempts = 20
    /// Whether a crash storage refuses for good (4xx other than 408/429) is quarantined at once.
    public var spoolQuarantineRefused = true
    /// Longest pause, in seconds, between two attempts of one outbox record.
    public var spoolMaxBackoff = 300.0

    // Telemetry
    public var statsdHost = "localhost"
    public var statsdPort = 8125
    public var statsdPrefix = "breakwater"
    public var logLevel = "info"

    // Security and operations
    public var submitterToken = ""
    public var versionFile = "version.json"

    /// For each variable the environment set, the name it came from when that was not its own:
    /// an Antenna variable (`CRASHMOVER_CRASHSTORAGE_CLASS`) or `CLOUDAMQP_URL`. `check-config` shows it.
    public var sources: [String: String] = [:]
    /// Settings the config file sets (upper-cased), for `check-config`.
    public var fileSettings: Set<String> = []

    public init() {}

    public enum ConfigurationError: Error, CustomStringConvertible {
        case invalid(name: String, value: String, expected: String)
        case unreadableFile(path: String, reason: String)

        public var description: String {
            switch self {
            case let .invalid(name, value, expected): return "invalid value for \(name): \(value.debugDescription) (expected \(expected))"
            case let .unreadableFile(path, reason): return "cannot read config file \(path): \(reason)"
            }
        }
    }

    /// Loads environment over the config file over defaults. The config file is
    /// `BREAKWATER_CONFIG`, else `config/breakwater.json` when it exists.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> CollectorConfiguration {
        var (env, sources) = try AntennaNames.apply(to: environment)
        if env["RABBITMQ_URL"] == nil, let cloud = env["CLOUDAMQP_URL"] {
            env["RABBITMQ_URL"] = cloud
            sources["RABBITMQ_URL"] = "CLOUDAMQP_URL"
        }
        var fileSettings: Set<String> = []
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: env)]
        let path = environment["BREAKWATER_CONFIG"] ?? "config/breakwater.json"
        if environment["BREAKWATER_CONFIG"] != nil || FileManager.default.fileExists(atPath: path) {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw ConfigurationError.unreadableFile(path: path, reason: "\(error)")
            }
            let object = FileManager.default.contents(atPath: path).flatMap { try? JSONSerialization.jsonObject(with: $0) }
            fileSettings = Set(((object as? [String: Any]) ?? [:]).keys.map { $0.uppercased() })
        }
        var config = try Reader(config: ConfigReader(providers: providers), environment: env).read()
        config.sources = sources
        config.fileSettings = fileSettings
        return config
    }

    /// Reads each setting; a value present in the environment that does not convert is an error.
    private struct Reader {
        let config: ConfigReader
        let environment: [String: String]

        func read() throws -> CollectorConfiguration {
            var c = CollectorConfiguration()
            c.host = string("host", c.host)
            c.port = try int("port", c.port, range: 0...65535)
            c.maxRequestBytes = try int("max_request_bytes", c.maxRequestBytes, range: 1...Int.max)
            c.maxDecompressedBytes = try int("max_decompressed_bytes", c.maxDecompressedBytes, range: 1...Int.max)
            c.maxInflightBytes = try int("max_inflight_bytes", c.maxInflightBytes, range: 1...Int.max)
            c.maxHeaderBytes = try int("max_header_bytes", c.maxHeaderBytes, range: 1024...1_048_576)
            c.readTimeout = try double("read_timeout", c.readTimeout)
            c.requestTimeout = try double("request_timeout", c.requestTimeout)
            c.workers = try int("workers", c.workers, range: 1...1024)
            c.workerQueue = try int("worker_queue", c.workerQueue, range: 1...1_000_000)
            c.shutdownDeadline = try double("shutdown_deadline", c.shutdownDeadline)
            c.maxParts = try int("max_parts", c.maxParts, range: 1...1_000_000)
            c.maxAnnotations = try int("max_annotations", c.maxAnnotations, range: 1...1_000_000)
            c.maxAnnotationBytes = try int("max_annotation_bytes", c.maxAnnotationBytes, range: 1...Int.max)
            c.maxJSONDepth = try int("max_json_depth", c.maxJSONDepth, range: 1...512)
            c.redactedAnnotations = list("redacted_annotations", c.redactedAnnotations)
            c.breakpadPath = try path("breakpad_path", c.breakpadPath)
            c.genericPath = try path("generic_path", c.genericPath)
            c.sentryPrefix = try path("sentry_prefix", c.sentryPrefix)
            c.sentryProjectKeys = try table("sentry_project_keys", c.sentryProjectKeys)
            c.sentryProducts = try table("sentry_products", c.sentryProducts)
            c.throttler = try choice("throttler", c.throttler, ["null", "rules"])
            c.throttleRules = string("throttle_rules", c.throttleRules)
            c.crashStorage = try choice("crashstorage", c.crashStorage, ["null", "fs", "s3", "gcs"])
            c.fsRoot = string("crashstorage_fs_root", c.fsRoot)
            c.s3Bucket = string("crashstorage_s3_bucket", c.s3Bucket)
            c.s3Endpoint = string("crashstorage_s3_endpoint", c.s3Endpoint)
            c.s3Region = string("crashstorage_s3_region", c.s3Region)
            c.awsAccessKeyID = string("aws_access_key_id", c.awsAccessKeyID)
            c.awsSecretAccessKey = string("aws_secret_access_key", c.awsSecretAccessKey, secret: true)
            c.awsSessionToken = string("aws_session_token", c.awsSessionToken, secret: true)
            c.gcsBucket = string("crashstorage_gcs_bucket", c.gcsBucket)
            c.storageEmulatorHost = string("storage_emulator_host", c.storageEmulatorHost)
            c.googleApplicationCredentials = string("google_application_credentials", c.googleApplicationCredentials)
            c.gceMetadataHost = string("gce_metadata_host", c.gceMetadataHost)
            c.saveBudget = try double("save_budget", c.saveBudget)
            c.storageTimeout = try double("storage_timeout", c.storageTimeout)
            c.storageTimeoutPerMiB = try double("storage_timeout_per_mib", c.storageTimeoutPerMiB)
            c.crashQueue = try choice("crashqueue", c.crashQueue, ["null", "rabbitmq", "pubsub"])
            c.rabbitmqURL = string("rabbitmq_url", c.rabbitmqURL, secret: true)
            c.rabbitmqQueue = string("rabbitmq_queue", c.rabbitmqQueue)
            c.pubsubProjectID = string("pubsub_project_id", c.pubsubProjectID)
            c.pubsubTopic = string("pubsub_topic", c.pubsubTopic)
            c.pubsubEmulatorHost = string("pubsub_emulator_host", c.pubsubEmulatorHost)
            c.publishBudget = try double("publish_budget", c.publishBudget)
            // An empty SPOOL_DIR turns the outbox off; the reader would take it for unset.
            c.spoolDir = environment["SPOOL_DIR"] == "" ? "" : string("spool_dir", c.spoolDir)
            c.spoolMaxBytes = try int("spool_max_bytes", c.spoolMaxBytes, range: 0...Int.max)
            c.spoolMaxAttempts = try int("spool_max_attempts", c.spoolMaxAttempts, range: 0...1_000_000)
            c.spoolQuarantineRefused = try choice("spool_quarantine_refused", c.spoolQuarantineRefused ? "true" : "false",
                                                  ["true", "false"]) == "true"
            c.spoolMaxBackoff = try double("spool_max_backoff", c.spoolMaxBackoff)
            c.statsdHost = string("statsd_host", c.statsdHost)
            c.statsdPort = try int("statsd_port", c.statsdPort, range: 1...65535)
            c.statsdPrefix = string("statsd_prefix", c.statsdPrefix)
            c.logLevel = try choice("log_level", c.logLevel, ["trace", "debug", "info", "notice", "warning", "error", "critical"])
            c.submitterToken = string("submitter_token", c.submitterToken, secret: true)
            c.versionFile = string("version_file", c.versionFile)
            return c
        }

        private func envName(_ key: String) -> String { key.uppercased() }

        private func string(_ key: String, _ def: String, secret: Bool = false) -> String {
            config.string(forKey: ConfigKey(key), isSecret: secret) ?? def
        }

        private func list(_ key: String, _ def: [String]) -> [String] {
            config.stringArray(forKey: ConfigKey(key)) ?? def
        }

        /// A value the environment sets but the reader could not convert is refused, not defaulted.
        private func refuse(_ key: String, expected: String) throws {
            if let raw = environment[envName(key)] {
                throw ConfigurationError.invalid(name: envName(key), value: raw, expected: expected)
            }
        }

        private func int(_ key: String, _ def: Int, range: ClosedRange<Int>) throws -> Int {
            guard let value = config.int(forKey: ConfigKey(key)) else {
                try refuse(key, expected: "an integer")
                return def
            }
            guard range.contains(value) else {
                throw ConfigurationError.invalid(name: envName(key), value: String(value), expected: "\(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }

        private func double(_ key: String, _ def: Double) throws -> Double {
            guard let value = config.double(forKey: ConfigKey(key)) else {
                try refuse(key, expected: "a number of seconds")
                return def
            }
            guard value >= 0, value.isFinite else {
                throw ConfigurationError.invalid(name: envName(key), value: String(value), expected: "a number of seconds")
            }
            return value
        }

        private func choice(_ key: String, _ def: String, _ allowed: [String]) throws -> String {
            let v = string(key, def).lowercased()
            guard allowed.contains(v) else {
                throw ConfigurationError.invalid(name: envName(key), value: v, expected: allowed.joined(separator: ", "))
            }
            return v
        }

        /// A `project=value` list (`42=abc,43=def` in the environment) as a table.
        private func table(_ key: String, _ def: [String: String]) throws -> [String: String] {
            guard let entries = config.stringArray(forKey: ConfigKey(key)) else { return def }
            var out: [String: String] = [:]
            for entry in entries where !entry.isEmpty {
                let kv = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                    throw ConfigurationError.invalid(name: envName(key), value: entry, expected: "project=value entries")
                }
                out[kv[0]] = kv[1]
            }
            return out
        }

        private func path(_ key: String, _ def: String) throws -> String {
            let v = string(key, def)
            guard v.hasPrefix("/"), !v.contains(" ") else {
                throw ConfigurationError.invalid(name: envName(key), value: v, expected: "a path starting with /")
            }
            return v
        }
    }

    /// The effective settings as `check-config` prints them, secrets masked.
    public var described: [(name: String, value: String)] {
        func mask(_ s: String) -> String { s.isEmpty ? "" : "********" }
        return [
            ("HOST", host), ("PORT", String(port)),
            ("MAX_REQUEST_BYTES", String(maxRequestBytes)), ("MAX_DECOMPRESSED_BYTES", String(maxDecompressedBytes)),
            ("MAX_INFLIGHT_BYTES", String(maxInflightBytes)), ("MAX_HEADER_BYTES", String(maxHeaderBytes)),
            ("READ_TIMEOUT", String(readTimeout)), ("REQUEST_TIMEOUT", String(requestTimeout)),
            ("WORKERS", String(workers)), ("WORKER_QUEUE", String(workerQueue)), ("SHUTDOWN_DEADLINE", String(shutdownDeadline)),
            ("MAX_PARTS", String(maxParts)), ("MAX_ANNOTATIONS", String(maxAnnotations)),
            ("MAX_ANNOTATION_BYTES", String(maxAnnotationBytes)), ("MAX_JSON_DEPTH", String(maxJSONDepth)),
            ("REDACTED_ANNOTATIONS", redactedAnnotations.joined(separator: ",")),
            ("BREAKPAD_PATH", breakpadPath), ("GENERIC_PATH", genericPath), ("SENTRY_PREFIX", sentryPrefix),
            ("SENTRY_PROJECT_KEYS", Self.describe(sentryProjectKeys)), ("SENTRY_PRODUCTS", Self.describe(sentryProducts)),
            ("THROTTLER", throttler), ("THROTTLE_RULES", throttleRules),
            ("CRASHSTORAGE", crashStorage), ("CRASHSTORAGE_FS_ROOT", fsRoot),
            ("CRASHSTORAGE_S3_BUCKET", s3Bucket), ("CRASHSTORAGE_S3_ENDPOINT", s3Endpoint), ("CRASHSTORAGE_S3_REGION", s3Region),
            ("AWS_ACCESS_KEY_ID", awsAccessKeyID), ("AWS_SECRET_ACCESS_KEY", mask(awsSecretAccessKey)),
            ("AWS_SESSION_TOKEN", mask(awsSessionToken)),
            ("CRASHSTORAGE_GCS_BUCKET", gcsBucket), ("STORAGE_EMULATOR_HOST", storageEmulatorHost),
            // The key file's path only: its contents are never read here.
            ("GOOGLE_APPLICATION_CREDENTIALS", googleApplicationCredentials), ("GCE_METADATA_HOST", gceMetadataHost),
            ("SAVE_BUDGET", String(saveBudget)),
            ("CRASHQUEUE", crashQueue), ("RABBITMQ_URL", Self.maskingPassword(in: rabbitmqURL)),
            ("RABBITMQ_QUEUE", rabbitmqQueue), ("PUBSUB_PROJECT_ID", pubsubProjectID), ("PUBSUB_TOPIC", pubsubTopic),
            ("PUBSUB_EMULATOR_HOST", pubsubEmulatorHost), ("PUBLISH_BUDGET", String(publishBudget)),
            ("STORAGE_TIMEOUT", String(storageTimeout)), ("STORAGE_TIMEOUT_PER_MIB", String(storageTimeoutPerMiB)),
            ("SPOOL_DIR", spoolDir), ("SPOOL_MAX_BYTES", String(spoolMaxBytes)), ("SPOOL_MAX_ATTEMPTS", String(spoolMaxAttempts)),
            ("SPOOL_QUARANTINE_REFUSED", String(spoolQuarantineRefused)), ("SPOOL_MAX_BACKOFF", String(spoolMaxBackoff)),
            ("STATSD_HOST", statsdHost), ("STATSD_PORT", String(statsdPort)), ("STATSD_PREFIX", statsdPrefix),
            ("LOG_LEVEL", logLevel), ("SUBMITTER_TOKEN", mask(submitterToken)), ("VERSION_FILE", versionFile),
        ]
    }

    /// Where the value of the setting `name` came from, as `check-config` prints it: the Antenna
    /// (or other) variable it was read from, its own variable, the config file, or the default.
    public func source(of name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let other = sources[name] { return other == "CLOUDAMQP_URL" ? other : "\(other) (Antenna)" }
        if environment[name] != nil { return name }
        return fileSettings.contains(name) ? "config file" : "default"
    }

    /// A table as it is configured: `42=abc,43=def`.
    static func describe(_ table: [String: String]) -> String {
        table.keys.sorted().map { "\($0)=\(table[$0]!)" }.joined(separator: ",")
    }

    /// `amqp://user:secret@host/vhost` → `amqp://user:********@host/vhost`. A URL that does not
    /// parse, or parses without a password (`u:p#ss@host`, a password not percent-encoded, or no
    /// scheme), may still hold one before its last `@`: all of that is masked.
    public static func maskingPassword(in url: String) -> String {
        if var parts = URLComponents(string: url), parts.password != nil {
            parts.password = "********"
            return parts.string ?? "********"
        }
        guard let at = url.lastIndex(of: "@") else { return url }
        let start = url.range(of: "://").map(\.upperBound).flatMap { $0 <= at ? $0 : nil } ?? url.startIndex
        return String(url[..<start]) + "********" + String(url[at...])
    }
}
