/// Every metric Breakwater emits, in one place. Names are unprefixed: the statsd backend adds
/// `STATSD_PREFIX.` and the Prometheus backend maps them by `PrometheusNaming`.
/// docs/operations.md's metric table mirrors this list; dashboards and alerts use only these names.
public enum MetricCatalog {
    public enum Kind: String, Sendable { case counter, gauge, histogram, timer }

    /// The values a tag may take. Client text never reaches a tag: whatever derives from it is
    /// mapped into one of these sets first, and `Telemetry` replaces any other value of a closed
    /// set with `other`, so the number of series stays bounded whatever clients send.
    public enum TagValues: Sendable, Equatable {
        /// Exactly these values (plus `other`).
        case closed([String])
        /// Fixed at start-up by configuration, not by clients (the description says by what).
        case configured(String)
    }

    public struct Entry: Sendable {
        public let name: String
        public let kind: Kind
        public let tags: [String]
        public let help: String
        /// The allowed values of each tag in `tags`.
        public let values: [String: TagValues]

        init(name: String, kind: Kind, tags: [String], help: String, values: [String: TagValues] = [:]) {
            self.name = name
            self.kind = kind
            self.tags = tags
            self.help = help
            self.values = values
        }
    }

    /// What a closed tag value becomes when it is not in its set.
    public static let otherValue = "other"

    public static let endpoints = ["breakpad", "generic", "sentry_store", "sentry_envelope", "sentry_minidump"]
    /// `malformed` reasons: the decoders' refusals and the HTTP front's.
    public static let malformedReasons = [
        "annotation_too_large", "bad_brotli", "bad_deflate", "bad_dump_compression", "bad_gzip", "bad_zstd",
        "duplicate_item", "header_too_large", "invalid_annotation_name", "invalid_auth",
        "invalid_dump_name", "invalid_envelope", "invalid_http", "invalid_json", "invalid_json_value", "invalid_minidump",
        "invalid_payload_structure", "invalid_project", "invalid_uuid", "item_too_long", "missing_auth",
        "missing_minidump", "no_annotations", "no_boundary", "no_content_length", "no_content_type", "read_timeout",
        "request_timeout", "too_large", "too_many_annotations", "too_many_items", "too_many_parts", "unauthorized_uuid",
        "unknown_key", "unknown_project", "unsupported_content_encoding", "wrong_content_type",
    ]
    public static let overloadReasons = ["queue_full", "memory"]
    public static let throttleResults = ["accept", "defer", "reject", "fakeaccept"]
    public static let attemptResults = ["success", "retry", "failure"]
    /// Every status the collector answers with.
    public static let statuses = ["200", "400", "401", "403", "404", "405", "408", "413", "429", "431", "500", "503"]
    /// Sentry envelope item types (develop.sentry.dev/sdk/envelope-items); any other type counts as `other`.
    public static let sentryItemTypes = [
        "attachment", "check_in", "client_report", "feedback", "log", "otel_log", "profile", "profile_chunk",
        "replay_event", "replay_recording", "replay_video", "security", "session", "sessions", "span", "statsd",
        "metric_meta", "trace_metric", "transaction", "user_report", "unreal_report", "form_data", "nel", "raw_security",
    ]

    /// A Sentry item type as the `ignored_item` tag: a known type, else `other`.
    public static func sentryItemType(_ type: String) -> String { sentryItemTypes.contains(type) ? type : otherValue }

    public static let incomingCrash = "incoming_crash"
    public static let malformed = "malformed"
    public static let throttle = "throttle"
    public static let throttleRule = "throttle_rule"
    public static let crashSize = "crash_size"
    public static let decodeTime = "decode.time"
    public static let throttleTime = "throttle.time"
    public static let storeTime = "store.time"
    public static let publishTime = "publish.time"
    public static let requestTime = "request.time"
    public static let saveCrash = "save_crash"
    public static let savedBytes = "save_crash.bytes"
    public static let publishCrash = "publish_crash"
    public static let queueReconnect = "queue.reconnect"
    public static let spoolSize = "spool.size"
    public static let spoolBytes = "spool.bytes"
    public static let spoolOldestAge = "spool.oldest_age"
    public static let spoolQuarantined = "spool.quarantined"
    public static let publishBacklogSize = "publish_backlog.size"
    public static let response = "response"
    public static let crashOutcome = "crash_outcome"
    public static let workerQueueDepth = "worker_queue.depth"
    public static let inflightBytes = "inflight.bytes"
    public static let overload = "overload"
    public static let statsdDropped = "statsd.dropped"
    public static let logBlocked = "log.blocked"
    public static let logDropped = "log.dropped"
    public static let ignoredItem = "ignored_item"
    public static let heartbeat = "heartbeat"

    public static let all: [Entry] = [
        Entry(name: incomingCrash, kind: .counter, tags: ["endpoint"], help: "Crash reports that reached the pipeline.",
              values: ["endpoint": .closed(endpoints)]),
        Entry(name: malformed, kind: .counter, tags: ["reason"], help: "Crash reports refused as malformed or too large.",
              values: ["reason": .closed(malformedReasons)]),
        Entry(name: throttle, kind: .counter, tags: ["result"], help: "Throttle decisions by result.",
              values: ["result": .closed(throttleResults)]),
        Entry(name: throttleRule, kind: .counter, tags: ["rule"], help: "Throttle decisions by deciding rule.",
              values: ["rule": .configured("rule names of the loaded rule file; ACCEPT_ALL for the null throttler")]),
        Entry(name: crashSize, kind: .histogram, tags: ["payload"], help: "Crash report size in bytes on the wire.",
              values: ["payload": .closed(["compressed", "uncompressed"])]),
        Entry(name: decodeTime, kind: .timer, tags: [], help: "Decoding time."),
        Entry(name: throttleTime, kind: .timer, tags: [], help: "Throttling time."),
        Entry(name: storeTime, kind: .timer, tags: [], help: "Storage time, retries included."),
        Entry(name: publishTime, kind: .timer, tags: [], help: "Queue publishing time, retries included."),
        Entry(name: requestTime, kind: .timer, tags: [], help: "Whole request time on the worker."),
        Entry(name: saveCrash, kind: .counter, tags: ["result"], help: "Storage attempts: success, retry, failure (no success with the null storage, which keeps nothing).",
              values: ["result": .closed(attemptResults)]),
        Entry(name: savedBytes, kind: .counter, tags: [], help: "Bytes written to storage (none with the null storage)."),
        Entry(name: publishCrash, kind: .counter, tags: ["result"], help: "Queue publishes: success, retry, failure (no success with the null queue, which queues nothing).",
              values: ["result": .closed(attemptResults)]),
        Entry(name: queueReconnect, kind: .counter, tags: [], help: "Queue connections (re)opened."),
        Entry(name: spoolSize, kind: .gauge, tags: [], help: "Crashes in the local outbox: not yet stored, or stored but not yet queued."),
        Entry(name: spoolBytes, kind: .gauge, tags: [], help: "Bytes in the local outbox."),
        Entry(name: spoolOldestAge, kind: .gauge, tags: [], help: "Age in seconds of the oldest crash in the outbox."),
        Entry(name: spoolQuarantined, kind: .gauge, tags: [], help: "Crashes storage refused for good, kept in SPOOL_DIR/quarantine."),
        Entry(name: publishBacklogSize, kind: .gauge, tags: [], help: "Crash IDs stored but not yet queued."),
        Entry(name: response, kind: .counter, tags: ["status"], help: "HTTP responses by status.",
              values: ["status": .closed(statuses)]),
        Entry(name: crashOutcome, kind: .counter, tags: ["outcome"],
              help: "Crashes by the outcome of their audit line (retry_later: told to resend).",
              values: ["outcome": .closed(AuditRecord.Outcome.allCases.map(\.rawValue))]),
        Entry(name: workerQueueDepth, kind: .gauge, tags: [], help: "Requests waiting for a worker."),
        Entry(name: inflightBytes, kind: .gauge, tags: [], help: "Request bytes held in memory, inflated bytes included."),
        Entry(name: overload, kind: .counter, tags: ["reason"], help: "Requests refused 503 because of load (queue_full, memory).",
              values: ["reason": .closed(overloadReasons)]),
        Entry(name: statsdDropped, kind: .counter, tags: [], help: "Statsd datagrams that could not be sent."),
        Entry(name: logBlocked, kind: .counter, tags: [], help: "Log lines whose writer found the log buffer full and waited for stdout."),
        Entry(name: logDropped, kind: .counter, tags: [], help: "Event-loop log lines dropped: stdout stuck and both log buffers full."),
        Entry(name: ignoredItem, kind: .counter, tags: ["type"], help: "Sentry envelope items accepted and ignored.",
              values: ["type": .closed(sentryItemTypes)]),
        Entry(name: heartbeat, kind: .gauge, tags: ["check"], help: "Heartbeat check result, sampled every 10 s: 1 ok or warning, 0 error.",
              values: ["check": .configured("names of the configured backends' heartbeat checks")]),
    ]

    public static func entry(_ name: String) -> Entry? { byName[name] }

    private static let byName = Dictionary(all.map { ($0.name, $0) }) { a, _ in a }
    private static let closedSets: [String: [String: Set<String>]] = byName.mapValues { entry in
        entry.values.compactMapValues { if case .closed(let v) = $0 { Set(v) } else { nil } }
    }

    /// `value` if the catalog allows it for `tag` of metric `name`, else `other`. Tags of
    /// configured sets, and metrics outside the catalog, pass unchanged.
    public static func allowed(_ name: String, tag: String, _ value: String) -> String {
        guard let set = closedSets[name]?[tag] else { return value }
        return set.contains(value) ? value : otherValue
    }
}
