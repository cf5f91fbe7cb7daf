import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where formatted log lines go. One complete line per call.
public protocol LogSink: Sendable {
    func write(line: String)
}

/// Log lines to stdout, one `write(2)` per line so lines from many threads never interleave.
public struct StdoutLogSink: LogSink {
    public init() {}

    public func write(line: String) {
        var line = line
        line.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(1, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }
}

/// Keeps lines in memory; tests read them back, and it forwards to another sink when given one.
public final class CapturingLogSink: LogSink {
    private let stored = Mutex<[String]>([])
    private let forward: LogSink?

    public init(forwardingTo forward: LogSink? = nil) { self.forward = forward }

    public func write(line: String) {
        stored.withLock { $0.append(line) }
        forward?.write(line: line)
    }

    public var lines: [String] { stored.withLock { $0 } }
}
