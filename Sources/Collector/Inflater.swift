import CZlib
import NIOCore

/// Whole-buffer inflate with zlib under a cap on the output, so a compression bomb
/// costs at most `limit` bytes of memory before it is refused.
public enum Inflater {
    public enum Format: Sendable {
        case gzip, zlib, raw
        /// gzip or zlib, told apart by the header.
        case gzipOrZlib

        var windowBits: Int32 {
            switch self {
            case .gzip: return 16 + 15
            case .zlib: return 15
            case .raw: return -15
            case .gzipOrZlib: return 32 + 15
            }
        }
    }

    public enum Failure: Error, Equatable { case badData, tooLarge }

    public static func inflate(_ input: ByteBuffer, format: Format, limit: Int) throws -> ByteBuffer {
        var stream = z_stream()
        guard inflateInit2_(&stream, format.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure.badData
        }
        defer { inflateEnd(&stream) }

        var output = ByteBufferAllocator().buffer(capacity: min(limit, max(4096, input.readableBytes * 4)))
        var result: Int32 = Z_OK
        try input.withUnsafeReadableBytes { inBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(inBytes.count)
            while result != Z_STREAM_END {
                let produced = output.writerIndex
                guard produced < limit else { throw Failure.tooLarge }
                if output.writableBytes == 0 { output.reserveCapacity(min(limit, output.capacity * 2)) }
                let room = min(output.writableBytes, limit - produced)
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { outBytes in
                    stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(room)
                    result = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return room - Int(stream.avail_out)
                }
                switch result {
                case Z_OK, Z_STREAM_END: continue
                // No progress possible: either the input ended early or the output is full (loop checks the cap).
                case Z_BUF_ERROR where stream.avail_in == 0: throw Failure.badData
                case Z_BUF_ERROR: continue
                default: throw Failure.badData
                }
            }
        }
        guard result == Z_STREAM_END else { throw Failure.badData }
        return output
    }
}
