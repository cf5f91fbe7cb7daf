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
        members.reserveCapacity(report.annotations.count + 4)
        for member in report.annotations where !isCollectorKey(member.key) { members.append(member) }
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
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        JSONValue.writeObject(JSONValue.sortedByKey(members), to: &out)
        return out
    }

    /// The keys the collector sets, replacing any annotation of the same name. Compared, not
    /// looked up in a Set: hashing every annotation's name was a measurable share of a small crash.
    private static func isCollectorKey(_ key: String) -> Bool {
        switch key.utf8.count {
        case 4: return key == "uuid"
        case 7: return key == "version"
        case 8: return key == "metadata"
        case 19: return key == "submitted_timestamp"
        default: return false
        }
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
