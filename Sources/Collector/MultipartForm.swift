import Foundation
import MultipartKit
import NIOCore

/// One part of a multipart body.
public struct FormPart: Sendable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: ByteBuffer
}

/// Splits a multipart body into parts with multipart-kit's parser, enforcing the part limit and
/// refusing bodies without their closing boundary (truncated uploads).
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

    public static func parse(_ body: ByteBuffer, boundary: String, maxParts: Int) throws -> [FormPart] {
        guard hasClosingDelimiter(body, boundary: boundary) else { throw Malformed("invalid_payload_structure") }
        let parser = MultipartParser(boundary: boundary)
        var parts: [FormPart] = []
        var headers: [(String, String)] = []
        var partBody: ByteBuffer?
        var failure: Malformed?

        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in
            if partBody == nil { partBody = chunk.readSlice(length: chunk.readableBytes) } else { partBody!.writeBuffer(&chunk) }
        }
        parser.onPartComplete = {
            defer { headers.removeAll(keepingCapacity: true); partBody = nil }
            guard failure == nil else { return }
            guard parts.count < maxParts else { failure = Malformed("too_many_parts"); return }
            var disposition: HeaderParameters?
            var type: String?
            for (name, value) in headers {
                switch name.lowercased() {
                case "content-disposition": disposition = HeaderParameters(value)
                case "content-type": type = value
                default: break
                }
            }
            guard let disposition, let name = disposition["name"] else { failure = Malformed("invalid_payload_structure"); return }
            parts.append(FormPart(name: name, filename: disposition["filename"], contentType: type,
                                  body: partBody ?? ByteBuffer()))
        }
        do {
            try parser.execute(body)
        } catch {
            throw Malformed("invalid_payload_structure")
        }
        if let failure { throw failure }
        return parts
    }

    /// Whether `--boundary--` closes the body: without it the upload was cut short.
    static func hasClosingDelimiter(_ body: ByteBuffer, boundary: String) -> Bool {
        let delimiter = Array("--\(boundary)--".utf8)
        return body.withUnsafeReadableBytes { bytes in
            guard bytes.count >= delimiter.count else { return false }
            // The closing delimiter sits near the end; only a short epilogue may follow it.
            let window = min(bytes.count, delimiter.count + 1024)
            let tail = bytes[(bytes.count - window)...]
            return tail.indices.dropLast(delimiter.count - 1).contains { i in
                bytes[i..<(i + delimiter.count)].elementsEqual(delimiter)
            }
        }
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
