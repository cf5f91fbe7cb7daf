import CZlib
import Crypto
import Foundation

/// The compute floor of a crash: zlib inflate of the body plus SHA-256 of the inflated bytes,
/// on one core, the least work any collector must do per gzipped crash. Prints ms per crash.
@main
struct BenchFloor {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard !args.isEmpty else {
            print("usage: BenchFloor FILE.gz... (prints ms per crash: inflate + SHA-256)")
            return
        }
        for path in args {
            let input = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            var iterations = 0
            let start = Date()
            var sink = 0
            while Date().timeIntervalSince(start) < 2 || iterations < 5 {
                let inflated = inflate(input)
                sink &+= Int(SHA256.hash(data: inflated).first { _ in true }!)
                iterations += 1
            }
            let ms = Date().timeIntervalSince(start) * 1000 / Double(iterations)
            print(String(format: "%@ %.4f ms/crash (%d runs, %d)", (path as NSString).lastPathComponent, ms, iterations, sink & 1))
        }
    }

    static func inflate(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        inflateInit2_(&stream, 16 + 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: input.count * 8)
        var input = input
        var produced = 0
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            while true {
                if produced == output.count { output += [UInt8](repeating: 0, count: output.count) }
                let rc = output.withUnsafeMutableBufferPointer { outBuf -> Int32 in
                    stream.next_out = outBuf.baseAddress! + produced
                    stream.avail_out = uInt(outBuf.count - produced)
                    let rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = outBuf.count - Int(stream.avail_out)
                    return rc
                }
                if rc != Z_OK { break }
            }
        }
        return Array(output[0..<produced])
    }
}
