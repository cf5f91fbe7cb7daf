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
        let digest = bytes.withUnsafeReadableBytes { SHA256.hash(data: $0) }
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// ISO 8601 UTC with microseconds, as Antenna writes `submitted_timestamp`.
    static func timestamp(_ date: Date) -> String {
        let c = CrashID.utcCalendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let micros = Int((date.timeIntervalSince1970 * 1_000_000).truncatingRemainder(dividingBy: 1_000_000))
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, micros)
    }
}
