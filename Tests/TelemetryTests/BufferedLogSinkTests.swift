import Foundation
import Testing
@testable import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// The server's log lines go through a writer thread: none is lost or reordered, and a full
/// buffer makes a worker wait (counted), never drops its line; an event loop never waits.
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

    /// Nobody reads the pipe and a worker is blocked writing to it: an event loop's lines return
    /// at once, kept up to a second buffer's worth and then dropped and counted; once the reader
    /// starts, every worker line and every kept line arrives.
    @Test func anEventLoopNeverWaitsForStdoutAndItsLinesAreBounded() async throws {
        let pipe = Pipe()
        let sink = BufferedLogSink(fd: pipe.write, capacity: 1024)
        let line = Array((String(repeating: "w", count: 199) + "\n").utf8)
        let fromLoop = Array((String(repeating: "e", count: 199) + "\n").utf8)
        let workerLines = 400  // 80 KB: more than the pipe (64 KiB) and the buffer together
        let worker = Task.detached { for _ in 0..<workerLines { sink.write(line: line) } }
        let deadline = Date().addingTimeInterval(10)
        while sink.blockedWrites == 0, Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(sink.blockedWrites > 0)

        let returned = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for _ in 0..<20 { sink.writeWithoutWaiting(line: fromLoop) }
            returned.signal()
        }
        #expect(returned.wait(timeout: .now() + 5) == .success, "an event-loop line waited for stdout")
        let dropped = sink.droppedLines
        #expect(dropped > 0 && dropped < 20, "\(dropped)")  // 2 KiB of queue holds 10 lines at most

        let lines = pipe.lines(workerLines + 20 - dropped)
        await worker.value
        sink.flush()
        #expect(lines.filter { $0.hasPrefix("w") }.count == workerLines)
        #expect(lines.filter { $0.hasPrefix("e") }.count == 20 - dropped)
    }

    @Test func aQuietSinkWritesPromptlyWithoutAFlush() {
        let pipe = Pipe()
        let sink = BufferedLogSink(fd: pipe.write)
        sink.write(line: Array("one\n".utf8))
        #expect(pipe.lines(1) == ["one"])
        #expect(sink.blockedWrites == 0)
    }
}
