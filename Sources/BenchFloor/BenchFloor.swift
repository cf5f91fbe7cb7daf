import Collector
import Crypto
import Foundation
import NIOCore

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
            let input = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
            var iterations = 0
            var sink = 0
            let start = Date()
            while Date().timeIntervalSince(start) < 2 || iterations < 5 {
                let inflated = try Inflater.inflate(input, format: .gzip, limit: 1 << 30)
                sink &+= Int(inflated.withUnsafeReadableBytes { SHA256.hash(data: $0) }.first { _ in true }!)
                iterations += 1
            }
            let ms = Date().timeIntervalSince(start) * 1000 / Double(iterations)
            print("\((path as NSString).lastPathComponent) \(String(format: "%.4f", ms)) ms/crash (\(iterations) runs, \(sink & 1))")
        }
    }
}
