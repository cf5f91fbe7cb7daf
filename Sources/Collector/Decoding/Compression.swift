import NIOCore

/// The compressions real crash reporters use, on a whole body (`Content-Encoding`) or inside a
/// dump part (found by magic bytes, as Sentry's Relay does).
public enum Compression: String, Sendable, CaseIterable {
    case gzip, zlib, brotli, zstd, xz, bzip2
    /// gzip or zlib, told apart by the header (Raven's store bodies).
    case gzipOrZlib

    /// The `Content-Encoding` values accepted, mapped to their compression (identity is nil).
    public static func contentEncoding(_ header: String) -> Compression?? {
        var value = Substring(header.lowercased())
        while value.first == " " || value.first == "\t" { value.removeFirst() }
        while value.last == " " || value.last == "\t" { value.removeLast() }
        switch value {
        case "", "identity": return .some(nil)
        case "gzip", "x-gzip": return .gzip
        case "deflate": return .zlib
        case "br": return .brotli
        case "zstd": return .zstd
        default: return nil
        }
    }

    /// The compression whose magic bytes open `bytes`: gzip `1f 8b`, zstd `28 b5 2f fd`,
    /// xz `fd 37 7a 58 5a 00`, bzip2 `BZh` and a block size digit.
    public static func sniff(_ bytes: ByteBuffer) -> Compression? {
        let view = bytes.readableBytesView
        if view.starts(with: [0x1F, 0x8B]) { return .gzip }
        if view.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
        if view.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if view.starts(with: Array("BZh".utf8)), view.count > 3, (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(view[view.startIndex + 3]) {
            return .bzip2
        }
        return nil
    }

    /// Decompresses `input` whole, at most `limit` bytes, reserving output and decoder state from `memory`.
    public func decompress(_ input: ByteBuffer, limit: Int, memory: MemoryLease = .unlimited) throws -> ByteBuffer {
        switch self {
        case .gzip: return try Inflater.inflate(input, format: .gzip, limit: limit, memory: memory)
        case .zlib: return try Inflater.inflate(input, format: .zlib, limit: limit, memory: memory)
        case .gzipOrZlib: return try Inflater.inflate(input, format: .gzipOrZlib, limit: limit, memory: memory)
        case .brotli: return try BrotliDecoder.decompress(input, limit: limit, memory: memory)
        case .zstd: return try ZstdDecoder.decompress(input, limit: limit, memory: memory)
        case .xz: return try XZDecoder.decompress(input, limit: limit, memory: memory)
        case .bzip2: return try Bzip2Decoder.decompress(input, limit: limit, memory: memory)
        }
    }

    /// The `malformed` reason of a body that does not decompress.
    var badBodyReason: String {
        switch self {
        case .gzip: return "bad_gzip"
        case .zlib, .gzipOrZlib: return "bad_deflate"
        case .brotli: return "bad_brotli"
        case .zstd: return "bad_zstd"
        case .xz, .bzip2: return "bad_dump_compression"
        }
    }
}
