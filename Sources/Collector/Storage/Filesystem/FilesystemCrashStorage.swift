import Foundation
import NIOCore

/// `CRASHSTORAGE=fs`: the design's keys as files under a root folder.
///
/// Each file is written with `DurableFile`: a hidden temporary name in its final folder (unique
/// across processes and threads: pid plus a random number, so collectors sharing a root never
/// clash), fsynced, renamed into place, and the folder fsynced, so a file is either absent or
/// whole, even after a power cut. Dumps and `dump_names` come first and `raw_crash` last: a
/// `raw_crash` file means the crash is complete. A save that fails removes what it wrote.
public final class FilesystemCrashStorage: CrashStorage {
    public let root: String

    /// Creates the root folder when missing.
    public init(root: String) throws {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.root = root
        try DurableFile.makeFolder(root)
    }

    public func save(_ crash: StoredCrash) throws {
        var attempted: [String] = []
        do {
            for (key, bytes) in StorageKeys.objects(of: crash) {
                attempted.append(path(key))
                try Self.writeFile(path(key), bytes)
            }
        } catch {
            // raw_crash first (it is last in `attempted`), so a partial crash never looks complete.
            for file in attempted.reversed() { unlink(file) }
            throw error
        }
    }

    /// Creates, writes and removes a small file in the root (a full disk fails here). The
    /// heartbeat caches the answer for a few seconds.
    public func check() -> HealthStatus {
        do {
            let file = "\(root)/.probe-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            try Self.writeFile(file, ByteBuffer(string: "ok"))
            unlink(file)
            return .ok
        } catch {
            return .error("filesystem storage not writable: \(error)")
        }
    }

    public func crashIDs(onDate date: String) throws -> [String] {
        let folder = path(StorageKeys.rawCrashFolder(date: date))
        guard FileManager.default.fileExists(atPath: folder) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter(CrashID.isValid).sorted()
    }

    func path(_ key: String) -> String { "\(root)/\(key)" }

    private static func writeFile(_ path: String, _ bytes: ByteBuffer) throws {
        try DurableFile.makeFolder((path as NSString).deletingLastPathComponent)
        try DurableFile.write(bytes, to: path)
    }
}
