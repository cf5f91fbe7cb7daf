import NIOCore

/// `application/x-www-form-urlencoded` bodies (the generic endpoint), decoded one field at a time
/// so the part and size limits apply as it goes: a field count past `maxParts` or a value past
/// `maxAnnotationBytes` is refused before the rest of the body is looked at or decoded.
public enum URLEncodedForm {
    public static func forEachField(in body: ByteBuffer, maxParts: Int, maxValueBytes: Int,
                                    _ field: (String, String) throws -> Void) throws {
        let view = body.readableBytesView
        var fields = 0
        var start = view.startIndex
        while start < view.endIndex {
            let end = view[start...].firstIndex(of: UInt8(ascii: "&")) ?? view.endIndex
            defer { start = end + 1 }
            let pair = view[start..<end]
            if pair.isEmpty { continue }
            fields += 1
            guard fields <= maxParts else { throw Malformed("too_many_parts") }
            let eq = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            let rawValue = eq < pair.endIndex ? pair[(eq + 1)...] : pair[pair.endIndex...]
            // Decoding never lengthens: %XX is three bytes for one.
            guard rawValue.count / 3 <= maxValueBytes else { throw Malformed("annotation_too_large") }
            let value = decoded(rawValue)
            guard value.utf8.count <= maxValueBytes else { throw Malformed("annotation_too_large") }
            try field(decoded(pair[..<eq]), value)
        }
    }

    /// `+` as space and `%XX` as its byte; a `%` not followed by two hex digits stays as it is.
    static func decoded(_ bytes: ByteBufferView.SubSequence) -> String {
        guard bytes.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) else {
            return String(decoding: bytes, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let byte = bytes[i]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), i + 2 < bytes.endIndex, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(byte)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
