import NIOCore
import Testing
@testable import Collector
#if canImport(Glibc)
import Glibc
#endif

struct BodyBuffersTests {
    /// A freed block of a kept class goes to the next request of the same size, and only to it.
    @Test func keptBlocksGoToTheSameSizeClass() throws {
        var kept = BodyBuffers.Kept()
        let block = try #require(malloc(16))
        defer { free(block) }
        let accepted = kept.keep(block, size: 512 << 10)
        #expect(accepted && kept.bytes == 512 << 10)
        let smaller = kept.take(256 << 10), larger = kept.take(1 << 20)
        #expect(smaller == nil && larger == nil)
        let same = kept.take(512 << 10), again = kept.take(512 << 10)
        #expect(same == block && again == nil)
        #expect(kept.bytes == 0)
    }

    /// Small buffers, buffers past 1 MiB and sizes NIO never asks for are not kept, and what is
    /// kept never passes the bound.
    @Test func keptBytesStayWithinTheBound() throws {
        var kept = BodyBuffers.Kept()
        let block = try #require(malloc(16))
        defer { free(block) }
        let small = kept.keep(block, size: 32 << 10), large = kept.keep(block, size: 2 << 20)
        let odd = kept.keep(block, size: 400_000)
        #expect(!small && !large && !odd && kept.bytes == 0)
        var accepted = 0
        while kept.keep(block, size: 1 << 20) { accepted += 1 }
        #expect(accepted == BodyBuffers.retainedLimit / (1 << 20))
        #expect(kept.bytes == BodyBuffers.retainedLimit)
        let past = kept.keep(block, size: 64 << 10)
        #expect(!past)
    }

    /// Through NIO: a body's memory is reused by the next body of its class, and a body that grows
    /// (no Content-Length) keeps its bytes.
    @Test func bodyMemoryIsReusedAndGrowthKeepsBytes() {
        func address(_ buffer: ByteBuffer) -> UInt { buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        var first = BodyBuffers.allocator.buffer(capacity: 300_000)
        first.writeRepeatingByte(7, count: 300_000)
        let used = address(first)
        first = ByteBuffer()
        var second = BodyBuffers.allocator.buffer(capacity: 400_000)
        second.writeInteger(UInt8(1))
        #expect(address(second) == used)

        var growing = BodyBuffers.allocator.buffer(capacity: 0)
        for i in 0..<200_000 { growing.writeInteger(UInt8(truncatingIfNeeded: i)) }
        #expect(growing.readableBytes == 200_000)
        #expect(growing.getInteger(at: 199_999, as: UInt8.self) == UInt8(truncatingIfNeeded: 199_999))
        #expect(growing.getInteger(at: 70_000, as: UInt8.self) == UInt8(truncatingIfNeeded: 70_000))
    }
}
