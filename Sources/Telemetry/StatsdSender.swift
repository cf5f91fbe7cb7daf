import Dispatch
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Sends statsd lines over UDP, batched into datagrams of at most `maxDatagram` bytes.
/// Never blocks a caller: the socket is non-blocking, a full batch is sent by whoever filled it,
/// and a timer flushes the rest. A datagram that cannot be sent is dropped and counted.
public final class StatsdSender: @unchecked Sendable {
    public static let maxDatagram = 1432

    private let lock = NIOLock()
    private var batch: [UInt8] = []
    private let fd: Int32
    private var address = sockaddr_storage()
    private let addressLength: socklen_t
    private let droppedCount = NIOLockedValueBox(0)
    private let timer: DispatchSourceTimer

    /// `host` is resolved once; an unresolvable host makes every datagram a counted drop.
    public init(host: String, port: Int, flushInterval: Double = 0.2) {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        var length: socklen_t = 0
        if getaddrinfo(host, String(port), &hints, &result) == 0, let info = result {
            withUnsafeMutableBytes(of: &address) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: info.pointee.ai_addr, count: Int(info.pointee.ai_addrlen)))
            }
            length = info.pointee.ai_addrlen
            freeaddrinfo(info)
        }
        addressLength = length
        batch.reserveCapacity(Self.maxDatagram)
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "breakwater.statsd"))
        timer.schedule(deadline: .now() + flushInterval, repeating: flushInterval)
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
    }

    deinit {
        timer.cancel()
        if fd >= 0 { close(fd) }
    }

    /// Datagrams that could not be sent since start.
    public var dropped: Int { droppedCount.withLockedValue { $0 } }

    /// Queues one statsd line (without newline).
    public func send(_ line: String) {
        var full: [UInt8]?
        lock.withLock {
            let needed = line.utf8.count + (batch.isEmpty ? 0 : 1)
            if batch.count + needed > Self.maxDatagram, !batch.isEmpty {
                full = batch
                batch.removeAll(keepingCapacity: true)
            }
            if !batch.isEmpty { batch.append(UInt8(ascii: "\n")) }
            batch.append(contentsOf: line.utf8.prefix(Self.maxDatagram))
        }
        if let full { transmit(full) }
    }

    /// Sends whatever is batched now (the timer calls this; so does shutdown).
    public func flush() {
        let pending: [UInt8] = lock.withLock {
            defer { batch.removeAll(keepingCapacity: true) }
            return batch
        }
        if !pending.isEmpty { transmit(pending) }
    }

    private func transmit(_ datagram: [UInt8]) {
        guard fd >= 0, addressLength > 0 else { return countDrop() }
        let sent = datagram.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) { addr in
                addr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, addressLength)
                }
            }
        }
        if sent != datagram.count { countDrop() }
    }

    private func countDrop() { droppedCount.withLockedValue { $0 += 1 } }
}
