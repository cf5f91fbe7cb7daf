import Foundation
import NIOCore

/// `POST <prefix>/<project>/minidump/`: Crashpad or Breakpad pointed at a Sentry-style URL
/// (`…/minidump/?sentry_key=<key>`). Either a multipart upload (`upload_file_minidump`, other
/// parts as annotations, `sentry[…]` fields or a `sentry` JSON field as the event) or the bare
/// dump as the body. The dump must start with `MDMP`; the answer is the event id as plain text, hyphenated as
/// Relay writes it.
public struct SentryMinidumpResource: Sendable {
    let sentry: SentryEndpoint
    let form: BreakpadDecoder

    public init(sentry: SentryEndpoint) {
        self.sentry = sentry
        form = BreakpadDecoder(limits: sentry.limits, formPayloadKind: "sentry_minidump", requiresAnnotations: false)
    }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        sentry.run(endpoint: "sentry_minidump", request, busy: SentryEndpoint.unavailable, answer: { .text(200, Self.hyphenated($0)) }) { request in
            let auth = try sentry.authorize(request)
            var upload: CrashReport
            if HeaderParameters(request.header("Content-Type") ?? "").value.lowercased().hasPrefix("multipart/") {
                upload = try form.decode(request)
            } else {
                let (body, compressed) = try sentry.decodedBody(request)
                upload = CrashReport(payloadKind: "sentry_minidump", payloadCompressed: compressed)
                let dump = try sentry.limits.unwrappedMinidump(body, name: "upload_file_minidump", memory: request.memory,
                                                               notes: &upload.collectorNotes)
                upload.dumps = [CrashDump(name: "upload_file_minidump", bytes: dump)]
            }
            guard let dump = upload.dumps.first(where: { $0.name == "upload_file_minidump" }) else { throw Malformed("missing_minidump") }
            guard DecodeLimits.isMinidump(dump.bytes) else { throw Malformed("invalid_minidump") }
            let event = try Self.event(from: upload.annotations, limits: sentry.limits, memory: request.memory)
            var crash = SentryEventReport(event: event, eventJSON: event.isEmpty ? nil : ByteBuffer(string: JSONValue.object(event).serialized()),
                                          auth: auth, product: sentry.products[auth.project], annotations: upload.annotations,
                                          dumps: upload.dumps, request: request, payloadKind: "sentry_minidump",
                                          compressed: upload.payloadCompressed)
            crash.report.collectorNotes = upload.collectorNotes
            return crash
        }
    }

    /// The event id as Relay answers a minidump upload: a hyphenated UUID, which Crashpad keeps
    /// as the report's server id (store and envelope answers keep the 32 hex digits).
    static func hyphenated(_ id: String) -> String {
        let hex = Array(id.utf8)
        guard hex.count == 32 else { return id }
        return [hex[0..<8], hex[8..<12], hex[12..<16], hex[16..<20], hex[20...]].map { String(decoding: $0, as: UTF8.self) }
            .joined(separator: "-")
    }

    /// The event Sentry reads from form fields: a `sentry` field holding JSON, then every
    /// `sentry[a][b]` field set at that path (`sentry[release]`, `sentry[tags][key]`).
    static func event(from annotations: [String: JSONValue], limits: DecodeLimits, memory: MemoryLease) throws -> [String: JSONValue] {
        let maxDepth = limits.maxJSONDepth
        var event = JSONValue.object([:])
        if case .string(let json)? = annotations["sentry"] {
            event = try limits.json(json.utf8, memory: memory, invalid: "invalid_json")
            guard case .object = event else { throw Malformed("invalid_json") }
        }
        for name in annotations.keys.sorted() where name.hasPrefix("sentry[") && name.hasSuffix("]") {
            let path = name.dropFirst("sentry[".count).dropLast().components(separatedBy: "][")
            guard path.count <= maxDepth, !path.contains(where: \.isEmpty) else { throw Malformed("invalid_annotation_name") }
            set(annotations[name]!, at: path[...], in: &event)
        }
        guard case .object(let fields) = event else { return [:] }
        return fields
    }

    private static func set(_ value: JSONValue, at path: ArraySlice<String>, in json: inout JSONValue) {
        guard let key = path.first else {
            json = value
            return
        }
        guard case .object(var fields) = json else { return }
        var child = fields[key] ?? .object([:])
        set(value, at: path.dropFirst(), in: &child)
        fields[key] = child
        json = .object(fields)
    }
}
