/// Every metric Breakwater emits, in one place. Names are unprefixed: the statsd backend adds
/// `STATSD_PREFIX.` and the Prometheus backend maps them by `PrometheusNaming`.
/// docs/operations.md's metric table mirrors this list; dashboards and alerts use only these names.
public enum MetricCatalog {
    public enum Kind: String, Sendable { case counter, gauge, histogram, timer }

    public struct Entry: Sendable {
        public let name: String
        public let kind: Kind
        public let tags: [String]
        public let help: String
    }

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
    public static let workerQueueDepth = "worker_queue.depth"
    public static let inflightBytes = "inflight.bytes"
    public static let overload = "overload"
    public static let statsdDropped = "statsd.dropped"
    public static let ignoredItem = "ignored_item"
    public static let heartbeat = "heartbeat"

    public static let all: [Entry] = [
        Entry(name: incomingCrash, kind: .counter, tags: ["endpoint"], help: "Crash reports that reached the pipeline."),
        Entry(name: malformed, kind: .counter, tags: ["reason"], help: "Crash reports refused as malformed or too large."),
        Entry(name: throttle, kind: .counter, tags: ["result"], help: "Throttle decisions by result."),
        Entry(name: throttleRule, kind: .counter, tags: ["rule"], help: "Throttle decisions by deciding rule."),
        Entry(name: crashSize, kind: .histogram, tags: ["payload"], help: "Crash report size in bytes on the wire."),
        Entry(name: decodeTime, kind: .timer, tags: [], help: "Decoding time."),
        Entry(name: throttleTime, kind: .timer, tags: [], help: "Throttling time."),
        Entry(name: storeTime, kind: .timer, tags: [], help: "Storage time, retries included."),
        Entry(name: publishTime, kind: .timer, tags: [], help: "Queue publishing time, retries included."),
        Entry(name: requestTime, kind: .timer, tags: [], help: "Whole request time on the worker."),
        Entry(name: saveCrash, kind: .counter, tags: ["result"], help: "Storage attempts: success, retry, failure."),
        Entry(name: savedBytes, kind: .counter, tags: [], help: "Bytes written to storage."),
        Entry(name: publishCrash, kind: .counter, tags: ["result"], help: "Queue publishes: success, retry, failure."),
        Entry(name: queueReconnect, kind: .counter, tags: [], help: "Queue connections (re)opened."),
        Entry(name: spoolSize, kind: .gauge, tags: [], help: "Crashes in the local outbox: not yet stored, or stored but not yet queued."),
        Entry(name: spoolBytes, kind: .gauge, tags: [], help: "Bytes in the local outbox."),
        Entry(name: spoolOldestAge, kind: .gauge, tags: [], help: "Age in seconds of the oldest crash in the outbox."),
        Entry(name: spoolQuarantined, kind: .gauge, tags: [], help: "Crashes storage refused for good, kept in SPOOL_DIR/quarantine."),
        Entry(name: publishBacklogSize, kind: .gauge, tags: [], help: "Crash IDs stored but not yet queued."),
        Entry(name: response, kind: .counter, tags: ["status"], help: "HTTP responses by status."),
        Entry(name: workerQueueDepth, kind: .gauge, tags: [], help: "Requests waiting for a worker."),
        Entry(name: inflightBytes, kind: .gauge, tags: [], help: "Request bytes held in memory."),
        Entry(name: overload, kind: .counter, tags: ["reason"], help: "Requests refused 503 because of load (queue_full, memory)."),
        Entry(name: statsdDropped, kind: .counter, tags: [], help: "Statsd datagrams that could not be sent."),
        Entry(name: ignoredItem, kind: .counter, tags: ["type"], help: "Sentry envelope items accepted and ignored."),
        Entry(name: heartbeat, kind: .gauge, tags: ["check"], help: "Heartbeat check result, sampled every 10 s: 1 ok or warning, 0 error."),
    ]

    public static func entry(_ name: String) -> Entry? { all.first { $0.name == name } }
}
