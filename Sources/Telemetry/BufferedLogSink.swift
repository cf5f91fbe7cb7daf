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
/// A full buffer never loses a worker's line: the caller that finds it full writes the queue and
/// its own line itself, waiting for the write as an unbuffered sink would; `blockedWrites` counts
/// those. An event loop must not wait for stdout (every connection on it would wait too): its
/// lines (`writeWithoutWaiting`) may fill a second `capacity` beyond the first, and past that
/// they are dropped and counted (`droppedLines`), so memory stays bounded even when stdout is
/// stuck and clients keep sending refused requests. Lines leave in the order they were queued.
/// The writer thread lives as long as the process (the server makes one sink at start); `flush()`
/// writes what is queued now (shutdown).
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
    private let dropped = Atomic<Int>(0)
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

    /// Event-loop lines dropped because both buffers were full, since start.
    public var droppedLines: Int { dropped.load(ordering: .relaxed) }

    public func write(line: [UInt8]) {
        guard !enqueue(line, upTo: capacity) else { return }
        blocked.add(1, ordering: .relaxed)
        writing.withLock { _ in
            emit(take())
            emit(line)
        }
    }

    public func writeWithoutWaiting(line: [UInt8]) {
        if !enqueue(line, upTo: 2 * capacity) { dropped.add(1, ordering: .relaxed) }
    }

    /// Queues the line unless the queue would pass `limit` bytes; wakes the writer for the first.
    private func enqueue(_ line: [UInt8], upTo limit: Int) -> Bool {
        let queued: (Bool, wake: Bool) = queue.withLock { queue in
            if queue.bytes.count + line.count > limit { return (false, false) }
            queue.bytes.append(contentsOf: line)
            if queue.wakePending { return (true, false) }
            queue.wakePending = true
            return (true, true)
        }
        if queued.wake { wake.signal() }
        return queued.0
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
