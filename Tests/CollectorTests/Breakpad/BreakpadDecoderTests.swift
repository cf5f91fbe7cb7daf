import NIOCore
import Testing
@testable import Collector

/// The form decoder on hand-built bodies: what it keeps of names and values, and which malformed
/// names it refuses, byte for byte.
@Suite struct BreakpadDecoderTests {
    static func decode(_ parts: [(headers: [UInt8], body: [UInt8])], stripsNulls: Bool = false) throws -> CrashReport {
        var body: [UInt8] = []
        for part in parts {
            body += Array("--b\r\n".utf8) + part.headers + Array("\r\n\r\n".utf8) + part.body + Array("\r\n".utf8)
        }
        body += Array("--b--\r\n".utf8)
        let decoder = BreakpadDecoder(limits: DecodeLimits(CollectorConfiguration()), stripsNulls: stripsNulls)
        return try decoder.decode(CollectorRequest(method: "POST", uri: "/submit",
                                                   headers: [("Content-Type", "multipart/form-data; boundary=b")],
                                                   body: ByteBuffer(bytes: body)))
    }

    static func field(_ disposition: String, _ value: String) -> (headers: [UInt8], body: [UInt8]) {
        (Array("Content-Disposition: \(disposition)".utf8), Array(value.utf8))
    }

    /// A name that is not valid UTF-8 arrives as U+FFFD and is refused, like a control character.
    @Test func namesThatWereNotUTF8OrHoldControlCharactersAreRefused() {
        let invalid = Array("Content-Disposition: form-data; name=\"Prod".utf8) + [0xFF] + Array("uct\"".utf8)
        #expect(throws: Malformed("invalid_annotation_name")) { try Self.decode([(invalid, Array("x".utf8))]) }
        #expect(throws: Malformed("invalid_annotation_name")) { try Self.decode([Self.field("form-data; name=\"Pro\tduct\"", "x")]) }
        // Other non-ASCII names are fine.
        #expect((try? Self.decode([Self.field("form-data; name=\"Produkt_ü\"", "x")]))?.annotations["Produkt_ü"] == .string("x"))
    }

    /// Header parameters: keys in any case, quoted values with `;` and escaped quotes inside.
    @Test func dispositionParametersAreReadWhole() throws {
        let report = try Self.decode([
            Self.field(#"form-data; NAME="a;b"; Foo=bar"#, "text"),
            (Array(#"content-disposition: form-data; name="upload_file_minidump"; filename="x\"y.dmp""#.utf8) + Array("\r\nContent-Type: application/octet-stream".utf8), Array("MDMP".utf8)),
        ])
        #expect(report.annotations["a;b"] == .string("text"))
        #expect(report.dumps.map(\.name) == ["upload_file_minidump"])
        #expect(HeaderParameters(#"form-data; name="x\"y"; filename = "a.dmp" ; z=1"#)["filename"] == "a.dmp")
        #expect(HeaderParameters(#"form-data; name="x\"y"; filename = "a.dmp" ; z=1"#)["name"] == #"x"y"#)
        #expect(HeaderParameters("  Multipart/Form-Data ; boundary=abc").value == "Multipart/Form-Data")
    }

    /// The generic collector strips NUL characters from values; the others keep every byte.
    @Test func nulsAreStrippedOnlyWhereAsked() throws {
        #expect(try Self.decode([Self.field("form-data; name=\"P\"", "a\0b\0")], stripsNulls: true).annotations["P"] == .string("ab"))
        #expect(try Self.decode([Self.field("form-data; name=\"P\"", "a\0b")]).annotations["P"] == .string("a\0b"))
    }
}
