import CLzma
import NIOCore

/// Whole-buffer xz (LZMA2) decompression, for xz-compressed dumps, under a cap on the output like
/// `Inflater`. The dictionary (up to 64 MiB for `xz -9`) is allocated through the lease.
public enum XZDecoder {
    public static func decompress(_ input: ByteBuffer, limit: Int, memory: MemoryLease = .unlimited) throws -> ByteBuffer {
        let allocator = LeasedAllocator(memory)
        var lzmaAllocator = lzma_allocator(alloc: { opaque, count, size in LeasedAllocator.from(opaque).allocate(count * size) },
                                           free: { LeasedAllocator.from($0).free($1) }, opaque: allocator.opaque)
        var stream = lzma_stream()
        return try withExtendedLifetime(allocator) {
            try withUnsafePointer(to: &lzmaAllocator) { allocatorPointer in
                stream.allocator = allocatorPointer
                // 65 MiB: what `xz -9` needs; the lease decides whether this request may have it.
                guard lzma_stream_decoder(&stream, 65 << 20, 0) == LZMA_OK else { throw allocator.failure }
                defer { lzma_end(&stream) }
                return try DecompressionLoop.run(input, limit: limit, memory: memory) { inBytes, outBytes in
                    stream.next_in = inBytes.bindMemory(to: UInt8.self).baseAddress
                    stream.avail_in = inBytes.count
                    stream.next_out = outBytes.bindMemory(to: UInt8.self).baseAddress
                    stream.avail_out = outBytes.count
                    // LZMA_FINISH: the whole input is here, so a cut stream is an error, not a wait.
                    let result = lzma_code(&stream, LZMA_FINISH)
                    guard result == LZMA_OK || result == LZMA_STREAM_END || result == LZMA_BUF_ERROR else { throw allocator.failure }
                    return .init(consumed: inBytes.count - stream.avail_in, produced: outBytes.count - stream.avail_out,
                                 end: result == LZMA_STREAM_END)
                }
            }
        }
    }
}
