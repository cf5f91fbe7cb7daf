import NIOCore

/// The limits every decoder enforces, from configuration (README, "Limits").
public struct DecodeLimits: Sendable {
    public var maxDecompressedBytes: Int
    public var maxParts: Int
    public var maxAnnotations: Int
    public var maxAnnotationBytes: Int
    public var maxJSONDepth: Int
    public var maxInflightBytes: Int
    public var redactedAnnotations: [String]

    public init(_ config: CollectorConfiguration) {
        maxDecompressedBytes = config.maxDecompressedBytes
        maxParts = config.maxParts
        maxAnnotations = config.maxAnnotations
        maxAnnotationBytes = config.maxAnnotationBytes
        maxJSONDepth = config.maxJSONDepth
        maxInflightBytes = config.maxInflightBytes
        redactedAnnotations = config.redactedAnnotations
    }

    /// Removes redacted annotations, leaving a collector note for each.
    public func redact(_ annotations: inout [String: JSONValue], notes: inout [String]) {
        for name in redactedAnnotations where annotations.removeValue(forKey: name) != nil {
            notes.append("Removed \(name) from raw crash.")
        }
    }

    /// The body of `request` without its `Content-Encoding`, and whether it had one. Unknown
    /// encodings are refused when `refusesUnknown` (Sentry), ignored otherwise (Breakpad clients
    /// only ever send gzip; Antenna ignores the header's other values).
    public func decodedBody(_ request: CollectorRequest, refusesUnknown: Bool) throws -> (body: ByteBuffer, compressed: Bool) {
        let header = request.header("Content-Encoding") ?? ""
        guard let coding = Compression.contentEncoding(header) else {
            if refusesUnknown { throw Malformed("unsupported_content_encoding") }
            return (request.body, false)
        }
        guard let coding else { return (request.body, false) }
        return (try decompress(request.body, coding, memory: request.memory, badReason: coding.badBodyReason), true)
    }

    /// Bytes held per byte of a text annotation once the crash is built: the raw crash JSON
    /// escapes a control byte as six (`\u0001`), and storage copies that JSON once more, so 6 + 6,
    /// plus the annotation's own String.
    static let rawCrashCostPerTextByte = 13

    /// Reserves, from `memory`, what the raw crash made of text annotations will hold
    /// (`rawCrashCostPerTextByte` per byte of their names and values): annotations of control
    /// bytes would otherwise grow sixfold, twice, outside `MAX_INFLIGHT_BYTES`. A JSON part's
    /// values were reserved by its parse. A request that could never hold this with what it holds
    /// already is too large (413), like a JSON document; one that cannot now is busy.
    func reserveRawCrash(textBytes: Int, memory: MemoryLease) throws {
        let cost = textBytes * Self.rawCrashCostPerTextByte
        guard memory.bytes + cost <= maxInflightBytes else { throw Malformed.tooLarge }
        try memory.reserve(cost)
    }

    /// A JSON document a client sent, parsed only once its memory is reserved from `memory`:
    /// Foundation's decoder and the `JSONValue` tree peak at up to 38 times the document's bytes
    /// (arrays of small values, measured), so `JSONValue.parseCostPerByte` times its length is
    /// reserved, kept until the request is answered. A document that could never fit
    /// `MAX_INFLIGHT_BYTES` is too large (413); one that does not fit now is busy, like inflating.
    /// - Parameter invalid: the malformed reason when it does not parse.
    public func json<Bytes: Collection>(_ bytes: Bytes, memory: MemoryLease, invalid: String) throws -> JSONValue
    where Bytes.Element == UInt8 {
        try memory.reserve(try parseCost(ofBytes: bytes.count))
        do {
            return try JSONValue.parse(bytes, maxDepth: maxJSONDepth)
        } catch {
            throw Malformed(invalid)
        }
    }

    /// What parsing a document of `count` bytes reserves; too large (413) when that could never
    /// fit `MAX_INFLIGHT_BYTES`.
    func parseCost(ofBytes count: Int) throws -> Int {
        let cost = count * JSONValue.parseCostPerByte
        guard cost <= maxInflightBytes else { throw Malformed.tooLarge }
        return cost
    }

    /// Decompresses under the decompressed-size cap, reserving from `memory`; `badReason` names the
    /// malformed case. Running out of in-flight budget is rethrown for the endpoint to answer busy.
    public func decompress(_ body: ByteBuffer, _ compression: Compression, memory: MemoryLease, badReason: String) throws -> ByteBuffer {
        do {
            return try compression.decompress(body, limit: maxDecompressedBytes, memory: memory)
        } catch Inflater.Failure.tooLarge {
            throw Malformed.tooLarge
        } catch let exhausted as InflightBytes.Exhausted {
            throw exhausted
        } catch {
            throw Malformed(badReason)
        }
    }
}
