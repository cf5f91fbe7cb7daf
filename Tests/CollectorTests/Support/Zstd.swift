import CZstd

/// Zstandard compression for test bodies (`Content-Encoding: zstd`, zstd dumps), as a client does.
enum Zstd {
    static func compress(_ input: [UInt8], level: Int32 = 3) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = ZSTD_compress(&out, out.count, input, input.count, level)
        precondition(ZSTD_isError(n) == 0)
        return Array(out.prefix(n))
    }
}
