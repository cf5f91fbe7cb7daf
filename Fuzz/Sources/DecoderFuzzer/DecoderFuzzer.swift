import Collector
import NIOCore

/// Feeds one input to every request decoder: each decompressor (gzip/zlib inflate, Brotli, zstd,
/// xz, bzip2) under a small in-flight budget, the minidump unwrapping (magic-byte decompression,
/// nested multipart), the multipart splitter, the urlencoded form reader, the dump namer, the JSON
/// parser and the Sentry envelope parser. A decoder may refuse the input; it must never crash,
/// hang, or allocate past its limits, and every byte it reserved must come back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    let limit = 1 << 20
    let budget = InflightBytes(limit: 24 << 20)
    let memory = MemoryLease(budget: budget)
    for format in [Inflater.Format.gzip, .zlib, .raw, .gzipOrZlib] {
        _ = try? Inflater.inflate(bytes, format: format, limit: limit, memory: memory)
    }
    for compression in Compression.allCases {
        _ = try? compression.decompress(bytes, limit: limit, memory: memory)
    }
    var config = CollectorConfiguration()
    config.maxDecompressedBytes = limit
    var notes: [String] = []
    _ = try? DecodeLimits(config).unwrappedMinidump(bytes, name: "upload_file_minidump", memory: memory, notes: &notes)
    memory.releaseAll()
    precondition(budget.current == 0, "in-flight bytes leaked")
    _ = try? MultipartForm.parse(bytes, boundary: "fuzzboundary", maxParts: 100)
    _ = try? URLEncodedForm.forEachField(in: bytes, maxParts: 100, maxValueBytes: 4096) { _, _ in }
    var report = CrashReport(payloadKind: "fuzz")
    for name in String(decoding: bytes.readableBytesView.prefix(4096), as: UTF8.self).split(separator: "\n") {
        _ = try? DumpNames.add(ByteBuffer(), named: String(name), to: &report)
    }
    precondition(Set(report.dumps.map(\.name)).count == report.dumps.count, "two dumps share a name")
    _ = try? JSONValue.parse(bytes.readableBytesView, maxDepth: 64)
    _ = try? SentryEnvelope.parse(bytes, maxItems: 100, limits: DecodeLimits(config), memory: .unlimited)
    return 0
}
