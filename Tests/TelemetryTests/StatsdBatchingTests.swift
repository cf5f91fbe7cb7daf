import Foundation
import Testing
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// Statsd lines reach a real UDP socket, batched into datagrams no larger than one MTU's payload.
@Suite struct StatsdBatchingTests {
    /// A UDP socket on a loopback port that reads datagrams with a timeout.
    final class Receiver {
        let fd: Int32
        let port: Int

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { throw POSIXError(.EADDRINUSE) }
            port = Int(UInt16(bigEndian: address.sin_port))
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// The next datagram, or nil after the timeout.
        func next() -> String? {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
        }
    }

    @Test func linesShareDatagramsUpToTheLimit() throws {
        let receiver = try Receiver()
        let sender = StatsdSender(host: "127.0.0.1", port: receiver.port, flushInterval: 60)
        let lines = (0..<100).map { "breakwater.test_metric_number_\($0):1|c|#endpoint:submit" }
        for line in lines { sender.send(line) }
        sender.flush()
        var received: [String] = []
        var datagrams: [String] = []
        while received.count < lines.count, let datagram = receiver.next() {
            datagrams.append(datagram)
            received += datagram.split(separator: "\n").map(String.init)
        }
        #expect(received == lines, "every line once, in order")
        #expect(datagrams.allSatisfy { $0.utf8.count <= StatsdSender.maxDatagram })
        #expect(datagrams.count < lines.count / 10, "batched, not one datagram per line")
        #expect(datagrams.dropLast().allSatisfy { $0.utf8.count > StatsdSender.maxDatagram - 60 }, "full batches are sent full")
        #expect(sender.dropped == 0)
    }

    @Test func theTimerFlushesAPartialBatch() throws {
        let receiver = try Receiver()
        let sender = StatsdSender(host: "127.0.0.1", port: receiver.port, flushInterval: 0.05)
        sender.send("breakwater.lonely:1|c")
        #expect(receiver.next() == "breakwater.lonely:1|c")
    }

    @Test func anUnresolvableHostCountsDrops() throws {
        let sender = StatsdSender(host: "no-such-host.invalid", port: 8125, flushInterval: 60)
        sender.send("breakwater.x:1|c")
        sender.flush()
        #expect(sender.dropped == 1)
    }
}
