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
