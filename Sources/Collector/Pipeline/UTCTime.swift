import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A moment broken into UTC fields, formatted with fixed-width digits. Crash IDs, raw crashes and
/// S3 signatures all need UTC dates; `gmtime_r` is much cheaper per crash than `Calendar`.
struct UTCTime {
    let year, month, day, hour, minute, second, microsecond: Int

    init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        year = Int(parts.tm_year) + 1900
        month = Int(parts.tm_mon) + 1
        day = Int(parts.tm_mday)
        hour = Int(parts.tm_hour)
        minute = Int(parts.tm_min)
        second = Int(parts.tm_sec)
        microsecond = min(999_999, Int(((interval - interval.rounded(.down)) * 1_000_000).rounded(.down)))
    }

    /// `value` in exactly `width` decimal digits, zero-padded.
    static func digits(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? String(s.suffix(width)) : String(repeating: "0", count: width - s.count) + s
    }

    /// `YYYYMMDD`
    var compactDate: String { Self.digits(year, 4) + Self.digits(month, 2) + Self.digits(day, 2) }
    /// `HHMMSS`
    var compactTime: String { Self.digits(hour, 2) + Self.digits(minute, 2) + Self.digits(second, 2) }
}

/// Lower-case hexadecimal, for digests.
enum Hex {
    /// Lowercase hex digits, made once (also for `RandomUUID`): built per call, the table was an
    /// allocation per checksum.
    static let digits = Array("0123456789abcdef".utf8)

    static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
