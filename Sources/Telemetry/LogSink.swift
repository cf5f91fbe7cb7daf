import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where formatted log lines go. One complete line per call, as UTF-8 bytes.
public protocol LogSink: Sendable {
    func write(line: [UInt8])
    /// As `write(line:)`, for a caller that must not wait for the line's descriptor (an event
    /// loop): a sink that could block it keeps or drops the line instead.
    func writeWithoutWaiting(line: [UInt8])
    /// Writes whatever the sink still holds (shutdown).
    func flush()
}

extension LogSink {
    public func writeWithoutWaiting(line: [UInt8]) { write(line: line) }
    public func flush() {}
}

/// Log lines to stdout, one `write(2)` per line so lines from many threads never interleave.
/// Tools use it; the server queues its lines through `BufferedLogSink`.
public struct StdoutLogSink: LogSink {
    public init() {}

    public func write(line: [UInt8]) {
        line.withUnsafeBytes { writeAll(to: 1, $0) }
    }
}

/// Writes all of `bytes` to `fd`, retrying short writes and interrupted calls; gives up silently
/// on any other error (a log line has nowhere else to go).
func writeAll(to fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n <= 0 { if errno == EINTR { continue } else { return } }
        offset += n
    }
}

/// Keeps lines in memory; tests read them back, and it forwards to another sink when given one.
public final class CapturingLogSink: LogSink {
    private let stored = Mutex<[String]>([])
    private let forward: LogSink?

    public init(forwardingTo forward: LogSink? = nil) { self.forward = forward }

    public func write(line: [UInt8]) {
        stored.withLock { $0.append(String(decoding: line, as: UTF8.self)) }
        forward?.write(line: line)
    }

    public var lines: [String] { stored.withLock { $0 } }
}
