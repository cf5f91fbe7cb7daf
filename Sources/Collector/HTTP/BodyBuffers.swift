@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

/// The memory of request bodies, kept for the next request instead of handed back to glibc.
///
/// A body buffer (sized from `Content-Length`; a typical crash's is 512 KiB) is freed by a worker
/// and the next one allocated on an event loop a moment later. glibc trims its arenas' free top
/// past 1 MiB (`InflightBytes.returnLargeBuffersToTheSystem`), so the next body often lands in
/// pages the kernel must find afresh: on this VM, where free memory goes back to the host, those
/// page faults were a tenth of a typical crash's CPU. Freed blocks of 64 KiB to 1 MiB are kept
/// here, up to `retainedLimit` bytes in all, and handed to the next body of the same size class
/// (NIO sizes every buffer to a power of two). What is kept is a fixed bound on top of
/// `MAX_INFLIGHT_BYTES`, which still counts every body in use.
enum BodyBuffers {
    /// The allocator of request bodies (`RequestCollector`).
    static let allocator = ByteBufferAllocator(
        allocate: { size in BodyBuffers.take(Int(size)) },
        reallocate: { pointer, _, size in BodyBuffers.resize(pointer, to: Int(size)) },
        deallocate: { pointer in BodyBuffers.give(pointer) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: Int(count)) })

    static let smallestKept = 64 << 10
    static let largestKept = 1 << 20
    static let retainedLimit = 8 << 20

    /// Free blocks by size class, and their bytes in all.
    struct Kept {
        var blocks: [[UInt]] = Array(repeating: [], count: BodyBuffers.classes)
        var bytes = 0

        /// A kept block of exactly `size` usable bytes, if there is one.
        mutating func take(_ size: Int) -> UnsafeMutableRawPointer? {
            guard let index = BodyBuffers.classIndex(size), let block = blocks[index].popLast() else { return nil }
            bytes -= size
            return UnsafeMutableRawPointer(bitPattern: block)
        }

        /// Keeps a free block of `size` bytes if it is of a kept class and the bound allows.
        mutating func keep(_ block: UnsafeMutableRawPointer, size: Int) -> Bool {
            guard let index = BodyBuffers.classIndex(size), bytes + size <= BodyBuffers.retainedLimit else { return false }
            blocks[index].append(UInt(bitPattern: block))
            bytes += size
            return true
        }
    }

    static let kept = Mutex(Kept())

    private static let classes = (largestKept / smallestKept).trailingZeroBitCount + 1

    /// The class of a power-of-two size between `smallestKept` and `largestKept`.
    static func classIndex(_ size: Int) -> Int? {
        guard size >= smallestKept, size <= largestKept, size.nonzeroBitCount == 1 else { return nil }
        return (size / smallestKept).trailingZeroBitCount
    }

    /// A kept block was allocated for its class's size and still carries it (`SizedBlock`).
    private static func take(_ size: Int) -> UnsafeMutableRawPointer? {
        kept.withLock { $0.take(size) } ?? SizedBlock.allocate(size)
    }

    private static func resize(_ pointer: UnsafeMutableRawPointer?, to size: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return take(size) }
        return SizedBlock.reallocate(pointer, to: size)
    }

    private static func give(_ pointer: UnsafeMutableRawPointer) {
        if !kept.withLock({ $0.keep(pointer, size: SizedBlock.size(of: pointer)) }) { SizedBlock.free(pointer) }
    }
}
