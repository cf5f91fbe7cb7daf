import Foundation
import NIOCore

/// `POST <prefix>/<project>/store/`: the legacy event endpoint of Raven clients (raven-python 6.x).
/// The body is JSON, zlib or gzip JSON (with or without `Content-Encoding`), or base64 of either
/// (older Raven); the answer is `{"id": "<event id>"}`.
public struct SentryStoreResource: Sendable {
    let sentry: SentryEndpoint

    public init(sentry: SentryEndpoint) { self.sentry = sentry }

    public func handle(_ request: CollectorRequest) -> CollectorResponse {
        sentry.run(endpoint: "sentry_store", request, busy: SentryEndpoint.rateLimited) { request in
            let auth = try sentry.authorize(request)
            var (body, compressed) = try sentry.decodedBody(request)
            // Older Raven clients send base64, of zlib data or of the JSON itself. Decoding it
            // makes about four copies of the body (text, trimmed text, bytes, buffer): reserved first.
            if !Self.looksLikeJSON(body), !Self.looksCompressed(body) {
                try request.memory.reserve(4 * body.readableBytes)
                if let data = Data(base64Encoded: String(decoding: body.readableBytesView, as: UTF8.self)
                                    .trimmingCharacters(in: .whitespacesAndNewlines)) {
                    body = ByteBuffer(bytes: data)
                }
            }
            // zlib or gzip without `Content-Encoding`.
            if Self.looksCompressed(body) {
                body = try sentry.limits.decompress(body, .gzipOrZlib, memory: request.memory, badReason: "bad_deflate")
                compressed = true
            }
            if PythonJSON.isPythonClient(auth.client) {
                // A document too large to parse is refused before it is copied; the copy (which
                // may grow by a byte per NaN) is reserved.
                _ = try sentry.limits.parseCost(ofBytes: body.readableBytes)
                try request.memory.reserve(body.readableBytes * 4 / 3 + 64)
                if let translated = PythonJSON.nonFiniteAsNull(body) { body = translated }
            }
            return SentryEventReport(event: try sentry.event(body, memory: request.memory), eventJSON: body, auth: auth,
                                     product: sentry.products[auth.project], dumps: [], request: request,
                                     payloadKind: "sentry_store", compressed: compressed)
        }
    }

    /// zlib (`0x78`, the 32 KiB window every zlib writer uses) or gzip (`0x1f 0x8b`).
    static func looksCompressed(_ body: ByteBuffer) -> Bool {
        let view = body.readableBytesView
        return view.first == 0x78 || view.starts(with: [0x1F, 0x8B])
    }

    /// JSON starts with `{` after optional whitespace.
    static func looksLikeJSON(_ body: ByteBuffer) -> Bool {
        body.readableBytesView.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "{")
    }
}
