import Crypto
import Foundation
import NIOCore

/// Builds the stored raw crash (DESIGN.md, "Raw crash"): the annotations as received plus `uuid`,
/// `submitted_timestamp`, `version: 2` and the collector's `metadata`, as JSON with sorted keys.
public enum RawCrash {
    public static func json(of report: CrashReport, crashID: String, rule: String, receivedAt: Date) -> [UInt8] {
        var checksums: [String: JSONValue] = [:]
        for dump in report.dumps {
            checksums[dump.name] = .string(sha256Hex(dump.bytes))
        }
        // Members written straight from the annotations: copying the dictionary to add four
        // keys rehashed every annotation of every crash.
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(report.annotations.count + collectorKeys.count)
        for member in report.annotations where !collectorKeys.contains(member.key) { members.append(member) }
        members.append(("uuid", .string(crashID)))
        members.append(("submitted_timestamp", .string(timestamp(receivedAt))))
        members.append(("version", .number(2)))
        members.append(("metadata", .object([
            "payload": .string(report.payloadKind),
            "payload_compressed": .string(report.payloadCompressed ? "1" : "0"),
            "payload_size": .number(Double(report.payloadSize)),
            "collector_notes": .array(report.collectorNotes.map(JSONValue.string)),
            "dump_checksums": .object(checksums),
            "user_agent": .string(report.userAgent),
            "throttle_rule": .string(rule),
        ])))
        members.sort { $0.key < $1.key }
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        JSONValue.writeObject(members, to: &out)
        return out
    }

    /// The keys the collector sets, replacing any annotation of the same name.
    private static let collectorKeys: Set<String> = ["uuid", "submitted_timestamp", "version", "metadata"]

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
