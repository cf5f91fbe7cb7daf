import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The publish backlog on disk: an append-only journal of `+<crash id>` and `-<crash id>`
/// lines, each fsynced, so crash IDs not yet queued survive a restart. It is rewritten with
/// only the pending IDs when opened, and emptied when nothing is pending. One process at a
/// time: a second one would compact the journal under the first one's feet.
final class BacklogFile {
    struct IOError: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    private let fd: Int32
    private let lockFD: Int32

    /// Opens (creating) the journal and returns it with the crash IDs still pending, oldest first.
    static func open(path: String) throws -> (BacklogFile, [String]) {
        let lockFD = Glibc.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw error("cannot open \(path).lock") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw IOError(description: "publish backlog \(path) is in use by another process")
        }
        do {
            let (fd, pending) = try compact(path)
            return (BacklogFile(path: path, fd: fd, lockFD: lockFD), pending)
        } catch {
            close(lockFD)
            throw error
        }
    }

    /// Rewrites the journal with only the pending IDs; returns it open for appending.
    private static func compact(_ path: String) throws -> (Int32, [String]) {
        let pending = try replay(path)
        let tmp = path + ".tmp"
        try write(pending.map { "+\($0)\n" }.joined(), to: tmp)
        guard rename(tmp, path) == 0 else { throw error("cannot replace \(path)") }
        try syncDirectory(of: path)
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open \(path)") }
        return (fd, pending)
    }

    private init(path: String, fd: Int32, lockFD: Int32) {
        self.path = path
        self.fd = fd
        self.lockFD = lockFD
    }

    deinit {
        close(fd)
        close(lockFD)
    }

    func recordAdded(_ crashID: String) throws { try append("+\(crashID)\n") }

    func recordRemoved(_ crashID: String) throws { try append("-\(crashID)\n") }

    /// Drops the journal's content once nothing is pending, so it never grows without bound.
    func truncate() throws {
        guard ftruncate(fd, 0) == 0, fsync(fd) == 0 else { throw Self.error("cannot truncate \(path)") }
    }

    private func append(_ line: String) throws {
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw Self.error("cannot write \(path)") }
    }

    /// Replays the journal. A torn last line (a crash mid-write) or anything that is not a
    /// crash ID is skipped.
    private static func replay(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var added: [String: Int] = [:]  // pending crash ID → position of its `+` line
        for (position, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let id = String(line.dropFirst())
            guard CrashID.isValid(id) else { continue }
            switch line.first {
            case "+": if added[id] == nil { added[id] = position }
            case "-": added[id] = nil
            default: continue
            }
        }
        return added.sorted { $0.value < $1.value }.map(\.key)
    }

    private static func write(_ text: String, to path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error("cannot create \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw error("cannot write \(path)") }
    }

    /// Makes a rename durable.
    private static func syncDirectory(of path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = Glibc.open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open \(dir)") }
        defer { close(fd) }
        fsync(fd)
    }

    private static func error(_ what: String) -> IOError {
        IOError(description: "publish backlog: \(what): \(String(cString: strerror(errno)))")
    }
}
