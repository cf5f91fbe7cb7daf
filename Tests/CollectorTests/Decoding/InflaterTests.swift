import CDeflate
import CZlib
import NIOCore
import Testing
@testable import Collector
import CrashClient

/// Whole gzip bodies go through libdeflate when the trailer's size is believable, else zlib; both
/// give the same bytes and the same refusals.
@Suite struct InflaterTests {
    static let body: [UInt8] = {
        var form = MultipartBody()
        form.field("ProductName", "Test")
        form.file("upload_file_minidump", Fixtures.bytes("pipeline-inlines-macos-segv.dmp"))
        return form.finished.bytes
    }()

    @Test func oneShotAndStreamingAgree() throws {
        let gz = ByteBuffer(bytes: Deflater.compress(Self.body))
        let oneShot = try #require(Inflater.inflateGzipInOneShot(gz, limit: 1 << 20))
        #expect(Array(oneShot.readableBytesView) == Self.body)
        #expect(Array(try Inflater.inflateStreaming(gz, format: .gzip, limit: 1 << 20).readableBytesView) == Self.body)
        #expect(Array(try Inflater.inflate(gz, format: .gzip, limit: 1 << 20).readableBytesView) == Self.body)
    }

    @Test func aLyingTrailerIsRefusedByBothPaths() throws {
        var bytes = Deflater.compress(Self.body)
        // ISIZE claims 1000 bytes fewer: libdeflate refuses, and zlib, which checks it, says why.
        let claimed = UInt32(Self.body.count - 1000)
        bytes.replaceSubrange((bytes.count - 4)..., with: withUnsafeBytes(of: claimed.littleEndian, Array.init))
        let gz = ByteBuffer(bytes: bytes)
        #expect(Inflater.inflateGzipInOneShot(gz, limit: 1 << 20) == nil)
        #expect(throws: Inflater.Failure.badData) { try Inflater.inflate(gz, format: .gzip, limit: 1 << 20) }
    }

    @Test func anImplausibleTrailerIsNotTrustedWithMemory() {
        var bytes = Deflater.compress(Self.body)
        // 50 MB claimed for a 40 KB body: no 50 MB buffer is allocated on the trailer's word.
        bytes.replaceSubrange((bytes.count - 4)..., with: withUnsafeBytes(of: UInt32(50_000_000).littleEndian, Array.init))
        #expect(Inflater.inflateGzipInOneShot(ByteBuffer(bytes: bytes), limit: 100 << 20) == nil)
    }

    @Test func capAndTruncationHoldOnBothPaths() throws {
        let gz = ByteBuffer(bytes: Deflater.compress(Self.body))
        #expect(throws: Inflater.Failure.tooLarge) { try Inflater.inflate(gz, format: .gzip, limit: 50_000) }
        let truncated = ByteBuffer(bytes: Array(gz.readableBytesView.dropLast(100)))
        #expect(throws: Inflater.Failure.badData) { try Inflater.inflate(truncated, format: .gzip, limit: 1 << 20) }
    }

    @Test func aWrongCRCIsRefusedByBothPaths() throws {
        var bytes = Deflater.compress(Self.body)
        // The trailer's CRC-32 (the 4 bytes before ISIZE) with one bit flipped.
        bytes[bytes.count - 8] ^= 0x01
        let gz = ByteBuffer(bytes: bytes)
        #expect(Inflater.inflateGzipInOneShot(gz, limit: 1 << 20) == nil)
        #expect(throws: Inflater.Failure.badData) { try Inflater.inflate(gz, format: .gzip, limit: 1 << 20) }
    }

    /// libdeflate picks its CRC-32 code at run time from the CPU's features and the length (byte
    /// loops, 128-bit and 512-bit carry-less multiplication): every path must agree with zlib's.
    @Test func theBuiltInCRCAgreesWithZlibAtEveryLength() {
        let bytes = Array(Self.body.prefix(40_000))
        for count in Array(0...1_100) + [4_095, 4_096, 4_097, 16_383, 32_768, 39_999, 40_000] {
            let ours = bytes.withUnsafeBytes { libdeflate_crc32(0, $0.baseAddress, count) }
            let zlib = bytes.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt(count))) }
            #expect(ours == zlib, "length \(count)")
        }
    }
}
