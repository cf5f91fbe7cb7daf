import CBrotli
import NIOCore

/// Whole-buffer Brotli decompression (`Content-Encoding: br`, sent by sentry-sdk when the
/// `brotli` module is installed) under a cap on the output, like `Inflater`.
public enum BrotliDecoder {
    public static func decompress(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        guard let state = BrotliDecoderCreateInstance(nil, nil, nil) else { throw Inflater.Failure.badData }
        defer { BrotliDecoderDestroyInstance(state) }

        var output = ByteBufferAllocator().buffer(capacity: min(limit, max(4096, input.readableBytes * 4)))
        var result = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT
        try input.withUnsafeReadableBytes { inBytes in
            var nextIn = inBytes.bindMemory(to: UInt8.self).baseAddress
            var availIn = inBytes.count
            while result == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT {
                let produced = output.writerIndex
                guard produced < limit else { throw Inflater.Failure.tooLarge }
                if output.writableBytes == 0 { output.reserveCapacity(min(limit, output.capacity * 2)) }
                let room = min(output.writableBytes, limit - produced)
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { outBytes in
                    var nextOut = outBytes.bindMemory(to: UInt8.self).baseAddress
                    var availOut = room
                    result = BrotliDecoderDecompressStream(state, &availIn, &nextIn, &availOut, &nextOut, nil)
                    return room - availOut
                }
            }
        }
        // NEEDS_MORE_INPUT here means the stream was cut short.
        guard result == BROTLI_DECODER_RESULT_SUCCESS else { throw Inflater.Failure.badData }
        return output
    }
}
