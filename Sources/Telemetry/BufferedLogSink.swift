import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Log lines written to a file descriptor by one writer thread, so the worker that logs a crash's
/// audit line does not wait for `write(2)`. Lines queue in a bounded buffer; the writer, woken by
/// the first line, takes everything queued 2 ms later, so under load one `write(2)` carries many
/// lines and one wake-up serves them all.
///
/// A full buffer never loses a line: the caller that finds it full writes the queue and its own
/// line itself, waiting for the write as an unbuffered sink would; `blockedWrites` counts those.
/// Lines leave in the order they were queued. The writer thread lives as long as the process (the
/// server makes one sink at start); `flush()` writes what is queued now (shutdown).
public final class BufferedLogSink: LogSink {
    private struct Queue {
        var bytes: [UInt8] = []
        /// The writer has been woken and has not yet taken the queue: no need to wake it again.
        var wakePending = false
    }

    private let queue = Mutex(Queue())
    /// Held while taking the queue and writing it, so batches leave in the order they were queued.
    private let writing = Mutex(())
    private let wake = DispatchSemaphore(value: 0)
    private let blocked = Atomic<Int>(0)
    private let fd: Int32
    private let capacity: Int
    /// How long the writer lets lines gather after the first one, in microseconds: the most a
    /// line waits before its write starts.
    static let gathering: UInt32 = 2_000

    /// - Parameter capacity: bytes queued at most; a line longer than that is written directly.
    public init(fd: Int32 = 1, capacity: Int = 1 << 20) {
        self.fd = fd
        self.capacity = capacity
        DispatchQueue(label: "breakwater.log-writer").async { [self] in
            while true {
                wake.wait()
                // Woken by the first line after a write; lines of the next moment join it. Waking
                // the writer for every line cost more CPU (a futex wake and a context switch
                // each) than writing it.
                usleep(Self.gathering)
                flush()
            }
        }
    }

    /// Lines whose caller found the buffer full and wrote it itself, since start.
    public var blockedWrites: Int { blocked.load(ordering: .relaxed) }

    public func write(line: [UInt8]) {
        enum Action { case none, wake, full }
        let action: Action = queue.withLock { queue in
            if queue.bytes.count + line.count > capacity { return .full }
            queue.bytes.append(contentsOf: line)
            if queue.wakePending { return .none }
            queue.wakePending = true
            return .wake
        }
        switch action {
        case .none: break
        case .wake: wake.signal()
        case .full:
            blocked.add(1, ordering: .relaxed)
            writing.withLock { _ in
                emit(take())
                emit(line)
            }
        }
    }

    public func flush() {
        writing.withLock { _ in emit(take()) }
    }

    private func take() -> [UInt8] {
        queue.withLock { queue in
            queue.wakePending = false
            defer { queue.bytes = [] }
            return queue.bytes
        }
    }

    private func emit(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeAll(to: fd, $0) }
    }
}
