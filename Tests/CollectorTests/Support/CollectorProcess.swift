import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The built `breakwater` executable run as a child process, as an operator runs it.
final class CollectorProcess {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let executable = root.appendingPathComponent(".build/debug/breakwater")

    let process = Process()
    let port: Int
    let output = Pipe()

    /// Starts `breakwater serve` with `environment` on a free port and waits until it answers.
    /// - Parameter logFile: where its output goes instead of a pipe (a long run would fill the pipe
    ///   and block the collector on its own log lines); `log` is then empty.
    init(environment: [String: String] = [:], arguments: [String] = ["serve"], logFile: String? = nil) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(Self.executable.path): run `swift build` (scripts/test does)"])
        }
        port = try Self.freePort()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.currentDirectoryURL = Self.root
        // An outbox of its own unless the test shares one between runs: the default `./spool`
        // would be shared by every process started from the repository.
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("breakwater-spool-\(UUID().uuidString)").path
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "PORT": String(port),
                   "HOST": "127.0.0.1", "STATSD_PORT": "9", "SPOOL_DIR": spool]
        env.merge(environment) { $1 }
        process.environment = env
        if let logFile {
            _ = FileManager.default.createFile(atPath: logFile, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = output
            process.standardError = output
        }
        try process.run()
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            if let c = try? RawConnection(port: port) {
                _ = c
                return
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        process.terminate()
        throw POSIXError(.ETIMEDOUT)
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// A line of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`: peak resident); nil once gone.
    func memory(_ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kB = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kB * 1024
    }

    /// `/proc/<pid>/maps`: what the process has mapped, shared libraries included. Read to the
    /// end: it reports a size of 0, and `String(contentsOfFile:)` stops short of a long one.
    func mappedFiles() throws -> String {
        let maps = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/maps"))
        defer { try? maps.close() }
        return String(decoding: try maps.readToEnd() ?? Data(), as: UTF8.self)
    }

    /// Waits for exit; nil when it did not exit within `timeout`.
    func waitForExit(timeout: Double) async -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { try? await Task.sleep(nanoseconds: 20_000_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Everything the process wrote (after it exited).
    var log: String { String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
