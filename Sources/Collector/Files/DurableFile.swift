import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The one way this collector makes bytes durable on local disk: filesystem storage and the
/// outbox both write through it. A file is either absent or complete after a crash of the process
/// or the machine: a unique temporary name in the same folder, a write loop that survives EINTR
/// and short writes, fsync, rename, fsync of the folder.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let path: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// Writes `bytes` to `path` durably (the folder must exist). With `syncingFolder: false` the
    /// file's bytes are durable but its name is not until the caller calls `syncFolder`: a writer
    /// of several files into one folder pays for one folder fsync.
    public static func write(_ bytes: ByteBuffer, to path: String, syncingFolder: Bool = true) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = "\(folder)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(operation: "create", path: temporary, errno: errno) }
        do {
            try writeAll(bytes, to: fd, path: path)
            // A new file: fdatasync also flushes its size, all that is needed to read it back.
            guard fdatasync(fd) == 0 else { throw Failure(operation: "fdatasync", path: path, errno: errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        // close can report a delayed write error (NFS): the bytes are not safe then.
        guard close(fd) == 0 else {
            let failure = Failure(operation: "close", path: path, errno: errno)
            unlink(temporary)
            throw failure
        }
        guard rename(temporary, path) == 0 else {
            let failure = Failure(operation: "rename", path: path, errno: errno)
            unlink(temporary)
            throw failure
        }
        // Until the folder is fsynced the rename itself may not survive a power cut.
        if syncingFolder { try syncFolder(folder) }
    }

    /// Writes every byte to `fd`: a full disk (ENOSPC) or any error other than EINTR throws, so
    /// a short write is never taken for a whole one.
    public static func writeAll(_ bytes: ByteBuffer, to fd: Int32, path: String) throws {
        try bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Failure(operation: "write", path: path, errno: n < 0 ? errno : ENOSPC) }
                offset += n
            }
        }
    }

    /// Makes a folder's entries (a rename, a new subfolder, an unlink) durable. Concurrent
    /// callers on one folder share fsyncs (`FolderSync`).
    public static func syncFolder(_ folder: String) throws {
        try FolderSync.shared.sync(folder)
    }

    /// Makes the folder and any missing parents, fsyncing each parent that gained an entry.
    /// Tolerates another process making the same folder at the same time.
    public static func makeFolder(_ folder: String) throws {
        if mkdir(folder, 0o755) == 0 {
            try syncFolder((folder as NSString).deletingLastPathComponent)
            return
        }
        switch errno {
        case EEXIST:
            return
        case ENOENT:
            try makeFolder((folder as NSString).deletingLastPathComponent)
            guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
                throw Failure(operation: "mkdir", path: folder, errno: errno)
            }
            try syncFolder((folder as NSString).deletingLastPathComponent)
        default:
            throw Failure(operation: "mkdir", path: folder, errno: errno)
        }
    }
}

extension DurableFile {
    /// Removes a file and makes the removal durable (fsync of its folder). A file already gone is fine.
    public static func remove(_ path: String) throws {
        guard unlink(path) == 0 else {
            if errno == ENOENT { return }
            throw Failure(operation: "unlink", path: path, errno: errno)
        }
        try syncFolder((path as NSString).deletingLastPathComponent)
    }

    /// Renames within one file system and makes it durable in both folders.
    public static func move(_ source: String, to destination: String) throws {
        guard rename(source, destination) == 0 else { throw Failure(operation: "rename", path: source, errno: errno) }
        let from = (source as NSString).deletingLastPathComponent, to = (destination as NSString).deletingLastPathComponent
        try syncFolder(to)
        if from != to { try syncFolder(from) }
    }
}
