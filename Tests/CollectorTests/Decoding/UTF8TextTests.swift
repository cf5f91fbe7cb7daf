import Testing
@testable import Collector

/// `UTF8Text` against the standard library's `String(validating:as:)`, the reference: the same
/// answer for ASCII, for valid multi-byte text and for every kind of invalid sequence, with the
/// odd byte at every offset of the eight-byte words and of the tail.
@Suite struct UTF8TextTests {
    static func check(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            let expected = String(validating: raw, as: UTF8.self)
            #expect(UTF8Text.string(raw) == expected, "\(bytes)")
            #expect(UTF8Text.isASCII(raw) == bytes.allSatisfy { $0 < 0x80 }, "\(bytes)")
        }
    }

    @Test func asciiOfEveryLengthAroundTheWordSize() {
        for length in 0...40 { Self.check((0..<length).map { UInt8(0x20 + $0 % 0x5F) }) }
        Self.check([0x00, 0x7F, 0x01, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x7F])
    }

    @Test func oneOddSequenceAtEveryOffset() {
        let odd: [[UInt8]] = [
            Array("é".utf8), Array("€".utf8), Array("🦊".utf8),  // valid, two to four bytes
            [0xFF], [0x80], [0xC3],                               // never valid, a lone continuation, cut short
            [0xC0, 0xAF], [0xE0, 0x80, 0xAF],                      // overlong
            [0xED, 0xA0, 0x80],                                   // a UTF-16 surrogate
            [0xF4, 0x90, 0x80, 0x80],                             // past U+10FFFF
            [0xF0, 0x9F, 0xA6],                                   // four bytes cut short
        ]
        for sequence in odd {
            for length in 0...24 {
                for offset in 0...length {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes.insert(contentsOf: sequence, at: offset)
                    Self.check(bytes)
                }
            }
        }
    }

    @Test func refusedAndAcceptedAsTheyRead() {
        [UInt8]("Firefox 125.0.1 — ünïcödé".utf8).withUnsafeBytes {
            #expect(UTF8Text.string($0) == "Firefox 125.0.1 — ünïcödé")
        }
        [UInt8]([0x61, 0x62, 0xFF, 0x63]).withUnsafeBytes { #expect(UTF8Text.string($0) == nil) }
    }
}
