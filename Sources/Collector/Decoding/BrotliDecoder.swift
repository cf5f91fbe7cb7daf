import CBrotli
import NIOCore

/// Whole-buffer Brotli decompression (`Content-Encoding: br`, sent by sentry-sdk when the
/// `brotli` module is installed) under a cap on the output, like `Inflater`. The decoder's
/// window (up to 16 MiB) is allocated through the lease too.
public enum BrotliDecoder {
    public static func decompress(_ input: ByteBuffer, limit: Int, memory: MemoryLease = .unlimited) throws -> ByteBuffer {
        let allocator = LeasedAllocator(memory)
        guard let state = BrotliDecoderCreateInstance({ LeasedAllocator.from($0).allocate($1) },
                                                      { LeasedAllocator.from($0).free($1) }, allocator.opaque) else {
            throw allocator.failure
        }
        defer { BrotliDecoderDestroyInstance(state) }
        return try withExtendedLifetime(allocator) {
            try DecompressionLoop.run(input, limit: limit, memory: memory) { inBytes, outBytes in
                var nextIn = inBytes.bindMemory(to: UInt8.self).baseAddress
                var availIn = inBytes.count
                var nextOut = outBytes.bindMemory(to: UInt8.self).baseAddress
                var availOut = outBytes.count
                let result = BrotliDecoderDecompressStream(state, &availIn, &nextIn, &availOut, &nextOut, nil)
                guard result != BROTLI_DECODER_RESULT_ERROR else { throw allocator.failure }
                return .init(consumed: inBytes.count - availIn, produced: outBytes.count - availOut,
                             end: result == BROTLI_DECODER_RESULT_SUCCESS)
            }
        }
    }
}
