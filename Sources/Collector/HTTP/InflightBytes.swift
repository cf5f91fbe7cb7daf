import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The cap on request bytes held in memory across all in-flight requests: the bytes of bodies
/// on the wire and every byte a decoder inflates from them. Each connection reserves what it
/// buffers and each decoder what it is about to produce; past the cap the request is refused
/// 503 instead. Peak memory is therefore `MAX_INFLIGHT_BYTES` plus a fixed overhead (README,
/// "Limits"), whatever the number of workers.
public final class InflightBytes: Sendable {
    private let held = Mutex(0)
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public func reserve(_ bytes: Int) -> Bool {
        held.withLock { held in
            guard held + bytes <= limit else { return false }
            held += bytes
            return true
        }
    }

    public func release(_ bytes: Int) { held.withLock { $0 -= bytes } }

    public var current: Int { held.withLock { $0 } }

    /// Makes every allocation of 1 MiB or more its own mapping, returned to the system when freed.
    /// glibc otherwise raises that threshold to 32 MiB as large buffers come and go, and then keeps
    /// freed request bodies in whichever worker thread's arena held them, where no other thread
    /// reuses them: resident memory would grow with the number of workers, not the cap.
    /// Fixing that threshold also fixes the trim threshold at its 128 KiB default, so every freed
    /// body of a few hundred KiB was handed back (madvise) and faulted in again by the next request
    /// (a tenth of the CPU of a typical crash): each arena now keeps up to 1 MiB of free top
    /// (4 MiB measured the same CPU, docs/performance.md, "Issue 16").
    /// Once per process, before serving.
    public static func returnLargeBuffersToTheSystem() {
        // mallopt is declared in <malloc.h>, which the Glibc module does not import.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(mmapThreshold, 1 << 20)
        _ = mallopt(trimThreshold, 1 << 20)
    }

    /// Thrown by a decoder whose next bytes would pass the cap; the endpoint answers busy.
    public struct Exhausted: Error, Equatable {}
}
