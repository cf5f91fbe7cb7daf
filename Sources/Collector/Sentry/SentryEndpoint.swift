import Foundation
import NIOCore

/// What the three Sentry endpoints (store, envelope, minidump) share: the project and key check,
/// body decompression, running the crash intake, and Sentry's answers.
public struct SentryEndpoint: Sendable {
    let intake: CrashIntake
    let limits: DecodeLimits
    let projectKeys: [String: String]
    /// `ProductName` per project id.
    let products: [String: String]

    public init(intake: CrashIntake, limits: DecodeLimits, projectKeys: [String: String], products: [String: String]) {
        self.intake = intake
        self.limits = limits
        self.projectKeys = projectKeys
        self.products = products
    }

    /// Runs `decode` and the pipeline through the crash intake. A throttle reject answers 200 with
    /// the event id, as Relay does for filtered events, so the client does not resend; only storage
    /// trouble answers `busy`.
    func run(endpoint: String, _ request: CollectorRequest, busy: CollectorResponse,
             answer: (String) -> CollectorResponse = Self.eventID,
             decode: (CollectorRequest) throws -> SentryEventReport) -> CollectorResponse {
        var eventID = ""
        return intake.handle(endpoint: endpoint, request: request, busy: busy, decode: { request in
            let event = try decode(request)
            eventID = event.eventID
            return CrashIntake.Decoded(event.report, auditExtra: [
                "sentry_event_id": event.eventID, "sentry_project_id": event.report.field("sentry_project_id") ?? "",
            ])
        }, respondMalformed: Self.error, respond: { outcome, _ in
            if case .retryLater = outcome { return busy }
            return answer(eventID)
        })
    }

    func authorize(_ request: CollectorRequest, envelopeDSN: String? = nil) throws -> SentryAuth {
        try SentryAuth.authorize(request, projectKeys: projectKeys, envelopeDSN: envelopeDSN)
    }

    /// The body without its `Content-Encoding` (gzip, deflate, br, zstd), and whether it had one.
    func decodedBody(_ request: CollectorRequest) throws -> (body: ByteBuffer, compressed: Bool) {
        guard request.body.readableBytes > 0 else { throw Malformed("no_content_length") }
        return try limits.decodedBody(request, refusesUnknown: true)
    }

    /// The event as a JSON object, its parse reserved from `memory` (`DecodeLimits.json`).
    func event(_ json: ByteBuffer, memory: MemoryLease) throws -> [String: JSONValue] {
        let value = try limits.json(json.readableBytesView, memory: memory, invalid: "invalid_json")
        guard case .object(let fields) = value else { throw Malformed("invalid_json_value") }
        return fields
    }

    // Sentry's answers: JSON, errors as `{"detail": …}`.

    static func eventID(_ id: String) -> CollectorResponse { .json(200, JSONValue.object(["id": .string(id)]).serialized()) }

    static func error(_ malformed: Malformed) -> CollectorResponse {
        .json(malformed.status, JSONValue.object(["detail": .string(malformed.reason)]).serialized())
    }

    /// Store and envelope clients honour 429 with `Retry-After` and `X-Sentry-Rate-Limits`
    /// (`<seconds>::organization`: every category, whole client).
    public static var rateLimited: CollectorResponse {
        .json(429, #"{"detail":"retry_later"}"#, headers: [
            ("Retry-After", CollectorResponse.retryAfterSeconds),
            ("X-Sentry-Rate-Limits", "\(CollectorResponse.retryAfterSeconds)::organization"),
        ])
    }

    /// The minidump endpoint answers busy as `/submit` does: Crashpad and Breakpad clients know 503
    /// as "retry later", while 429 and its headers are a Sentry SDK convention.
    public static var unavailable: CollectorResponse {
        .json(503, #"{"detail":"retry_later"}"#, headers: [("Retry-After", CollectorResponse.retryAfterSeconds)])
    }

    public static var tooLarge: CollectorResponse { error(.tooLarge) }
}
