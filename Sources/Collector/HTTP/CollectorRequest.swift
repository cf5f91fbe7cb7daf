import Foundation
import NIOCore

/// A whole request as the HTTP front hands it to a worker: head and body bytes.
public struct CollectorRequest: Sendable {
    public var method: String
    /// The path without the query string.
    public var path: String
    public var query: String
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    /// The request's share of `MAX_INFLIGHT_BYTES`: decoders reserve what they inflate from it.
    public var memory: MemoryLease

    public init(method: String, uri: String, headers: [(name: String, value: String)], body: ByteBuffer,
                memory: MemoryLease = .unlimited) {
        self.method = method
        self.memory = memory
        path = Self.path(of: uri)
        query = uri.firstIndex(of: "?").map { String(uri[uri.index(after: $0)...]) } ?? ""
        self.headers = headers
        self.body = body
    }

    public static func path(of uri: String) -> String {
        uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { Self.asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Header names are ASCII tokens (RFC 9110), so this compares bytes. Foundation's
    /// `caseInsensitiveCompare` bridged every comparison to NSString: 3% of a small crash's CPU.
    static func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
        func lower(_ c: UInt8) -> UInt8 { c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c | 0x20 : c }
        return a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { lower($0) == lower($1) }
    }

    /// Query parameters, percent-decoded.
    public var queryItems: [String: String] { Self.formDecoded(query) }

    /// `a=1&b=x+y%21` (a query string or an urlencoded form) as a table, percent-decoded.
    public static func formDecoded(_ form: String) -> [String: String] {
        func decode(_ s: Substring) -> String { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
        var out: [String: String] = [:]
        for pair in form.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }
}

/// What a worker answers.
public struct CollectorResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, contentType: String = "text/plain", headers: [(name: String, value: String)] = [], body: String) {
        self.status = status
        self.headers = [("Content-Type", contentType)] + headers
        self.body = ByteBuffer(string: body)
    }

    public static func text(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> CollectorResponse {
        CollectorResponse(status: status, headers: headers, body: body)
    }

    public static func json(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> CollectorResponse {
        CollectorResponse(status: status, contentType: "application/json", headers: headers, body: body)
    }

    /// Seconds a client should wait before resending after a 503/429.
    public static let retryAfterSeconds = "30"

    /// The Breakpad answer to "busy, come back later".
    public static var retryLater: CollectorResponse {
        .text(503, "Discarded=retry_later", headers: [("Retry-After", retryAfterSeconds)])
    }

    public static var tooLarge: CollectorResponse { .text(413, "Discarded=too_large") }
}
