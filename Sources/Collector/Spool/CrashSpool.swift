import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// A local folder holding whole crashes that storage could not take in time: one fsynced file per
/// crash, written to a temporary name and renamed, so a file under its final name is complete.
/// Files are named by receive time, so the drainer takes the oldest first. It survives process
/// restarts, not the loss of the machine (an ephemeral disk such as a Heroku dyno's).
public final class CrashSpool: Sendable {
    public struct Entry: Sendable {
        public let crash: StoredCrash
        /// Whether the crash still has to be queued once stored (accepted, not deferred).
        public let queue: Bool
        public let path: String
    }

    public let directory: String
    public let maxBytes: Int
    private let telemetry: Telemetry
    /// Crashes and bytes currently spooled; read from disk at start, then kept up to date.
    private let totals = NIOLockedValueBox((count: 0, bytes: 0))
    private static let magic = "BWSPOOL1\n"

    public init(directory: String, maxBytes: Int, telemetry: Telemetry) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        self.telemetry = telemetry
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = try pending()
        let size = files.reduce(0) { $0 + Self.size(of: $1) }
        totals.withLockedValue { $0 = (files.count, size) }
        reportGauges()
    }

    /// Writes a crash; false when the spool is full or the disk refuses it (the client then gets 503).
    public func write(_ crash: StoredCrash, queue: Bool) -> Bool {
        var header: [String: JSONValue] = [
            "crash_id": .string(crash.crashID), "queue": .bool(queue),
            "raw_crash_length": .number(Double(crash.rawCrash.count)),
        ]
        header["dumps"] = .array(crash.dumps.map { .object(["name": .string($0.name), "length": .number(Double($0.bytes.readableBytes))]) })
        var file = ByteBuffer(string: Self.magic + JSONValue.object(header).serialized() + "\n")
        file.writeBytes(crash.rawCrash)
        for dump in crash.dumps { file.writeImmutableBuffer(dump.bytes) }

        let size = file.readableBytes
        let admitted = totals.withLockedValue { total in
            guard total.bytes + size <= maxBytes else { return false }
            total.bytes += size
            total.count += 1
            return true
        }
        guard admitted else { return false }
        let name = UTCTime.digits(Int(Date().timeIntervalSince1970 * 1_000_000_000), 20) + "-\(crash.crashID).crash"
        do {
            try DurableFile.write(file, to: directory + "/" + name)
        } catch {
            totals.withLockedValue { $0.bytes -= size; $0.count -= 1 }
            return false
        }
        reportGauges()
        return true
    }

    /// Spooled crash files, oldest first.
    public func pending() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".crash") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// Reads a spooled crash; nil for a file that is not one (it is left for an operator).
    public func read(_ path: String) -> Entry? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        let magic = Array(Self.magic.utf8)
        guard bytes.starts(with: magic), let newline = bytes[magic.count...].firstIndex(of: UInt8(ascii: "\n")),
              case .object(let header)? = try? JSONValue.parse(bytes[magic.count..<newline]),
              case .string(let id)? = header["crash_id"], case .number(let rawLength)? = header["raw_crash_length"],
              case .array(let dumpList)? = header["dumps"] else { return nil }
        var offset = newline + 1
        let rawEnd = offset + Int(rawLength)
        guard rawEnd <= bytes.count else { return nil }
        let raw = Array(bytes[offset..<rawEnd])
        offset = rawEnd
        var dumps: [CrashDump] = []
        for item in dumpList {
            guard case .string(let name)? = item["name"], case .number(let length)? = item["length"],
                  offset + Int(length) <= bytes.count else { return nil }
            dumps.append(CrashDump(name: name, bytes: ByteBuffer(bytes: bytes[offset..<(offset + Int(length))])))
            offset += Int(length)
        }
        let queue: Bool
        if case .bool(let q)? = header["queue"] { queue = q } else { queue = true }
        return Entry(crash: StoredCrash(crashID: id, rawCrash: raw, dumps: dumps), queue: queue, path: path)
    }

    public func remove(_ path: String) {
        let size = Self.size(of: path)
        if unlink(path) == 0 { totals.withLockedValue { $0.bytes -= size; $0.count -= 1 } }
        reportGauges()
    }

    public var count: Int { totals.withLockedValue { $0.count } }
    public var totalBytes: Int { totals.withLockedValue { $0.bytes } }

    /// Seconds since the oldest spooled crash was written (0 when empty).
    public var oldestAge: Double {
        guard count > 0, let oldest = try? pending().first,
              let nanos = UInt64((oldest as NSString).lastPathComponent.prefix(20)) else { return 0 }
        return max(0, Date().timeIntervalSince1970 - Double(nanos) / 1e9)
    }

    public func check() -> HealthStatus {
        let n = count
        return n == 0 ? .ok : .warning("\(n) crashes spooled, oldest \(Int(oldestAge)) s")
    }

    func reportGauges() {
        telemetry.gauge(MetricCatalog.spoolSize, Double(count))
        telemetry.gauge(MetricCatalog.spoolBytes, Double(totalBytes))
        telemetry.gauge(MetricCatalog.spoolOldestAge, oldestAge)
    }

    private static func size(of path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
