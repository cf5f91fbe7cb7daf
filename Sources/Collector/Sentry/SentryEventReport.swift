import Foundation
import NIOCore

/// A Sentry event mapped to the crash the pipeline handles: the Sentry fields as annotations, plus
/// the Socorro names the throttler reads (`release` → `Version`, project → `ProductName` through the
/// configured table) so one rule file covers Breakpad and Sentry alike. The event JSON itself is
/// kept as the dump `sentry_event`.
struct SentryEventReport {
    var eventID: String
    var report: CrashReport

    /// - Parameters:
    ///   - annotations: what the client sent besides the event (minidump form fields).
    ///   - fallbackEventID: the envelope header's `event_id`, used when the event has none.
    init(event: [String: JSONValue], eventJSON: ByteBuffer?, auth: SentryAuth, product: String?,
         annotations: [String: JSONValue] = [:], dumps: [CrashDump], fallbackEventID: JSONValue? = nil,
         request: CollectorRequest, payloadKind: String, compressed: Bool) {
        eventID = Self.eventID(event["event_id"]) ?? Self.eventID(fallbackEventID) ?? Self.newEventID()
        var fields = annotations
        fields["sentry_project_id"] = .string(auth.project)
        fields["sentry_event_id"] = .string(eventID)
        let sdk = [event["sdk"]?["name"], event["sdk"]?["version"]].compactMap { $0?.stringValue }.joined(separator: "/")
        if let client = auth.client ?? (sdk.isEmpty ? nil : sdk) { fields["sentry_client"] = .string(client) }
        for name in ["platform", "release", "environment"] {
            if case .string(let value)? = event[name] { fields["sentry_" + name] = .string(value) }
        }
        if case .string(let release)? = event["release"] { fields["Version"] = .string(release) }
        if let product { fields["ProductName"] = .string(product) }

        var dumps = dumps
        if let eventJSON { dumps.insert(CrashDump(name: "sentry_event", bytes: eventJSON), at: 0) }
        report = CrashReport(annotations: fields, dumps: dumps, payloadKind: payloadKind, payloadCompressed: compressed,
                             payloadSize: request.body.readableBytes, userAgent: request.header("User-Agent") ?? "")
    }

    /// A client event id: 32 hex digits, dashes allowed (a UUID), normalized to lower-case without dashes.
    static func eventID(_ value: JSONValue?) -> String? {
        guard case .string(let raw)? = value else { return nil }
        let id = raw.replacingOccurrences(of: "-", with: "").lowercased()
        return id.utf8.count == 32 && id.allSatisfy(\.isHexDigit) ? id : nil
    }

    static func newEventID() -> String { RandomUUID.make(hyphens: false) }
}
