import NIOCore
import Telemetry

/// `POST <prefix>/<project>/envelope/`: current Sentry SDKs. An envelope with an `event` item or a
/// minidump attachment is one crash: the event JSON, its attachments (`attachment_type:
/// event.minidump` as `upload_file_minidump`, others under their sanitized file name) as dumps.
/// Every other item (sessions, client reports, transactions, lone attachments…) is accepted and
/// counted as ignored; an envelope of only those answers 200 without reaching the pipeline.
public struct SentryEnvelopeResource: Sendable {
    let sentry: SentryEndpoint

    public init(sentry: SentryEndpoint) { self.sentry = sentry }

    /// An envelope split into what becomes a crash and what is ignored.
    struct Parsed {
        var auth: SentryAuth
        var envelope: SentryEnvelope
        var compressed: Bool
        var event: SentryEnvelope.Item?
        var attachments: [SentryEnvelope.Item]
        var ignored: [String]
        var hasMinidump: Bool
        var isCrash: Bool { event != nil || hasMinidump }
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        // Parsing comes first to tell crashes from other telemetry (so `decode.time` covers only the
        // mapping to a crash); its errors still reach the intake, which counts and audits them.
        let parsed = Result { try parse(request) }
        if case .success(let envelope) = parsed {
            // Item types are client text: known Sentry types pass, anything else is `other`.
            for type in envelope.ignored {
                sentry.intake.telemetry.count(MetricCatalog.ignoredItem, ("type", MetricCatalog.sentryItemType(type)))
            }
            if !envelope.isCrash {
                let id = SentryEventReport.eventID(envelope.envelope.headers["event_id"])
                return id.map(SentryEndpoint.eventID) ?? .json(200, "{}")
            }
        }
        return sentry.run(endpoint: "sentry_envelope", request, busy: SentryEndpoint.rateLimited) { request in
            try report(parsed.get(), request)
        }
    }

    private func parse(_ request: CollectorRequest) throws -> Parsed {
        // Without a key in the request, the envelope's `dsn` header may carry it (as Relay reads it).
        var requestAuth: SentryAuth?
        do {
            requestAuth = try sentry.authorize(request)
        } catch let error as Malformed where error.reason == "missing_auth" {
            // Only a project the key table lists is worth inflating a body for.
            if !sentry.projectKeys.isEmpty, SentryAuth.project(of: request).flatMap({ sentry.projectKeys[String($0)] }) == nil {
                throw error
            }
        }
        let (body, compressed) = try sentry.decodedBody(request)
        let envelope = try SentryEnvelope.parse(body, maxItems: sentry.limits.maxParts, limits: sentry.limits, memory: request.memory)
        let auth = try requestAuth ?? sentry.authorize(request, envelopeDSN: envelope.headers["dsn"]?.stringValue)
        var parsed = Parsed(auth: auth, envelope: envelope, compressed: compressed, event: nil, attachments: [], ignored: [],
                            hasMinidump: false)
        for item in envelope.items {
            switch item.type {
            case "event":
                guard parsed.event == nil else { throw Malformed("duplicate_item") }
                parsed.event = item
            case "attachment":
                if item.headers["attachment_type"]?.stringValue == "event.minidump" {
                    guard !parsed.hasMinidump else { throw Malformed("duplicate_item") }
                    parsed.hasMinidump = true
                    // The minidump's stored name is fixed: it goes first, so no attachment can take it.
                    parsed.attachments.insert(item, at: 0)
                } else {
                    parsed.attachments.append(item)
                }
            default:
                parsed.ignored.append(item.type)
            }
        }
        if !parsed.isCrash { parsed.ignored += parsed.attachments.map(\.type) }
        return parsed
    }

    private func report(_ parsed: Parsed, _ request: CollectorRequest) throws -> SentryEventReport {
        var crash = CrashReport(payloadKind: "sentry_envelope")
        for item in parsed.attachments {
            if item.headers["attachment_type"]?.stringValue == "event.minidump" {
                let dump = try sentry.limits.unwrappedMinidump(item.payload, name: "upload_file_minidump", memory: request.memory,
                                                               notes: &crash.collectorNotes)
                guard DecodeLimits.isMinidump(dump) else { throw Malformed("invalid_minidump") }
                try DumpNames.add(dump, named: "upload_file_minidump", to: &crash)
            } else {
                try DumpNames.add(item.payload, named: item.headers["filename"]?.stringValue ?? "attachment", to: &crash)
            }
        }
        var event = SentryEventReport(event: try parsed.event.map { try sentry.event($0.payload, memory: request.memory) } ?? [:], eventJSON: parsed.event?.payload,
                                      auth: parsed.auth, product: sentry.products[parsed.auth.project], dumps: crash.dumps,
                                      fallbackEventID: parsed.envelope.headers["event_id"], request: request,
                                      payloadKind: "sentry_envelope", compressed: parsed.compressed)
        event.report.collectorNotes = crash.collectorNotes
        return event
    }
}
