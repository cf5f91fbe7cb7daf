import Foundation

/// Crash IDs as Socorro makes them: a UUID4 whose last 7 characters are the throttle digit
/// and the UTC receive date `YYMMDD`.
public enum CrashID {
    /// Makes a new crash ID for a crash received at `date` with `result`.
    public static func make(result: ThrottleResult, date: Date) -> String {
        String(RandomUUID.make().dropLast(7)) + String(result.digit) + yymmdd(date)
    }

    /// Whether a client's crash ID may be used: its shape, and a throttle digit the processors
    /// read (`0` accept or `1` defer, the seventh character from the end), as Antenna checks it.
    public static func isValidFromClient(_ id: String) -> Bool {
        guard isValid(id), let digit = id.utf8.dropLast(6).last else { return false }
        return digit == UInt8(ascii: "0") || digit == UInt8(ascii: "1")
    }

    /// Whether `id` has the shape of a crash ID.
    public static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            switch i {
            case 8, 13, 18, 23: if b != UInt8(ascii: "-") { return false }
            case 30...: if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) { return false }
            default:
                if !((UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)) { return false }
            }
        }
        return true
    }

    /// The `YYYYMMDD` date folder of a crash ID (from its last six digits; 20YY).
    public static func dateFolder(of id: String) -> String { "20" + id.suffix(6) }

    static func yymmdd(_ date: Date) -> String { String(UTCTime(date).compactDate.dropFirst(2)) }
}
