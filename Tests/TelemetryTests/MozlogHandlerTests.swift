import Foundation
import Logging
import Testing
@testable import Telemetry

/// The log line format operators parse: one mozlog JSON object per line.
@Suite struct MozlogHandlerTests {
    private func line(_ message: Logger.Message, _ metadata: Logger.Metadata = [:], level: Logger.Level = .info,
                      label: String = "breakwater.test") throws -> [String: Any] {
        let sink = CapturingLogSink()
        var logger = Logger(label: label) { MozlogHandler(label: $0, sink: sink, level: .trace) }
        logger.logLevel = .trace
        logger.log(level: level, message, metadata: metadata)
        #expect(sink.lines.count == 1)
        let text = try #require(sink.lines.first)
        #expect(text.hasSuffix("}\n"))
        #expect(!text.dropLast().contains("\n"), "one line per event")
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func envelopeFields() throws {
        let object = try line("hello")
        #expect(object["Type"] as? String == "breakwater.test")
        #expect(object["Logger"] as? String == "breakwater")
        #expect(object["EnvVersion"] as? String == "2.0")
        #expect(object["Severity"] as? Int == 6)
        #expect(object["Pid"] as? Int == Int(ProcessInfo.processInfo.processIdentifier))
        #expect((object["Timestamp"] as? Int).map { $0 > 1_700_000_000_000_000_000 } == true, "nanoseconds since the epoch")
        #expect((object["Fields"] as? [String: Any])?["msg"] as? String == "hello")
    }

    /// A logger's own metadata is on every line; the event's metadata wins where both set a key.
    @Test func loggerMetadataAndEventMetadataMerge() throws {
        let sink = CapturingLogSink()
        var logger = Logger(label: "breakwater.test") { MozlogHandler(label: $0, sink: sink, level: .info) }
        logger[metadataKey: "component"] = "outbox"
        logger[metadataKey: "crash_id"] = "bp-old"
        logger.info("moved", metadata: ["crash_id": "bp-new", "msg": "explicit"])
        let text = try #require(sink.lines.first)
        let object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let fields = try #require(object["Fields"] as? [String: Any])
        #expect(fields["component"] as? String == "outbox")
        #expect(fields["crash_id"] as? String == "bp-new")
        #expect(fields["msg"] as? String == "explicit", "a msg field given as metadata is kept")
        #expect(fields.count == 3)
    }

    @Test func typeMetadataNamesTheLine() throws {
        let object = try line("", ["type": "crash", "crash_id": "bp-1"])
        #expect(object["Type"] as? String == "crash")
        let fields = try #require(object["Fields"] as? [String: Any])
        #expect(fields["type"] == nil)
        #expect(fields["msg"] == nil, "an empty message adds no msg field")
        #expect(fields["crash_id"] as? String == "bp-1")
    }

    @Test func numbersAndBooleansStayJSONTypes() throws {
        let fields = try #require(line("x", ["n": .stringConvertible(42), "b": .stringConvertible(true),
                                                 "d": .stringConvertible(1.5), "nan": .stringConvertible(Double.nan),
                                                 "list": ["a", "b"], "nested": ["k": "v"]])["Fields"] as? [String: Any])
        #expect(fields["n"] as? Int == 42)
        #expect(fields["b"] as? Bool == true)
        #expect(fields["d"] as? Double == 1.5)
        #expect(fields["nan"] is NSNull)
        #expect(fields["list"] as? [String] == ["a", "b"])
        #expect((fields["nested"] as? [String: String]) == ["k": "v"])
    }

    @Test func hostileTextIsEscaped() throws {
        let evil = "line\nbreak \"quoted\" \\ tab\t nul\u{0} end"
        let fields = try #require(line("\(evil)", ["value": .string(evil)])["Fields"] as? [String: Any])
        #expect(fields["value"] as? String == evil)
        #expect(fields["msg"] as? String == evil)
    }

    @Test(arguments: [(Logger.Level.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2)])
    func syslogSeverities(level: Logger.Level, severity: Int) throws {
        #expect(try line("x", level: level)["Severity"] as? Int == severity)
    }
}
