import NIOCore

/// JSON as Python's `json` module writes it by default: `NaN`, `Infinity` and `-Infinity` for
/// floats JSON cannot hold. Relay reads them as `null` from the Python SDKs (`json_forensics`);
/// a strict parse would refuse the whole event.
enum PythonJSON {
    /// Whether `client` (`sentry_client`) is a Python SDK: raven-python, or sentry-python, which
    /// names itself `sentry.python`.
    static func isPythonClient(_ client: String?) -> Bool {
        guard let client else { return false }
        return client.hasPrefix("raven-python/") || client.hasPrefix("sentry-python/") || client.hasPrefix("sentry.python/")
    }

    /// `body` with every `NaN`, `Infinity` and `-Infinity` outside strings written as `null`, or
    /// nil when it has none.
    static func nonFiniteAsNull(_ body: ByteBuffer) -> ByteBuffer? {
        body.withUnsafeReadableBytes { bytes -> ByteBuffer? in
            var out: ByteBuffer?
            var copied = 0
            var strings = JSONStringTracker()
            var i = 0
            while i < bytes.count {
                let byte = bytes[i]
                // A token holds no quote, so skipping its bytes leaves the tracker where it was.
                if !strings.isInString(byte), byte == UInt8(ascii: "N") || byte == UInt8(ascii: "I") || byte == UInt8(ascii: "-"),
                   let token = tokens.first(where: { bytes[i...].starts(with: $0) }) {
                    if out == nil { out = ByteBufferAllocator().buffer(capacity: bytes.count * 4 / 3 + 64) }
                    out!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied..<i]))
                    out!.writeBytes(null)
                    i += token.count
                    copied = i
                    continue
                }
                i += 1
            }
            guard var out else { return nil }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied...]))
            return out
        }
    }

    private static let tokens = ["NaN", "Infinity", "-Infinity"].map { Array($0.utf8) }
    private static let null = Array("null".utf8)
}
