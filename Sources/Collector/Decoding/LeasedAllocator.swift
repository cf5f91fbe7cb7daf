#if canImport(Glibc)
import Glibc
#endif

/// The allocator handed to the C decompressors (Brotli, zstd, xz, bzip2): their windows and tables
/// are reserved from the request's `MemoryLease` before they are allocated, like their output, so
/// a stream declaring a large window is counted, not just its output. Used by one decoder call on
/// one thread, through the `opaque` pointer every one of those libraries passes back.
final class LeasedAllocator {
    let lease: MemoryLease
    /// Set when an allocation was refused for lack of budget (not a malformed stream).
    private(set) var exhausted = false
    /// Room before each block for its size, keeping the block 16-byte aligned.
    private static let header = 16

    init(_ lease: MemoryLease) { self.lease = lease }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> LeasedAllocator {
        Unmanaged<LeasedAllocator>.fromOpaque(opaque!).takeUnretainedValue()
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let total = size + Self.header
        do {
            try lease.reserve(total)
        } catch {
            exhausted = true
            return nil
        }
        guard let block = malloc(total) else {
            lease.release(total)
            return nil
        }
        block.storeBytes(of: total, as: Int.self)
        return block + Self.header
    }

    func free(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - Self.header
        lease.release(block.load(as: Int.self))
        Glibc.free(block)
    }

    /// The error to throw when a library reported failure: the budget's, or the stream's.
    var failure: Error { exhausted ? InflightBytes.Exhausted() : Inflater.Failure.badData }
}
