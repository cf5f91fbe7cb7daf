import Foundation
import NIOCore

/// A folder that could not be made or synced, with the errno text.
public struct FilesystemStorageError: Error, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// `CRASHSTORAGE=fs`: the design's keys as files under a root folder.
///
/// Each file is written with `DurableFile`: a hidden temporary name in its final folder (unique
/// across processes and threads: pid plus a random number, so collectors sharing a root never
/// clash), fsynced, renamed into place, and the folder fsynced, so a file is either absent or
/// whole, even after a power cut. Dumps and `dump_names` come first and `raw_crash` last: a
/// `raw_crash` file means the crash is complete. A save that fails removes nothing: an earlier save
/// of the same crash may be complete, and the next attempt overwrites the files of this one.
public final class FilesystemCrashStorage: CrashStorage {
    public let root: String

    /// Creates the root folder when missing.
    public init(root: String) throws {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.root = root
        try Self.ensureFolder(root)
    }

    public func save(_ crash: StoredCrash) throws {
        for (key, bytes) in StorageKeys.objects(of: crash) { try Self.writeFile(path(key), bytes) }
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
        try ensureFolder((path as NSString).deletingLastPathComponent)
        try DurableFile.write(bytes, to: path)
    }

    /// Makes the folder and any missing parents, fsyncing each parent that gained an entry.
    /// Tolerates another process making the same folder at the same time.
    private static func ensureFolder(_ folder: String) throws {
        if mkdir(folder, 0o755) == 0 {
            try fsyncFolder((folder as NSString).deletingLastPathComponent)
            return
        }
        switch errno {
        case EEXIST:
            return
        case ENOENT:
            try ensureFolder((folder as NSString).deletingLastPathComponent)
            guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
                throw FilesystemStorageError(operation: "mkdir", path: folder, code: errno)
            }
            try fsyncFolder((folder as NSString).deletingLastPathComponent)
        default:
            throw FilesystemStorageError(operation: "mkdir", path: folder, code: errno)
        }
    }

    /// Makes a folder's entries (a rename, a new subfolder) durable.
    private static func fsyncFolder(_ folder: String) throws {
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FilesystemStorageError(operation: "open", path: folder, code: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FilesystemStorageError(operation: "fsync", path: folder, code: errno) }
    }
}
