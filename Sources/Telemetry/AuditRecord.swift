import Logging

/// The one audit line per crash (`Type: "crash"`). Field names are the documented schema (README, "Audit log").
public struct AuditRecord: Sendable {
    public enum Outcome: String, Sendable, CaseIterable {
        case accepted, deferred, rejected, fakeaccepted, malformed, too_large, retry_later, spooled, unauthorized, forbidden
    }

    public var crashID: String?
    public var endpoint: String
    public var outcome: Outcome
    public var rule: String?
    public var reason: String?
    public var payloadSize: Int
    public var dumps: [String]
    public var durationMs: Double
    public var status: Int
    /// Whether the crash ID reached the queue (nil when queuing was not attempted).
    public var queued: Bool?
    /// Endpoint-specific extras (Sentry event id, project, ...).
    public var extra: [String: String]

    public init(crashID: String? = nil, endpoint: String, outcome: Outcome, rule: String? = nil, reason: String? = nil,
                payloadSize: Int = 0, dumps: [String] = [], durationMs: Double = 0, status: Int = 200,
                queued: Bool? = nil, extra: [String: String] = [:]) {
        self.crashID = crashID
        self.endpoint = endpoint
        self.outcome = outcome
        self.rule = rule
        self.reason = reason
        self.payloadSize = payloadSize
        self.dumps = dumps
        self.durationMs = durationMs
        self.status = status
        self.queued = queued
        self.extra = extra
    }

    /// The line's fields, unsorted (`extra` names are the endpoints' own, never a schema field's).
    var fields: [(key: String, value: Logger.MetadataValue)] {
        var fields: [(key: String, value: Logger.MetadataValue)] = [
            ("msg", .string("\(crashID ?? "-"): \(outcome.rawValue)")),
            ("endpoint", .string(endpoint)),
            ("outcome", .string(outcome.rawValue)),
            ("rule", .string(rule ?? "")),
            ("reason", .string(reason ?? "")),
            ("payload_size", .stringConvertible(payloadSize)),
            ("dumps", .array(dumps.map { .string($0) })),
            ("duration_ms", .stringConvertible((durationMs * 1000).rounded() / 1000)),
            ("status", .stringConvertible(status)),
        ]
        fields.reserveCapacity(fields.count + 2 + extra.count)
        if let crashID { fields.append(("crash_id", .string(crashID))) }
        if let queued { fields.append(("queued", .stringConvertible(queued))) }
        for (k, v) in extra { fields.append((k, .string(v))) }
        return fields
    }
}
