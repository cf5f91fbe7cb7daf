#if canImport(Glibc)
import Glibc
#endif

/// A malloc'd block that carries its size in a 16-byte header (malloc's alignment) just before the
/// bytes handed out: the callbacks that free them (NIO's allocator, the C decompressors') are given
/// only the pointer. Used by `BodyBuffers` and `LeasedAllocator`.
enum SizedBlock {
    /// The bytes each block spends on its header.
    static let header = 16

    /// `size` usable bytes, or nil when malloc fails.
    static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        malloc(size + header).map { stamp($0, size) }
    }

    /// The block at `pointer` grown or shrunk to `size` usable bytes, or nil (leaving it as it was).
    static func reallocate(_ pointer: UnsafeMutableRawPointer, to size: Int) -> UnsafeMutableRawPointer? {
        realloc(pointer - header, size + header).map { stamp($0, size) }
    }

    /// The usable size the block at `pointer` was allocated with.
    static func size(of pointer: UnsafeMutableRawPointer) -> Int {
        (pointer - header).load(as: Int.self)
    }

    static func free(_ pointer: UnsafeMutableRawPointer) {
        Glibc.free(pointer - header)
    }

    private static func stamp(_ block: UnsafeMutableRawPointer, _ size: Int) -> UnsafeMutableRawPointer {
        block.storeBytes(of: size, as: Int.self)
        return block + header
    }
}
