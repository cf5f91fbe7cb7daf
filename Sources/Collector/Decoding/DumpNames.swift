import NIOCore

/// Dump names as stored. A dump is stored under `v1/<name>/<crash id>` (`upload_file_minidump` as
/// `v1/dump/…`), so no two dumps of one crash may share a name and no name may be another
/// object's folder: `dump`, `raw_crash`, `dump_names`, `processed_crash` and `sentry_event` are
/// refused as `invalid_dump_name`. Names are kept to `[A-Za-z0-9_]`, at most 30 characters; a
/// part whose name, so reduced, is already taken (two parts of one name, or two names that only
/// differ past 30 characters or in dropped characters) is renamed deterministically to the first
/// free `<name>_2`, `<name>_3`, … and the rename noted in `collector_notes` (docs/DESIGN.md).
public enum DumpNames {
    public static let maxLength = 30
    public static let reserved: Set<String> = ["dump", "raw_crash", "dump_names", "processed_crash", "sentry_event"]

    /// `name` reduced to `[A-Za-z0-9_]` and 30 characters; empty and reserved results are refused.
    public static func sanitized(_ name: String) throws -> String {
        // ASCII byte ranges, not Unicode properties: a property lookup per character was
        // measurable on every crash.
        let kept = name.utf8.lazy.filter {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
        let clean = String(decoding: Array(kept.prefix(maxLength)), as: UTF8.self)
        guard !clean.isEmpty, !reserved.contains(clean) else { throw Malformed("invalid_dump_name") }
        return clean
    }

    /// Parts carrying a minidump: Breakpad's `upload_file_minidump` and Mozilla's
    /// `upload_file_minidump_<process>` (their content is unwrapped to the bare minidump).
    public static func isMinidump(_ name: String) -> Bool { name.hasPrefix("upload_file_minidump") }

    /// Adds a dump under its sanitized name, renamed if another dump of `report` has it already.
    public static func add(_ bytes: ByteBuffer, named name: String, to report: inout CrashReport) throws {
        let base = try sanitized(name)
        let taken = Set(report.dumps.map(\.name))
        var stored = base, n = 1
        while taken.contains(stored) || reserved.contains(stored) {
            n += 1
            let suffix = "_\(n)"
            stored = String(base.prefix(maxLength - suffix.count)) + suffix
        }
        if stored != base { report.collectorNotes.append("Stored dump part \(base) as \(stored): name already taken.") }
        report.dumps.append(CrashDump(name: stored, bytes: bytes))
    }
}
