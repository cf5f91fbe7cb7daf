import Foundation
import Testing
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// Statsd lines reach a real UDP socket, batched into datagrams no larger than one MTU's payload.
@Suite struct StatsdBatchingTests {
    @Test func linesShareDatagramsUpToTheLimit() throws {
        let receiver = UDPReceiver()
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
        let receiver = UDPReceiver()
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
