import Collector
import NIOCore

/// Feeds one input to every request decoder: gzip/zlib inflate, the multipart splitter, the JSON
/// parser and the Sentry envelope parser. A decoder may refuse the input; it must never crash,
/// hang, or allocate past its limits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    let limit = 1 << 20
    for format in [Inflater.Format.gzip, .zlib, .raw, .gzipOrZlib] {
        _ = try? Inflater.inflate(bytes, format: format, limit: limit)
    }
    _ = try? MultipartForm.parse(bytes, boundary: "fuzzboundary", maxParts: 100)
    _ = try? JSONValue.parse(bytes.readableBytesView, maxDepth: 64)
    _ = try? SentryEnvelope.parse(bytes, maxItems: 100, maxJSONDepth: 64)
    return 0
}
