import Foundation
import NIOCore

/// `CRASHSTORAGE=fs`: the design's keys as files under a root folder.
///
/// Each file is written with `DurableFile`: a hidden temporary name in its final folder (unique
/// across processes and threads, so collectors sharing a root never clash), fsynced, renamed into
/// place, and the folder fsynced, so a file is either absent or whole, even after a power cut.
/// The bytes of all of a crash's files are synced together (`DurableFile.Staged`); then dumps and
/// `dump_names` are renamed into place and their folders fsynced (once each, shared with
/// concurrent saves), and `raw_crash` is renamed last: a `raw_crash` file means the crash is
/// complete. A save that fails removes what it wrote, unless `raw_crash` exists (an earlier save
/// of the same crash completed): then nothing is removed.
public final class FilesystemCrashStorage: CrashStorage {
    public let root: String

    /// Creates the root folder when missing.
    public init(root: String) throws {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.root = root
        try DurableFile.makeFolder(root)
    }

    public func save(_ crash: StoredCrash) throws {
        let files = StorageKeys.objects(of: crash).map { (bytes: $0.bytes, path: path($0.key)) }
        guard let rawCrash = files.last else { return }
        var written: [String] = []
        do {
            // Every object's bytes, raw_crash's too, synced together under hidden names...
            var dumpFolders: [String] = []
            for file in files.dropLast() {
                let folder = (file.path as NSString).deletingLastPathComponent
                if !dumpFolders.contains(folder) { dumpFolders.append(folder) }
            }
            let rawCrashFolder = (rawCrash.path as NSString).deletingLastPathComponent
            for folder in dumpFolders + [rawCrashFolder] { try DurableFile.makeFolder(folder) }
            var staged = try DurableFile.Staged(files)
            // ...dumps and dump_names visible and durable first, each folder fsynced once...
            try staged.publish(files.count - 1, renamed: &written)
            for folder in dumpFolders { try DurableFile.syncFolder(folder) }
            // ...then raw_crash, durable before the save returns: it says the crash is complete.
            try staged.publish(1, renamed: &written)
            try DurableFile.syncFolder(rawCrashFolder)
        } catch {
            // A raw_crash already there is a completed earlier save of this crash (a retry): its
            // objects are never removed. Otherwise remove what this save wrote.
            if access(rawCrash.path, F_OK) != 0 {
                for file in written { unlink(file) }
            }
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
