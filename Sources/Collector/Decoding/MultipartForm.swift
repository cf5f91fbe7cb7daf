import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// One part of a multipart body.
public struct FormPart: Sendable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: ByteBuffer
}

/// Splits a multipart body into parts, enforcing the part limit and refusing bodies without their
/// closing boundary (truncated uploads).
///
/// Written by hand rather than with multipart-kit's parser: profiling the benchmark showed that
/// parser (byte at a time, a new buffer for every run of bytes up to a CR, and dumps are full of
/// them) at about a third of the CPU of a typical crash. This one finds delimiters with `memchr`
/// and hands out parts as slices of the body, without copying. The tests check it against
/// multipart-kit's parser on the fixtures and on generated bodies.
public enum MultipartForm {
    /// The boundary of a `multipart/form-data` or `multipart/mixed` Content-Type.
    public static func boundary(ofContentType contentType: String?) throws -> String {
        guard let contentType, !contentType.isEmpty else { throw Malformed("no_content_type") }
        let params = HeaderParameters(contentType)
        let media = params.value.lowercased()
        guard media == "multipart/form-data" || media == "multipart/mixed" else { throw Malformed("wrong_content_type") }
        guard let boundary = params["boundary"], !boundary.isEmpty, boundary.utf8.count <= maxBoundaryBytes else { throw Malformed("no_boundary") }
        return boundary
    }

    /// Longest boundary accepted (RFC 2046 allows 70; clients stay well under this).
    static let maxBoundaryBytes = 200

    /// Longest header block of one part; past it the part header "has no end".
    static let maxPartHeaderBytes = 16 * 1024

    public static func parse(_ body: ByteBuffer, boundary: String, maxParts: Int) throws -> [FormPart] {
        let structure = Malformed("invalid_payload_structure")
        // Every delimiter but a leading one is preceded by CRLF.
        let delimiter = Array("\r\n--\(boundary)".utf8)
        return try body.withUnsafeReadableBytes { bytes -> [FormPart] in
            var parts: [FormPart] = []
            // The first delimiter may open the body without its CRLF.
            var cursor: Int
            if bytes.starts(with: delimiter.dropFirst(2)) {
                cursor = delimiter.count - 2
            } else {
                guard let first = find(delimiter, in: bytes, from: 0) else { throw structure }
                cursor = first + delimiter.count
            }
            while true {
                // After a delimiter: `--` closes the body, else transport padding and CRLF open a part.
                if cursor + 2 <= bytes.count, bytes[cursor] == UInt8(ascii: "-"), bytes[cursor + 1] == UInt8(ascii: "-") {
                    return parts
                }
                while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") || bytes[cursor] == UInt8(ascii: "\t") { cursor += 1 }
                guard cursor + 2 <= bytes.count, bytes[cursor] == 13, bytes[cursor + 1] == 10 else { throw structure }
                cursor += 2
                guard parts.count < maxParts else { throw Malformed("too_many_parts") }

                let headerEnd: Int
                if cursor + 2 <= bytes.count, bytes[cursor] == 13, bytes[cursor + 1] == 10 {
                    headerEnd = cursor  // a part without headers
                } else {
                    let limit = min(bytes.count, cursor + maxPartHeaderBytes)
                    guard let end = find(crlfcrlf, in: UnsafeRawBufferPointer(rebasing: bytes[..<limit]), from: cursor) else { throw structure }
                    headerEnd = end + 2
                }
                let headers = UnsafeRawBufferPointer(rebasing: bytes[cursor..<headerEnd])
                let contentStart = headerEnd + 2
                guard let next = find(delimiter, in: bytes, from: contentStart) else { throw structure }
                guard let part = makePart(headers: headers, content: body.getSlice(at: body.readerIndex + contentStart, length: next - contentStart)!) else {
                    throw structure
                }
                parts.append(part)
                cursor = next + delimiter.count
            }
        }
    }

    private static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    /// The first index of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = haystack.baseAddress, needle.count > 0 else { return nil }
        var i = start
        let last = haystack.count - needle.count
        return needle.withUnsafeBytes { n -> Int? in
            while i <= last {
                guard let hit = memchr(base + i, Int32(needle[0]), last - i + 1) else { return nil }
                i = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + i, n.baseAddress!, needle.count) == 0 { return i }
                i += 1
            }
            return nil
        }
    }

    /// A part from its header block (lines ending in CRLF); nil without a Content-Disposition,
    /// or with a line that is not `Name: value` (a stray delimiter). Only the parameters a part
    /// needs become Strings: this runs for every part of every crash.
    private static func makePart(headers: UnsafeRawBufferPointer, content: ByteBuffer) -> FormPart? {
        var disposition = false
        var name: String?, filename: String?, type: String?
        var lineStart = 0
        while lineStart < headers.count {
            var lineEnd = lineStart
            while lineEnd + 1 < headers.count, !(headers[lineEnd] == 13 && headers[lineEnd + 1] == 10) { lineEnd += 1 }
            if lineEnd + 1 >= headers.count { lineEnd = headers.count }
            let line = UnsafeRawBufferPointer(rebasing: headers[lineStart..<lineEnd])
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != 0,
                  !line[..<colon].contains(UInt8(ascii: " ")), !line.starts(with: [45, 45]) else { return nil }
            let header = UnsafeRawBufferPointer(rebasing: line[..<colon])
            let value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...])
            if asciiCaseInsensitiveEquals(header, contentDisposition) {
                // A later Content-Disposition replaces an earlier one whole.
                (disposition, name, filename) = (true, nil, nil)
                _ = HeaderParameters.scan(value) { key, parameter in
                    if asciiCaseInsensitiveEquals(key, nameKey) {
                        name = HeaderParameters.string(parameter)
                    } else if asciiCaseInsensitiveEquals(key, filenameKey) {
                        filename = HeaderParameters.string(parameter)
                    }
                }
            } else if asciiCaseInsensitiveEquals(header, contentType) {
                type = HeaderParameters.scan(value) { _, _ in }
            }
            lineStart = lineEnd + 2
        }
        // A Content-Disposition without a name gives a part named "", which the decoders skip, as
        // Antenna does; a part without any Content-Disposition is a broken body.
        guard disposition else { return nil }
        return FormPart(name: name ?? "", filename: filename, contentType: type, body: content)
    }

    private static let contentDisposition = Array("content-disposition".utf8)
    private static let contentType = Array("content-type".utf8)
    private static let nameKey = Array("name".utf8)
    private static let filenameKey = Array("filename".utf8)

    private static func asciiCaseInsensitiveEquals(_ a: UnsafeRawBufferPointer, _ lowercase: [UInt8]) -> Bool {
        a.count == lowercase.count && zip(a, lowercase).allSatisfy { ($0 | 0x20) == $1 }
    }
}

/// `value; key=val; key2="quoted"` as in Content-Type and Content-Disposition. Parsed on UTF-8
/// bytes in place, with no copy of the header: this runs for every part of every crash
/// (Foundation's string trimming, then byte arrays, were measurable shares of a small crash's CPU).
struct HeaderParameters {
    let value: String
    private var params: [(key: String, value: String)] = []

    init(_ header: String) {
        var header = header
        self = header.withUTF8 { HeaderParameters(utf8: UnsafeRawBufferPointer($0)) }
    }

    init(utf8 bytes: UnsafeRawBufferPointer) {
        var params: [(key: String, value: String)] = []
        value = Self.scan(bytes) { key, value in
            let key = String(unsafeUninitializedCapacity: key.count) { out in
                for (j, b) in key.enumerated() { out[j] = b | ((b >= 65 && b <= 90) ? 0x20 : 0) }
                return key.count
            }
            params.append((key, Self.string(value)))
        }
        self.params = params
    }

    subscript(key: String) -> String? { params.last { $0.key == key }?.value }

    /// Calls `parameter` with the key and the value (trimmed, still quoted) of each `key=value`
    /// after the first field, in order, and returns the first field trimmed.
    static func scan(_ bytes: UnsafeRawBufferPointer,
                     parameter: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) -> String {
        var fieldStart = 0, quoted = false, escaped = false
        var first: String?
        for i in 0...bytes.count {
            if i < bytes.count {
                let byte = bytes[i]
                // A `;` inside a quoted string (where `\` escapes the next byte) is not a separator.
                if quoted {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { quoted = false }
                    continue
                }
                if byte == UInt8(ascii: "\"") { quoted = true }
                if byte != UInt8(ascii: ";") { continue }
            }
            let field = trimmed(UnsafeRawBufferPointer(rebasing: bytes[fieldStart..<i]))
            fieldStart = i + 1
            guard first != nil else {
                first = String(decoding: field, as: UTF8.self)
                continue
            }
            guard let eq = field.firstIndex(of: UInt8(ascii: "=")) else { continue }
            parameter(trimmed(UnsafeRawBufferPointer(rebasing: field[..<eq])),
                      trimmed(UnsafeRawBufferPointer(rebasing: field[(eq + 1)...])))
        }
        return first ?? ""
    }

    /// A parameter's value as `scan` hands it on: a quoted string's content with `\"` and `\\`
    /// escapes resolved, else the bytes as they are.
    static func string(_ value: UnsafeRawBufferPointer) -> String {
        guard value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") else {
            return String(decoding: value, as: UTF8.self)
        }
        let s = UnsafeRawBufferPointer(rebasing: value.dropFirst().dropLast())
        guard s.contains(UInt8(ascii: "\\")) else { return String(decoding: s, as: UTF8.self) }
        var out: [UInt8] = [], escaping = false
        for b in s {
            if !escaping, b == UInt8(ascii: "\\") { escaping = true; continue }
            escaping = false
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func trimmed(_ s: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = s.firstIndex(where: { !blank($0) }), let last = s.lastIndex(where: { !blank($0) }) else {
            return UnsafeRawBufferPointer(rebasing: s[0..<0])
        }
        return UnsafeRawBufferPointer(rebasing: s[first...last])
    }
}
