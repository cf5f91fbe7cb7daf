import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that it is either absent or complete after a crash of the process or machine:
/// a unique temporary name in the same folder, fsync, rename, fsync of the folder.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let errno: Int32
        public var description: String { "\(path): \(String(cString: strerror(errno)))" }
    }

    public static func write(_ bytes: ByteBuffer, to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = "\(folder)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(path: temporary, errno: errno) }
        var ok = true
        bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { ok = false; return }
                offset += n
            }
        }
        let code = errno
        if !ok || fsync(fd) != 0 {
            let failure = Failure(path: path, errno: ok ? errno : code)
            close(fd)
            unlink(temporary)
            throw failure
        }
        // close can report a delayed write error (NFS): the bytes are not safe then.
        guard close(fd) == 0 else {
            let failure = Failure(path: path, errno: errno)
            unlink(temporary)
            throw failure
        }
        guard rename(temporary, path) == 0 else {
            let failure = Failure(path: path, errno: errno)
            unlink(temporary)
            throw failure
        }
        // Until the folder is fsynced the rename itself may not survive a power cut.
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw Failure(path: folder, errno: errno) }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw Failure(path: folder, errno: errno) }
    }
}

extension DurableFile {
    /// Removes a file and makes the removal durable (fsync of its folder). A file already gone is fine.
    public static func remove(_ path: String) throws {
        guard unlink(path) == 0 else {
            if errno == ENOENT { return }
            throw Failure(path: path, errno: errno)
        }
        try syncFolder((path as NSString).deletingLastPathComponent)
    }

    /// Renames within one file system and makes it durable in both folders.
    public static func move(_ source: String, to destination: String) throws {
        guard rename(source, destination) == 0 else { throw Failure(path: source, errno: errno) }
        let from = (source as NSString).deletingLastPathComponent, to = (destination as NSString).deletingLastPathComponent
        try syncFolder(to)
        if from != to { try syncFolder(from) }
    }

    private static func syncFolder(_ folder: String) throws {
        let dir = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw Failure(path: folder, errno: errno) }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw Failure(path: folder, errno: errno) }
    }
}
