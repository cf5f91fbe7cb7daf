import NIOCore

extension DecodeLimits {
    /// A minidump as stored, so it starts with `MDMP`: a dump that arrived compressed (gzip, zstd,
    /// xz, bzip2, found by magic bytes as Sentry's Relay does) is decompressed, and one whose
    /// content is a whole nested multipart body (Electron's crash reporter on Linux) is unwrapped
    /// to its dump part. Each step is noted in `notes` (`metadata.collector_notes`) under `name`,
    /// the dump's sanitized name (`DumpNames.sanitized`), never the client's. Anything else is
    /// kept as it came.
    public func unwrappedMinidump(_ bytes: ByteBuffer, name: String, memory: MemoryLease, notes: inout [String]) throws -> ByteBuffer {
        var bytes = bytes
        // A compressed nested body holding a compressed dump is the deepest wrapping seen; no loops.
        for _ in 0..<4 {
            if Self.isMinidump(bytes) { break }
            if let compression = Compression.sniff(bytes) {
                bytes = try decompress(bytes, compression, memory: memory, badReason: "bad_dump_compression")
                notes.append("Decompressed \(name) (\(compression.rawValue)).")
            } else if let inner = nestedMultipartDump(bytes) {
                bytes = inner
                notes.append("Unwrapped \(name) from a nested multipart body.")
            } else {
                break
            }
        }
        return bytes
    }

    /// Whether `bytes` start with a minidump's signature, `MDMP`. (Relay also takes `PMDM`, as a
    /// big-endian writer leaves it; the design promises stored dumps start with `MDMP`.)
    static func isMinidump(_ bytes: ByteBuffer) -> Bool {
        bytes.readableBytesView.starts(with: minidumpMagic)
    }

    private static let minidumpMagic = Array("MDMP".utf8)

    /// The dump part of a body that is itself multipart (`--<boundary>` CRLF first): the part
    /// named `upload_file_minidump…`, else the first with a file name. Nil when it is not one.
    func nestedMultipartDump(_ bytes: ByteBuffer) -> ByteBuffer? {
        let view = bytes.readableBytesView
        guard view.starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]),
              let lineEnd = view.prefix(MultipartForm.maxBoundaryBytes + 4).firstIndex(of: 13) else { return nil }
        let boundary = String(decoding: view[(view.startIndex + 2)..<lineEnd], as: UTF8.self)
        guard !boundary.isEmpty, let parts = try? MultipartForm.parse(bytes, boundary: boundary, maxParts: maxParts) else { return nil }
        return (parts.first { DumpNames.isMinidump($0.name) } ?? parts.first { $0.filename != nil })?.body
    }
}
