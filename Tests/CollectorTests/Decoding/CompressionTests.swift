import CrashClient
import NIOCore
import Testing
@testable import Collector

/// Every decompressor: round trip of a real minidump compressed by the reference tools, the cap on
/// the output, cut streams, and the in-flight budget reserved before bytes are produced.
@Suite struct CompressionTests {
    static let dump = Fixtures.bytes("linux-mini.dmp")
    /// Fixtures made with `gzip -9n`, `zstd -19`, `xz -6`, `bzip2 -9` (Tests/Fixtures/README.md).
    static let compressed: [(Compression, String)] = [(.gzip, "gz"), (.zstd, "zst"), (.xz, "xz"), (.bzip2, "bz2")]

    @Test func referenceToolOutputDecompressesToTheMinidump() throws {
        for (compression, ext) in Self.compressed {
            let input = ByteBuffer(bytes: Fixtures.bytes("compressed/linux-mini.dmp.\(ext)"))
            #expect(Compression.sniff(input) == compression)
            #expect(Array(try compression.decompress(input, limit: 1 << 20).readableBytesView) == Self.dump, "\(compression)")
        }
        let zlib = ByteBuffer(bytes: Deflater.compress(Self.dump, wrapper: .zlib))
        #expect(Array(try Compression.zlib.decompress(zlib, limit: 1 << 20).readableBytesView) == Self.dump)
        #expect(Compression.sniff(ByteBuffer(bytes: Self.dump)) == nil)
        #expect(Compression.sniff(ByteBuffer(string: "BZx")) == nil)
    }

    @Test func bombsStopAtTheCapAndCutStreamsAreBadData() throws {
        for ext in ["zst", "xz", "bz2"] {
            let bomb = ByteBuffer(bytes: Fixtures.bytes("compressed/zeros-64MiB.\(ext)"))
            let compression = try #require(Compression.sniff(bomb))
            #expect(throws: Inflater.Failure.tooLarge, "\(ext)") { try compression.decompress(bomb, limit: 1 << 20) }
            #expect(try compression.decompress(bomb, limit: 64 << 20).readableBytes == 64 << 20, "\(ext)")
        }
        for (compression, ext) in Self.compressed {
            let whole = Fixtures.bytes("compressed/linux-mini.dmp.\(ext)")
            #expect(throws: Inflater.Failure.badData, "\(ext)") {
                try compression.decompress(ByteBuffer(bytes: whole.prefix(whole.count / 2)), limit: 1 << 20)
            }
            var corrupt = whole
            for i in stride(from: 20, to: corrupt.count - 20, by: 7) { corrupt[i] ^= 0x5A }
            #expect(throws: Inflater.Failure.badData, "\(ext)") { try compression.decompress(ByteBuffer(bytes: corrupt), limit: 1 << 20) }
        }
    }

    /// Output and decoder state are reserved from the budget before they exist: a bomb larger
    /// than the budget is refused for lack of budget, not inflated first, and everything reserved
    /// comes back with the lease.
    @Test func decompressedBytesAreReservedFromTheInflightBudget() throws {
        let gzipBomb = ByteBuffer(bytes: Deflater.compress([UInt8](repeating: 0, count: 32 << 20)))
        let bombs: [(Compression, ByteBuffer)] = [(.gzip, gzipBomb)] + ["zst", "xz", "bz2"].map {
            let b = ByteBuffer(bytes: Fixtures.bytes("compressed/zeros-64MiB.\($0)"))
            return (Compression.sniff(b)!, b)
        }
        for (compression, bomb) in bombs {
            let budget = InflightBytes(limit: 16 << 20)
            let lease = MemoryLease(budget: budget)
            #expect(throws: InflightBytes.Exhausted.self, "\(compression)") { try compression.decompress(bomb, limit: 100 << 20, memory: lease) }
            // Everything reserved is the lease's, so answering the request gives it all back.
            lease.releaseAll()
            #expect(budget.current == 0, "\(compression)")

            let roomy = InflightBytes(limit: 200 << 20)
            let held = MemoryLease(budget: roomy)
            let output = try compression.decompress(bomb, limit: 100 << 20, memory: held)
            // At least the output is accounted for while the request holds it.
            #expect(roomy.current >= output.readableBytes, "\(compression)")
            held.releaseAll()
            #expect(roomy.current == 0, "\(compression)")
        }
    }

    @Test func contentEncodingNames() {
        #expect(Compression.contentEncoding("zstd") == .some(.zstd))
        #expect(Compression.contentEncoding(" GZIP ") == .some(.gzip))
        #expect(Compression.contentEncoding("x-gzip") == .some(.gzip))
        #expect(Compression.contentEncoding("deflate") == .some(.zlib))
        #expect(Compression.contentEncoding("br") == .some(.brotli))
        #expect(Compression.contentEncoding("identity") == .some(nil))
        #expect(Compression.contentEncoding("compress") == nil)
    }
}

/// A minidump part as stored: decompressed, or unwrapped from a nested multipart body (Electron).
@Suite struct MinidumpUnwrappingTests {
    static let limits: DecodeLimits = {
        var config = CollectorConfiguration()
        config.maxDecompressedBytes = 1 << 20
        return DecodeLimits(config)
    }()

    static func nested(_ dump: [UInt8], boundary: String = "----nested42") -> [UInt8] {
        var form = MultipartBody()
        form.boundary = boundary
        form.field("ProductName", "Electron")
        form.file("upload_file_minidump", filename: "x.dmp", dump)
        return form.finished.bytes
    }

    @Test func compressedAndNestedDumpsBecomeTheMinidumpWithANote() throws {
        let dump = CompressionTests.dump
        for (compression, ext) in CompressionTests.compressed {
            var notes: [String] = []
            let out = try Self.limits.unwrappedMinidump(ByteBuffer(bytes: Fixtures.bytes("compressed/linux-mini.dmp.\(ext)")),
                                                        name: "upload_file_minidump", memory: .unlimited, notes: &notes)
            #expect(Array(out.readableBytesView) == dump)
            #expect(notes == ["Decompressed upload_file_minidump (\(compression.rawValue))."])
        }
        var notes: [String] = []
        let electron = try Self.limits.unwrappedMinidump(ByteBuffer(bytes: Self.nested(dump)), name: "upload_file_minidump",
                                                         memory: .unlimited, notes: &notes)
        #expect(Array(electron.readableBytesView) == dump)
        #expect(notes == ["Unwrapped upload_file_minidump from a nested multipart body."])

        // gzip of a nested body holding a zstd dump: every layer comes off.
        notes = []
        let layered = Deflater.compress(Self.nested(Fixtures.bytes("compressed/linux-mini.dmp.zst")))
        let out = try Self.limits.unwrappedMinidump(ByteBuffer(bytes: layered), name: "upload_file_minidump", memory: .unlimited, notes: &notes)
        #expect(Array(out.readableBytesView) == dump)
        #expect(notes.count == 3)
    }

    @Test func otherBytesStayAsTheyCame() throws {
        for bytes in [CompressionTests.dump, Array("not a dump".utf8), Array("--x\r\nbroken".utf8), []] {
            var notes: [String] = []
            let out = try Self.limits.unwrappedMinidump(ByteBuffer(bytes: bytes), name: "upload_file_minidump", memory: .unlimited, notes: &notes)
            #expect(Array(out.readableBytesView) == bytes)
            #expect(notes.isEmpty)
        }
    }

    @Test func brokenOrOversizeCompressedDumpsAreRefused() throws {
        var notes: [String] = []
        let cut = Array(Fixtures.bytes("compressed/linux-mini.dmp.xz").prefix(100))
        #expect(throws: Malformed("bad_dump_compression")) {
            try Self.limits.unwrappedMinidump(ByteBuffer(bytes: cut), name: "upload_file_minidump", memory: .unlimited, notes: &notes)
        }
        #expect(throws: Malformed.tooLarge) {
            try Self.limits.unwrappedMinidump(ByteBuffer(bytes: Fixtures.bytes("compressed/zeros-64MiB.zst")), name: "upload_file_minidump",
                                              memory: .unlimited, notes: &notes)
        }
    }
}

/// Storage keys are injective: reserved names refused, collisions renamed deterministically.
@Suite struct DumpNamesTests {
    @Test func reservedAndEmptyNamesAreRefused() {
        for name in ["dump", "raw_crash", "dump_names", "processed_crash", "sentry_event", "../..", "", "d.u.m.p"] {
            var report = CrashReport(payloadKind: "multipart")
            #expect(throws: Malformed("invalid_dump_name"), "\(name)") { try DumpNames.add(ByteBuffer(), named: name, to: &report) }
        }
    }

    /// Only ASCII letters, digits and `_` are kept, at most 30 of them.
    @Test func namesKeepASCIILettersDigitsAndUnderscores() throws {
        var report = CrashReport(payloadKind: "multipart")
        for name in ["upload_file_minidump-browser", "Ünïcode_dümp 2", "ab/../c.d"] {
            try DumpNames.add(ByteBuffer(), named: name, to: &report)
        }
        #expect(report.dumps.map(\.name) == ["upload_file_minidumpbrowser", "ncode_dmp2", "abcd"])
    }

    @Test func collidingNamesGetDistinctNamesInArrivalOrder() throws {
        var report = CrashReport(payloadKind: "multipart")
        let long = String(repeating: "a", count: 30)
        for (i, name) in ["upload_file_minidump", "upload_file_minidump", long + "X", long + "Y", "a.b", "ab", "ab_2"].enumerated() {
            try DumpNames.add(ByteBuffer(bytes: [UInt8(i)]), named: name, to: &report)
        }
        #expect(report.dumps.map(\.name) == ["upload_file_minidump", "upload_file_minidump_2", long, String(repeating: "a", count: 28) + "_2",
                                             "ab", "ab_2", "ab_2_2"])
        #expect(report.dumps.map { $0.bytes.readableBytesView.first } == (0..<7).map { UInt8($0) })
        #expect(Set(report.dumps.map { StorageKeys.dump($0.name, "id") }).count == 7)
        #expect(report.collectorNotes.count == 4)
    }
}

/// Urlencoded forms (generic endpoint) are read a field at a time under the limits.
@Suite struct URLEncodedFormTests {
    static func fields(_ body: String, maxParts: Int = 100, maxValueBytes: Int = 100) throws -> [String] {
        var out: [String] = []
        try URLEncodedForm.forEachField(in: ByteBuffer(string: body), maxParts: maxParts, maxValueBytes: maxValueBytes) { out.append("\($0)=\($1)") }
        return out
    }

    @Test func decodesLikeAFormAndAppliesLimitsAsItGoes() throws {
        #expect(try Self.fields("a=1&b=x+y%21&&c&d=%zz%4") == ["a=1", "b=x y!", "c=", "d=%zz%4"])
        #expect(throws: Malformed("too_many_parts")) { try Self.fields(String(repeating: "a=1&", count: 101)) }
        #expect(throws: Malformed("annotation_too_large")) { try Self.fields("a=" + String(repeating: "x", count: 101)) }
        #expect(throws: Malformed("annotation_too_large")) { try Self.fields("a=" + String(repeating: "%41", count: 101)) }
        #expect(try Self.fields("a=" + String(repeating: "%41", count: 100)) == ["a=" + String(repeating: "A", count: 100)])
    }
}
