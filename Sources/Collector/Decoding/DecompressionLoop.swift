import NIOCore

/// The output loop every streaming decompressor shares: the output grows by doubling up to the
/// cap, each growth reserved from the request's lease before a byte of it is written.
enum DecompressionLoop {
    /// What one call of a library's decompress function did.
    struct Step {
        var consumed: Int
        var produced: Int
        /// The stream is complete.
        var end: Bool
    }

    /// Runs `step` (the unconsumed input, the free room of the output) until it reports the end.
    /// Throws `Inflater.Failure.tooLarge` past `limit`, `.badData` when the stream stops making
    /// progress (cut short), and whatever `step` or the lease throws.
    static func run(_ input: ByteBuffer, limit: Int, memory: MemoryLease,
                    _ step: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Step) throws -> ByteBuffer {
        var output = try memory.allocate(min(limit, max(4096, input.readableBytes * 4)))
        try input.withUnsafeReadableBytes { inBytes in
            var consumed = 0
            while true {
                if output.writableBytes == 0, output.writerIndex < limit {
                    try memory.grow(&output, to: min(limit, output.capacity * 2))
                }
                let room = min(output.writableBytes, limit - output.writerIndex)
                var result = Step(consumed: 0, produced: 0, end: false)
                try output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { out in
                    result = try step(UnsafeRawBufferPointer(rebasing: inBytes[consumed...]),
                                      UnsafeMutableRawBufferPointer(rebasing: out[..<room]))
                    return result.produced
                }
                consumed += result.consumed
                if result.end { return }
                if result.consumed == 0 && result.produced == 0 {
                    throw room == 0 ? Inflater.Failure.tooLarge : Inflater.Failure.badData
                }
            }
        }
        return output
    }
}
