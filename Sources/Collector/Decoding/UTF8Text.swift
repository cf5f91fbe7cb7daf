/// Text a client sent, made a `String` only when it is valid UTF-8.
///
/// Most annotations are ASCII. Checked eight bytes at a time, they skip the standard library's
/// `String(validating:as:)`, which instantiates generic metadata on every call: with the validation
/// itself, 3% of a small crash's CPU (docs/performance.md, "Issue 16, thirteenth pass").
enum UTF8Text {
    /// The bytes as a `String`, or nil when they are not valid UTF-8.
    static func string(_ bytes: UnsafeRawBufferPointer) -> String? {
        isASCII(bytes) ? String(decoding: bytes, as: UTF8.self) : String(validating: bytes, as: UTF8.self)
    }

    /// Whether no byte has its high bit set: ASCII is valid UTF-8, and decodes unchanged.
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var high: UInt64 = 0
        var i = 0
        while i + 8 <= bytes.count {
            high |= bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            high |= UInt64(bytes[i])
            i += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
}
