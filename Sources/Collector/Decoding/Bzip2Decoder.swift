import CBzip2
import NIOCore

/// Whole-buffer bzip2 decompression, for bzip2-compressed dumps, under a cap on the output like
/// `Inflater`; its block tables (about 3.6 MiB) are allocated through the lease.
public enum Bzip2Decoder {
    public static func decompress(_ input: ByteBuffer, limit: Int, memory: MemoryLease = .unlimited) throws -> ByteBuffer {
        let allocator = LeasedAllocator(memory)
        var stream = bz_stream()
        stream.bzalloc = { opaque, count, size in LeasedAllocator.from(opaque).allocate(Int(count) * Int(size)) }
        stream.bzfree = { LeasedAllocator.from($0).free($1) }
        stream.opaque = allocator.opaque
        guard BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK else { throw allocator.failure }
        defer { BZ2_bzDecompressEnd(&stream) }
        return try withExtendedLifetime(allocator) {
            try DecompressionLoop.run(input, limit: limit, memory: memory) { inBytes, outBytes in
                // bzip2 takes 32-bit counts: at most 1 GiB per call, the loop calls again.
                let inCount = min(inBytes.count, 1 << 30), outCount = min(outBytes.count, 1 << 30)
                stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: CChar.self).baseAddress)
                stream.avail_in = UInt32(inCount)
                stream.next_out = outBytes.bindMemory(to: CChar.self).baseAddress
                stream.avail_out = UInt32(outCount)
                let result = BZ2_bzDecompress(&stream)
                guard result == BZ_OK || result == BZ_STREAM_END else { throw allocator.failure }
                return .init(consumed: inCount - Int(stream.avail_in), produced: outCount - Int(stream.avail_out),
                             end: result == BZ_STREAM_END)
            }
        }
    }
}
