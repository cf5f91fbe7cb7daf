import NIOCore

/// The limits every decoder enforces, from configuration (README, "Limits").
public struct DecodeLimits: Sendable {
    public var maxDecompressedBytes: Int
    public var maxParts: Int
    public var maxAnnotations: Int
    public var maxAnnotationBytes: Int
    public var maxJSONDepth: Int
    public var redactedAnnotations: [String]

    public init(_ config: CollectorConfiguration) {
        maxDecompressedBytes = config.maxDecompressedBytes
        maxParts = config.maxParts
        maxAnnotations = config.maxAnnotations
        maxAnnotationBytes = config.maxAnnotationBytes
        maxJSONDepth = config.maxJSONDepth
        redactedAnnotations = config.redactedAnnotations
    }

    /// Removes redacted annotations, leaving a collector note for each.
    public func redact(_ annotations: inout [String: JSONValue], notes: inout [String]) {
        for name in redactedAnnotations where annotations.removeValue(forKey: name) != nil {
            notes.append("Removed \(name) from raw crash.")
        }
    }

    /// Dump names are `[A-Za-z0-9_]`, at most 30 characters, and never a storage folder name.
    public static func sanitizedDumpName(_ name: String) throws -> String {
        let kept = name.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
        let clean = String(String.UnicodeScalarView(kept.prefix(30)))
        guard !clean.isEmpty, !["raw_crash", "dump_names", "processed_crash"].contains(clean) else {
            throw Malformed("invalid_dump_name")
        }
        return clean
    }

    /// Inflates a compressed body under the decompressed-size cap; `badReason` names the malformed case.
    public func inflate(_ body: ByteBuffer, format: Inflater.Format, badReason: String) throws -> ByteBuffer {
        try capped(badReason) { try Inflater.inflate(body, format: format, limit: $0) }
    }

    /// Decompresses a Brotli body under the same cap.
    public func unbrotli(_ body: ByteBuffer) throws -> ByteBuffer {
        try capped("bad_brotli") { try BrotliDecoder.decompress(body, limit: $0) }
    }

    private func capped(_ badReason: String, _ decompress: (Int) throws -> ByteBuffer) throws -> ByteBuffer {
        do {
            return try decompress(maxDecompressedBytes)
        } catch Inflater.Failure.tooLarge {
            throw Malformed.tooLarge
        } catch {
            throw Malformed(badReason)
        }
    }
}
