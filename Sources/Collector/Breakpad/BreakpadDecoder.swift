import NIOCore

/// Decodes a Breakpad/Crashpad/Mozilla crash report: a multipart body (optionally gzipped) whose
/// text parts are annotations, whose `application/json` part holds annotations as a JSON object,
/// and whose other parts are dumps.
public struct BreakpadDecoder: Sendable {
    public let limits: DecodeLimits
    /// `metadata.payload` for a form-only crash (`multipart`, or `generic` for the generic collector).
    public let formPayloadKind: String
    /// The generic collector removes `\0` from every value.
    public let stripsNulls: Bool
    /// The generic collector also takes `application/x-www-form-urlencoded` forms.
    public let acceptsURLEncoded: Bool
    /// A Sentry minidump upload may carry nothing but the dump.
    public let requiresAnnotations: Bool

    public init(limits: DecodeLimits, formPayloadKind: String = "multipart", stripsNulls: Bool = false,
                acceptsURLEncoded: Bool = false, requiresAnnotations: Bool = true) {
        self.limits = limits
        self.formPayloadKind = formPayloadKind
        self.stripsNulls = stripsNulls
        self.acceptsURLEncoded = acceptsURLEncoded
        self.requiresAnnotations = requiresAnnotations
    }

    /// Socorro's generic collector: multipart or urlencoded forms, `\0` removed from values.
    public static func generic(limits: DecodeLimits) -> BreakpadDecoder {
        BreakpadDecoder(limits: limits, formPayloadKind: "generic", stripsNulls: true, acceptsURLEncoded: true)
    }

    public func decode(_ request: CollectorRequest) throws -> CrashReport {
        let contentType = request.header("Content-Type")
        let urlencoded = acceptsURLEncoded
            && HeaderParameters(contentType ?? "").value.lowercased() == "application/x-www-form-urlencoded"
        let boundary = try urlencoded ? "" : MultipartForm.boundary(ofContentType: contentType)
        guard request.body.readableBytes > 0 else { throw Malformed("no_content_length") }
        let (body, compressed) = try limits.decodedBody(request, refusesUnknown: false)

        var report = CrashReport(payloadKind: formPayloadKind, payloadCompressed: compressed,
                                 payloadSize: request.body.readableBytes, userAgent: request.header("User-Agent") ?? "")
        var tally = FormTally()
        if urlencoded {
            try URLEncodedForm.forEachField(in: body, maxParts: limits.maxParts, maxValueBytes: limits.maxAnnotationBytes) {
                tally.textBytes += $0.utf8.count + $1.utf8.count
                try addAnnotation($0, .string($1), to: &report)
            }
        } else {
            let parts = try MultipartForm.parse(body, boundary: boundary, maxParts: limits.maxParts)
            // Most parts are annotations: one allocation instead of regrowing and rehashing.
            report.annotations.reserveCapacity(min(parts.count, limits.maxAnnotations))
            for part in parts {
                try add(part, to: &report, memory: request.memory, tally: &tally)
            }
            if tally.json && tally.textBytes > 0 {
                report.collectorNotes.append("includes annotations in both json-encoded extra and formdata parts")
            }
        }
        guard !report.annotations.isEmpty || !requiresAnnotations else { throw Malformed("no_annotations") }
        limits.redact(&report.annotations, notes: &report.collectorNotes)
        try limits.reserveRawCrash(textBytes: tally.textBytes, memory: request.memory)
        return report
    }

    /// What a form's annotation parts were: whether one was JSON (Antenna notes a crash with
    /// both kinds), and the bytes of the text ones (names and values), whose raw crash is reserved.
    private struct FormTally {
        var json = false
        var textBytes = 0
    }

    /// One part, as Antenna's `extract_payload` reads it: a part without a name is skipped, a JSON
    /// part replaces the annotations read so far, a text part that is not UTF-8 is left out with
    /// a note (the crash is kept: a client answered 400 never sends it again).
    private func add(_ part: FormPart, to report: inout CrashReport, memory: MemoryLease, tally: inout FormTally) throws {
        guard !part.name.isEmpty else { return }
        let type = part.contentType?.lowercased() ?? ""
        if type.hasPrefix("application/json") {
            let value = try limits.json(part.body.readableBytesView, memory: memory, invalid: "invalid_json")
            guard case .object(let fields) = value else { throw Malformed("invalid_json_value") }
            report.annotations.removeAll(keepingCapacity: true)
            for (name, value) in fields { try addAnnotation(name, value, to: &report) }
            report.payloadKind = "json"
            tally.json = true
        } else if part.filename != nil || !(type.isEmpty || type.hasPrefix("text/")) {
            // The sanitized name, also in collector notes: the client's is up to a part header long.
            let name = try DumpNames.sanitized(part.name)
            if type != "application/octet-stream" {
                report.collectorNotes.append("unknown content type: \(name) \(Self.noted(type.isEmpty ? "text/plain" : type))")
            }
            var bytes = part.body
            if DumpNames.isMinidump(part.name) {
                bytes = try limits.unwrappedMinidump(bytes, name: name, memory: memory, notes: &report.collectorNotes)
            }
            try DumpNames.add(bytes, named: name, to: &report)
        } else {
            tally.textBytes += part.name.utf8.count + part.body.readableBytes
            guard let text = part.body.withUnsafeReadableBytes(UTF8Text.string) else {
                report.collectorNotes.append("extract payload text part exception: invalid text or charset: utf-8")
                return
            }
            try addAnnotation(part.name, .string(text), to: &report)
        }
    }

    /// A client's content type as a note shows it: at most 100 bytes, printable ASCII.
    static func noted(_ type: String) -> String {
        String(decoding: type.utf8.prefix(100).map { (0x20..<0x7F).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// Every annotation, from a text part, a urlencoded field or a JSON part's member, comes
    /// through here: its name and value are each at most `MAX_ANNOTATION_BYTES` (a string value
    /// by its UTF-8, any other value by its JSON as stored), and `stripsNulls` applies to strings.
    private func addAnnotation(_ name: String, _ value: JSONValue, to report: inout CrashReport) throws {
        // Control characters, or U+FFFD (bytes EF BF BD) where the name was not valid UTF-8.
        guard !name.isEmpty, !name.utf8.contains(where: { $0 < 0x20 }),
              !name.utf8.contains(0xEF) || !name.unicodeScalars.contains("\u{FFFD}") else {
            throw Malformed("invalid_annotation_name")
        }
        guard name.utf8.count <= limits.maxAnnotationBytes else { throw Malformed("annotation_too_large") }
        var value = value
        switch value {
        case .string(var text):
            guard text.utf8.count <= limits.maxAnnotationBytes else { throw Malformed("annotation_too_large") }
            // Checked on the bytes first: removing Characters walks grapheme clusters.
            if stripsNulls, text.utf8.contains(0) {
                text.removeAll { $0 == "\0" }
                value = .string(text)
            }
        default:
            var json: [UInt8] = []
            value.write(to: &json)
            guard json.count <= limits.maxAnnotationBytes else { throw Malformed("annotation_too_large") }
        }
        if report.annotations.count >= limits.maxAnnotations, report.annotations[name] == nil {
            throw Malformed("too_many_annotations")
        }
        report.annotations[name] = value
    }
}
