import CZstd
import NIOCore

/// Whole-buffer Zstandard decompression (`Content-Encoding: zstd`, zstd-compressed dumps), one or
/// more frames, under a cap on the output like `Inflater`. The window a frame declares is
/// allocated through the lease, and capped at 128 MiB (`zstd --long`'s default) as libzstd does.
public enum ZstdDecoder {
    public static func decompress(_ input: ByteBuffer, limit: Int, memory: MemoryLease = .unlimited) throws -> ByteBuffer {
        let allocator = LeasedAllocator(memory)
        let custom = ZSTD_customMem(customAlloc: { LeasedAllocator.from($0).allocate($1) },
                                    customFree: { LeasedAllocator.from($0).free($1) }, opaque: allocator.opaque)
        guard let context = ZSTD_createDCtx_advanced(custom) else { throw allocator.failure }
        defer { ZSTD_freeDCtx(context) }
        return try withExtendedLifetime(allocator) {
            try DecompressionLoop.run(input, limit: limit, memory: memory) { inBytes, outBytes in
                var source = ZSTD_inBuffer(src: inBytes.baseAddress, size: inBytes.count, pos: 0)
                var destination = ZSTD_outBuffer(dst: outBytes.baseAddress, size: outBytes.count, pos: 0)
                let result = ZSTD_decompressStream(context, &destination, &source)
                guard ZSTD_isError(result) == 0 else { throw allocator.failure }
                // 0: a frame is complete and flushed; the stream ends with the input.
                return .init(consumed: source.pos, produced: destination.pos, end: result == 0 && source.pos == inBytes.count)
            }
        }
    }
}
