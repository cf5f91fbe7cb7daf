import MultipartKit
import NIOCore
import Testing
@testable import Collector

/// The hand-written multipart splitter against multipart-kit's parser, the reference: same parts,
/// same names, same bytes, on the benchmark-shaped bodies and on generated ones.
@Suite struct MultipartFormTests {
    /// multipart-kit's reading of a body: (name, content-type, bytes) per part.
    static func reference(_ body: [UInt8], boundary: String) throws -> [(String, String?, [UInt8])] {
        let parser = MultipartParser(boundary: boundary)
        var parts: [(String, String?, [UInt8])] = []
        var headers: [(String, String)] = []
        var content: [UInt8] = []
        parser.onHeader = { headers.append(($0, $1)) }
        parser.onBody = { content += $0.readableBytesView }
        parser.onPartComplete = {
            let disposition = headers.first { $0.0.lowercased() == "content-disposition" }.map { HeaderParameters($0.1) }
            parts.append((disposition?["name"] ?? "", headers.first { $0.0.lowercased() == "content-type" }?.1, content))
            headers = []
            content = []
        }
        try parser.execute(body)
        return parts
    }

    static func ours(_ body: [UInt8], boundary: String) throws -> [(String, String?, [UInt8])] {
        try MultipartForm.parse(ByteBuffer(bytes: body), boundary: boundary, maxParts: 10_000)
            .map { ($0.name, $0.contentType, Array($0.body.readableBytesView)) }
    }

    static func expectSame(_ body: [UInt8], boundary: String) throws {
        let a = try reference(body, boundary: boundary), b = try ours(body, boundary: boundary)
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(x.0 == y.0)
            #expect(x.1 == y.1)
            #expect(x.2 == y.2)
        }
    }

    @Test func agreesOnCrashReportsWithEveryFixtureDump() throws {
        var form = MultipartBody()
        form.field("ProductName", "Firefox")
        form.json("extra", #"{"Version":"1.0"}"#)
        for name in ["simple-crashpad.dmp", "linux-mini.dmp", "test.dmp", "pipeline-inlines-macos-segv.dmp", "invalid-range.dmp"] {
            form.file("dump_" + name.prefix(4), Fixtures.bytes(name))
        }
        try Self.expectSame(form.finished.bytes, boundary: form.boundary)
    }

    @Test(arguments: 0..<50) func agreesOnGeneratedBodies(seed: Int) throws {
        var rng = SplitMix(seed: UInt64(seed))
        var form = MultipartBody()
        for i in 0..<Int(rng.next() % 6 + 1) {
            // Content full of CR, LF and dashes: the bytes that look most like delimiters.
            let content = (0..<Int(rng.next() % 3000)).map { _ in [13, 10, 45, 0, 255, 65][Int(rng.next() % 6)] as UInt8 }
            if rng.next() % 2 == 0 { form.file("f\(i)", content) } else { form.field("a\(i)", String(decoding: content.filter { $0 < 128 }, as: UTF8.self)) }
        }
        try Self.expectSame(form.finished.bytes, boundary: form.boundary)
    }

    @Test func partsAreSlicesOfTheBody() throws {
        var form = MultipartBody()
        form.field("ProductName", "T")
        let body = ByteBuffer(bytes: form.finished.bytes)
        let part = try #require(try MultipartForm.parse(body, boundary: form.boundary, maxParts: 10).first)
        // A slice shares the body's storage: no copy per part.
        let shared = body.withUnsafeReadableBytes { b in part.body.withUnsafeReadableBytes { p in
            p.baseAddress! >= b.baseAddress! && p.baseAddress! < b.baseAddress! + b.count } }
        #expect(shared)
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
