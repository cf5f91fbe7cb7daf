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
        guard let boundary = params["boundary"], !boundary.isEmpty, boundary.utf8.count <= 200 else { throw Malformed("no_boundary") }
        return boundary
    }

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

    /// A part from its header block (lines ending in CRLF); nil without a named Content-Disposition.
    private static func makePart(headers: UnsafeRawBufferPointer, content: ByteBuffer) -> FormPart? {
        var disposition: HeaderParameters?
        var type: String?
        var lineStart = 0
        while lineStart < headers.count {
            var lineEnd = lineStart
            while lineEnd + 1 < headers.count, !(headers[lineEnd] == 13 && headers[lineEnd + 1] == 10) { lineEnd += 1 }
            if lineEnd + 1 >= headers.count { lineEnd = headers.count }
            let line = String(decoding: UnsafeRawBufferPointer(rebasing: headers[lineStart..<lineEnd]), as: UTF8.self)
            // Every line is `Name: value`; anything else (a stray delimiter) is a broken body.
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line.hasPrefix("--"),
                  !line[..<colon].contains(" ") else { return nil }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch line[..<colon].lowercased() {
            case "content-disposition": disposition = HeaderParameters(value)
            case "content-type": type = value
            default: break
            }
            lineStart = lineEnd + 2
        }
        guard let disposition, let name = disposition["name"] else { return nil }
        return FormPart(name: name, filename: disposition["filename"], contentType: type, body: content)
    }
}

/// `value; key=val; key2="quoted"` as in Content-Type and Content-Disposition.
struct HeaderParameters {
    let value: String
    private var params: [String: String] = [:]

    init(_ header: String) {
        var fields = Self.split(header)
        value = fields.isEmpty ? "" : fields.removeFirst().trimmingCharacters(in: .whitespaces)
        for field in fields {
            guard let eq = field.firstIndex(of: "=") else { continue }
            let key = field[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            var val = field[field.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if val.count >= 2, val.hasPrefix("\""), val.hasSuffix("\"") {
                val = String(val.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
            }
            params[key] = val
        }
    }

    subscript(key: String) -> String? { params[key] }

    /// Splits on `;` outside quotes.
    private static func split(_ s: String) -> [String] {
        var out: [String] = [], current = "", quoted = false
        for ch in s {
            if ch == "\"" { quoted.toggle() }
            if ch == ";" && !quoted {
                out.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        out.append(current)
        return out
    }
}
