import CZlib

/// Whole-buffer compression with zlib, for clients that send `Content-Encoding: gzip` (the
/// submitter, like Crashpad and Electron) and for tests that send what real clients send.
public enum Deflater {
    public enum Wrapper: Sendable {
        /// A gzip header and trailer around the deflate stream.
        case gzip
        /// zlib data, as raven-python sends.
        case zlib

        var windowBits: Int32 { self == .gzip ? 16 + 15 : 15 }
    }

    public static func compress(_ input: [UInt8], wrapper: Wrapper = .gzip, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, wrapper.windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        var input = input
        let count = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                deflate(&stream, Z_FINISH)
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<count])
    }
}
