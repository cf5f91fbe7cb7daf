import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real UDP socket on loopback collecting statsd datagrams.
final class StatsdReceiver: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var received: [[UInt8]] = []
    private var closed = false

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        // A large receive buffer: under load the reader thread falls behind bursts of datagrams.
        var size: Int32 = 8 << 20
        // SO_RCVBUFFORCE passes rmem_max when running as root (as CI does); SO_RCVBUF otherwise.
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [weak self] in self?.loop() }
        thread.start()
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !lock.withLock({ closed }) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { lock.withLock { received.append(Array(buffer[0..<n])) } }
        }
        Glibc.close(fd)
    }

    func close() { lock.withLock { closed = true } }

    var datagrams: [[UInt8]] { lock.withLock { received } }

    /// Every statsd line received so far.
    var lines: [String] { datagrams.flatMap { String(decoding: $0, as: UTF8.self).split(separator: "\n").map(String.init) } }

    /// Waits until a line containing every fragment arrives (statsd is flushed on a timer).
    func waitForLine(containing fragments: String..., timeout: Double = 10) async -> String? {
        await waitForLine(containingAll: fragments, timeout: timeout)
    }

    func waitForLine(containingAll fragments: [String], timeout: Double = 10) async -> String? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let line = lines.first(where: { line in fragments.allSatisfy { line.contains($0) } }) { return line }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return nil
    }

    /// The total counted so far by counter `name` (prefix included) with exactly `tags`
    /// (`"type:other"`, or nil for none): the collector sums a counter between flushes, so one
    /// line may stand for many events.
    func counted(_ name: String, tags: String? = nil) -> Int {
        lines.reduce(0) { total, line in
            let tail = "|c" + (tags.map { "|#" + $0 } ?? "")
            guard line.hasPrefix(name + ":"), line.hasSuffix(tail) else { return total }
            return total + (Int(line.dropFirst(name.count + 1).dropLast(tail.count)) ?? 0)
        }
    }

    /// Waits until counter `name` with `tags` has counted at least `count`; returns the total then.
    func waitForCount(_ name: String, tags: String? = nil, atLeast count: Int, timeout: Double = 10) async -> Int {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end, counted(name, tags: tags) < count {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return counted(name, tags: tags)
    }
}
