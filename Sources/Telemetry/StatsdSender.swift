import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sends statsd lines over UDP, batched into datagrams of at most `maxDatagram` bytes.
/// Never blocks a caller: the socket is non-blocking, a full batch is sent by whoever filled it,
/// and a timer flushes the rest, with the lines of every aggregated series (`StatsdSeries`).
/// A datagram that cannot be sent is dropped and counted.
// @unchecked: `timer` is only set in init and cancelled in deinit; the rest is immutable or in a Mutex.
public final class StatsdSender: @unchecked Sendable {
    public static let maxDatagram = 1432

    private let batch = Mutex<[UInt8]>([])
    private let fd: Int32
    private let address: sockaddr_storage
    private let addressLength: socklen_t
    private let droppedCount = Mutex(0)
    /// One per name and tag set, so a handler made twice for the same series aggregates in one
    /// place; flushed in the order they were made.
    private let allSeries = Mutex<(byKey: [String: StatsdSeries], ordered: [StatsdSeries])>(([:], []))
    private let timer: DispatchSourceTimer

    /// Whether `host` resolved: if not, every datagram is a counted drop (`statsd.dropped`).
    public var isResolved: Bool { addressLength > 0 }

    /// `host` is resolved once; an unresolvable host makes every datagram a counted drop.
    public init(host: String, port: Int, flushInterval: Double = 0.2) {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        var length: socklen_t = 0
        var address = sockaddr_storage()
        if getaddrinfo(host, String(port), &hints, &result) == 0, let info = result {
            withUnsafeMutableBytes(of: &address) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: info.pointee.ai_addr, count: Int(info.pointee.ai_addrlen)))
            }
            length = info.pointee.ai_addrlen
            freeaddrinfo(info)
        }
        self.address = address
        addressLength = length
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "breakwater.statsd"))
        timer.schedule(deadline: .now() + flushInterval, repeating: flushInterval)
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
        batch.withLock { $0.reserveCapacity(Self.maxDatagram) }
    }

    deinit {
        timer.cancel()
        if fd >= 0 { close(fd) }
    }

    /// Datagrams that could not be sent since start.
    public var dropped: Int { droppedCount.withLock { $0 } }

    /// Queues one statsd line (without newline).
    public func send(_ line: String) {
        var full: [UInt8]?
        batch.withLock { batch in
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

    /// The series of `name` and `dimensions`, made on first use.
    func series(name: String, kind: StatsdSeries.Kind, dimensions: [(String, String)]) -> StatsdSeries {
        let key = kind.rawValue + "|" + name + dimensions.map { "|" + $0.0 + "=" + $0.1 }.joined()
        return allSeries.withLock { all in
            if let existing = all.byKey[key] { return existing }
            let series = StatsdSeries(name: name, kind: kind, dimensions: dimensions) { [weak self] lines in
                lines.forEach { self?.send($0) }
            }
            all.byKey[key] = series
            all.ordered.append(series)
            return series
        }
    }

    /// Sends what every series aggregated, and whatever is batched, now (the timer calls this;
    /// so does shutdown).
    public func flush() {
        for series in allSeries.withLock({ $0.ordered }) {
            series.drain().forEach(send)
        }
        let pending: [UInt8] = batch.withLock { batch in
            defer { batch.removeAll(keepingCapacity: true) }
            return batch
        }
        if !pending.isEmpty { transmit(pending) }
    }

    private func transmit(_ datagram: [UInt8]) {
        guard fd >= 0, addressLength > 0 else { return countDrop() }
        let sent = datagram.withUnsafeBytes { bytes in
            withUnsafePointer(to: address) { addr in
                addr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, addressLength)
                }
            }
        }
        if sent != datagram.count { countDrop() }
    }

    private func countDrop() { droppedCount.withLock { $0 += 1 } }
}
