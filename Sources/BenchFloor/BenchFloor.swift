import Collector
import Crypto
import Foundation
import NIOCore

/// The compute floor of a crash: inflate of the body plus SHA-256 of the inflated bytes, on one
/// core, the least work any collector must do per gzipped crash. Prints ms per crash with zlib
/// (the peers' floor) and with libdeflate (what the collector uses for whole gzip bodies).
@main
struct BenchFloor {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard !args.isEmpty else {
            print("usage: BenchFloor FILE.gz... (prints ms per crash: inflate + SHA-256)")
            return
        }
        for path in args {
            let input = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
            let name = (path as NSString).lastPathComponent
            let zlib = try measure { try Inflater.inflateStreaming(input, format: .gzip, limit: 1 << 30) }
            let libdeflate = try measure { Inflater.inflateGzipInOneShot(input, limit: 1 << 30)! }
            print("\(name) \(String(format: "%.4f", zlib)) ms/crash zlib, \(String(format: "%.4f", libdeflate)) ms/crash libdeflate")
        }
    }

    /// Milliseconds per inflate + SHA-256, over at least 2 seconds.
    static func measure(_ inflate: () throws -> ByteBuffer) throws -> Double {
        var iterations = 0
        var sink = 0
        let start = Date()
        while Date().timeIntervalSince(start) < 2 || iterations < 5 {
            let inflated = try inflate()
            sink &+= Int(inflated.withUnsafeReadableBytes { SHA256.hash(data: $0) }.first { _ in true }!)
            iterations += 1
        }
        precondition(sink >= 0)
        return Date().timeIntervalSince(start) * 1000 / Double(iterations)
    }
}
