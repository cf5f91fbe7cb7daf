import Crypto
import Foundation
import NIOCore

/// Builds the stored raw crash (DESIGN.md, "Raw crash"): the annotations as received plus `uuid`,
/// `submitted_timestamp`, `version: 2` and the collector's `metadata`, as JSON with sorted keys.
public enum RawCrash {
    public static func json(of report: CrashReport, crashID: String, rule: String, receivedAt: Date) -> [UInt8] {
        var crash = report.annotations
        var checksums: [String: JSONValue] = [:]
        for dump in report.dumps {
            checksums[dump.name] = .string(sha256Hex(dump.bytes))
        }
        crash["uuid"] = .string(crashID)
        crash["submitted_timestamp"] = .string(timestamp(receivedAt))
        crash["version"] = .number(2)
        crash["metadata"] = .object([
            "payload": .string(report.payloadKind),
            "payload_compressed": .string(report.payloadCompressed ? "1" : "0"),
            "payload_size": .number(Double(report.payloadSize)),
            "collector_notes": .array(report.collectorNotes.map(JSONValue.string)),
            "dump_checksums": .object(checksums),
            "user_agent": .string(report.userAgent),
            "throttle_rule": .string(rule),
        ])
        return Array(JSONValue.object(crash).serialized().utf8)
    }

    public static func sha256Hex(_ bytes: ByteBuffer) -> String {
        Hex.encode(bytes.withUnsafeReadableBytes { SHA256.hash(data: $0) })
    }

    /// ISO 8601 UTC with microseconds, as Antenna writes `submitted_timestamp`.
    static func timestamp(_ date: Date) -> String {
        let t = UTCTime(date)
        return "\(UTCTime.digits(t.year, 4))-\(UTCTime.digits(t.month, 2))-\(UTCTime.digits(t.day, 2))T"
            + "\(UTCTime.digits(t.hour, 2)):\(UTCTime.digits(t.minute, 2)):\(UTCTime.digits(t.second, 2))."
            + "\(UTCTime.digits(t.microsecond, 6))+00:00"
    }
}
