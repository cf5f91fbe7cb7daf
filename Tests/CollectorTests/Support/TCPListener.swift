import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP port on 127.0.0.1 that takes connections and then says nothing: it hangs up at once
/// (a load balancer with no backend) or holds them open (a server that hangs). A broker or a
/// server that misbehaves this way cannot be made from the real ones.
final class TCPListener: @unchecked Sendable {
    // @unchecked: `held` is touched only by the accepting thread until `stop` joins it.
    enum Behaviour { case hangUp, hold }

    let port: Int
    private let fd: Int32
    private var held: [Int32] = []
    private let finished = DispatchSemaphore(value: 0)

    init(_ behaviour: Behaviour) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = self.fd
        let bound = withUnsafeMutablePointer(to: &addr) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard bound else { close(fd); throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { break }
                if behaviour == .hangUp { close(client) } else { held.append(client) }
            }
            held.forEach { close($0) }
            finished.signal()
        }.start()
    }

    /// Stops accepting and closes every connection held.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        finished.wait()
        close(fd)
    }
}
