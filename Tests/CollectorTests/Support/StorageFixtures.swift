import Foundation
import NIOCore
import Telemetry
@testable import Collector

/// Crashes as the pipeline hands them to storage, with real minidumps, and the means to look at
/// what a storage wrote.
enum StorageFixtures {
    /// A crash with the given dumps (field name, fixture file) received on `date`.
    static func crash(_ dumps: [(String, String)] = [("upload_file_minidump", "simple-crashpad.dmp")],
                      date: Date = Date()) -> StoredCrash {
        let report = CrashReport(annotations: ["ProductName": .string("Breakwater"), "Version": .string("1.0")],
                                 dumps: dumps.map { CrashDump(name: $0.0, bytes: ByteBuffer(bytes: Fixtures.bytes($0.1))) },
                                 payloadKind: "multipart")
        let id = CrashID.make(result: .accept, date: date)
        return StoredCrash(crashID: id, rawCrash: RawCrash.json(of: report, crashID: id, rule: "ACCEPT_ALL", receivedAt: date),
                           dumps: report.dumps)
    }

    /// Every key of `crash` with the bytes it must hold, raw_crash last.
    static func expectedObjects(_ crash: StoredCrash) -> [(key: String, bytes: [UInt8])] {
        StorageKeys.objects(of: crash).map { ($0.key, Array($0.bytes.readableBytesView)) }
    }

    /// A date no other test run uses, so listings by date see only this test's crashes.
    static func uniqueDate() -> Date {
        Date(timeIntervalSince1970: Double.random(in: 946_684_800...3_155_760_000).rounded())
    }

    /// Telemetry whose log lines the test reads.
    static func telemetry() -> (Telemetry, CapturingLogSink) {
        let logs = CapturingLogSink()
        return (Telemetry(sink: logs, logLevel: .debug, statsd: nil), logs)
    }
}
