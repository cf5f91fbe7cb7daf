/// The allocator handed to the C decompressors (Brotli, zstd, xz, bzip2): their windows and tables
/// are reserved from the request's `MemoryLease` before they are allocated, like their output, so
/// a stream declaring a large window is counted, not just its output. Used by one decoder call on
/// one thread, through the `opaque` pointer every one of those libraries passes back.
final class LeasedAllocator {
    let lease: MemoryLease
    /// Set when an allocation was refused for lack of budget (not a malformed stream).
    private(set) var exhausted = false

    init(_ lease: MemoryLease) { self.lease = lease }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> LeasedAllocator {
        Unmanaged<LeasedAllocator>.fromOpaque(opaque!).takeUnretainedValue()
    }

    /// Counts the block's size header too (`SizedBlock`).
    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let total = size + SizedBlock.header
        do {
            try lease.reserve(total)
        } catch {
            exhausted = true
            return nil
        }
        guard let pointer = SizedBlock.allocate(size) else {
            lease.release(total)
            return nil
        }
        return pointer
    }

    func free(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        lease.release(SizedBlock.size(of: pointer) + SizedBlock.header)
        SizedBlock.free(pointer)
    }

    /// The error to throw when a library reported failure: the budget's, or the stream's.
    var failure: Error { exhausted ? InflightBytes.Exhausted() : Inflater.Failure.badData }
}
