import Foundation
import NIOCore
import Synchronization
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

    /// Writes `bytes` to `path` durably (the folder must exist), its name included.
    public static func write(_ bytes: ByteBuffer, to path: String) throws {
        var renamed: [String] = []
        try writeTogether([(bytes, path)], renamed: &renamed)
        // Until the folder is fsynced the rename itself may not survive a power cut.
        try syncFolder((path as NSString).deletingLastPathComponent)
    }

    /// Writes several files durably, their bytes synced together (`Staged`), then renames them
    /// all into place. The names are durable only after the caller's `syncFolder` (one per folder,
    /// however many files). Every path it renamed is appended to `renamed`, also when it throws
    /// (the caller decides what to remove); its temporary files never outlive the call.
    public static func writeTogether(_ files: [(bytes: ByteBuffer, path: String)], renamed: inout [String]) throws {
        var staged = try Staged(files)
        try staged.publish(files.count, renamed: &renamed)
    }

    /// Files whose bytes are durable under hidden temporary names, not yet visible: each file's
    /// writeback starts as soon as it is written (`sync_file_range`), and only then is each one
    /// fdatasynced, so the disk takes all their data at once instead of one file after another.
    /// `publish` renames them into place in the order given, so a caller can make some names
    /// durable before the next become visible. Temporary files left unpublished are removed
    /// when it goes away.
    public struct Staged: ~Copyable {
        private var open: [(fd: Int32, temporary: String, path: String)] = []

        public init(_ files: [(bytes: ByteBuffer, path: String)]) throws {
            open.reserveCapacity(files.count)
            for (bytes, path) in files {
                let temporary = temporaryName(near: path)
                let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw Failure(operation: "create", path: temporary, errno: errno) }
                open.append((fd, temporary, path))
                try writeAll(bytes, to: fd, path: path)
                // Only a hint: an error here shows again in fdatasync. A new file: fdatasync below
                // also flushes its size, all that is needed to read it back.
                _ = startWriteback?(fd, 0, 0, 2)  // SYNC_FILE_RANGE_WRITE
            }
            for file in open {
                guard fdatasync(file.fd) == 0 else { throw Failure(operation: "fdatasync", path: file.path, errno: errno) }
                // The bytes are on disk now, and the collector does not read a crash back soon:
                // hand its pages back to the page cache's free pool. Otherwise every crash is
                // copied into pages the kernel must find afresh (45% of a filesystem run's CPU on
                // this VM, where free memory is handed back to the host), and in a container the
                // cache counts against its memory limit. Only a hint: no error to check.
                _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_DONTNEED)
            }
        }

        /// Renames the next `count` files into place, appending each renamed path to `renamed`.
        public mutating func publish(_ count: Int, renamed: inout [String]) throws {
            for _ in 0..<min(count, open.count) {
                let file = open.removeFirst()
                // close can report a delayed write error (NFS): the bytes are not safe then.
                guard close(file.fd) == 0 else {
                    let failure = Failure(operation: "close", path: file.path, errno: errno)
                    unlink(file.temporary)
                    throw failure
                }
                guard rename(file.temporary, file.path) == 0 else {
                    let failure = Failure(operation: "rename", path: file.path, errno: errno)
                    unlink(file.temporary)
                    throw failure
                }
                renamed.append(file.path)
            }
        }

        deinit {
            for file in open {
                close(file.fd)
                unlink(file.temporary)
            }
        }
    }

    /// `sync_file_range(2)`, which the Glibc module does not declare (it needs `_GNU_SOURCE`).
    private static let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? =
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range").map {
            unsafeBitCast($0, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
        }

    /// A hidden name in `path`'s folder, unique across processes and threads: this process's pid
    /// and a random number drawn once (pids are reused), then a counter, so a file costs no
    /// `getpid` or `getrandom` call.
    private static func temporaryName(near path: String) -> String {
        "\((path as NSString).deletingLastPathComponent)/.tmp-\(temporaryPrefix)-\(temporaryCounter.add(1, ordering: .relaxed).newValue)"
    }

    private static let temporaryPrefix = "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    private static let temporaryCounter = Atomic<UInt64>(0)

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
