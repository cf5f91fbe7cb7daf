import Foundation
import Testing
@testable import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// The server's log lines go through a writer thread: none is lost or reordered, and a full
/// buffer makes the caller wait (counted), never drops a line.
@Suite struct BufferedLogSinkTests {
    /// A pipe whose read end the test drains; its write end is the sink's descriptor.
    private final class Pipe {
        let read: Int32
        let write: Int32
        init() {
            var fds: [Int32] = [0, 0]
            _ = pipe(&fds)
            read = fds[0]
            write = fds[1]
        }
        deinit {
            close(read)
            close(write)
        }

        /// Reads until `count` lines arrived (or 10 s passed).
        func lines(_ count: Int) -> [String] {
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            let end = Date().addingTimeInterval(10)
            var poller = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
            while data.count(where: { $0 == UInt8(ascii: "\n") }) < count, Date() < end {
                guard poll(&poller, 1, 100) > 0 else { continue }
                let n = Glibc.read(read, &buffer, buffer.count)
                if n > 0 { data += buffer[0..<n] }
            }
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }

    @Test func linesFromManyThreadsAllArriveEachWholeAndInOrderPerThread() async {
        let pipe = Pipe()
        let sink = BufferedLogSink(fd: pipe.write, capacity: 4096)
        let threads = 4, perThread = 2000
        let reader = Task.detached { pipe.lines(threads * perThread) }
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread { sink.write(line: Array("{\"thread\":\(t),\"i\":\(i)}\n".utf8)) }
        }
        sink.flush()
        let lines = await reader.value
        #expect(lines.count == threads * perThread)
        for t in 0..<threads {
            let mine = lines.filter { $0.hasPrefix("{\"thread\":\(t),") }
            #expect(mine == (0..<perThread).map { "{\"thread\":\(t),\"i\":\($0)}" })
        }
    }

    /// Nobody reads the pipe at first: the buffer and the pipe fill, the writing thread blocks
    /// instead of dropping, and everything arrives once the reader starts.
    @Test func aFullBufferBlocksTheCallerAndLosesNothing() async throws {
        let pipe = Pipe()
        let sink = BufferedLogSink(fd: pipe.write, capacity: 1024)
        let line = Array((String(repeating: "x", count: 199) + "\n").utf8)
        let count = 2000  // 400 KB: more than the pipe (64 KiB) and the buffer together
        let writer = Task.detached { for _ in 0..<count { sink.write(line: line) } }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(sink.blockedWrites > 0)
        let lines = pipe.lines(count)
        await writer.value
        #expect(lines.count == count)
        #expect(lines.allSatisfy { $0.utf8.count == 199 })
    }

    @Test func aQuietSinkWritesPromptlyWithoutAFlush() {
        let pipe = Pipe()
        let sink = BufferedLogSink(fd: pipe.write)
        sink.write(line: Array("one\n".utf8))
        #expect(pipe.lines(1) == ["one"])
        #expect(sink.blockedWrites == 0)
    }
}
