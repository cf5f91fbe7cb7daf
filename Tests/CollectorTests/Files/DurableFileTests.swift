import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Collector

@Suite struct DurableFileTests {
    private func folder() throws -> String {
        let path = NSTemporaryDirectory() + "durable-\(UUID().uuidString)"
        try DurableFile.makeFolder(path + "/a/b")
        return path
    }

    @Test func writesWholeFilesAndLeavesNoTemporaries() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = ByteBuffer(bytes: (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0) })
        try DurableFile.write(bytes, to: root + "/a/b/file")
        #expect(FileManager.default.contents(atPath: root + "/a/b/file") == Data(bytes.readableBytesView))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/a/b") == ["file"])
    }

    /// Many writers renaming into one folder share folder fsyncs; every one of them returns only
    /// when its own name is durable, and a failure reaches every writer it concerns.
    @Test func concurrentWritersIntoOneFolder() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let errors = NIOLockedValueBox(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            do {
                try DurableFile.write(ByteBuffer(string: "crash \(i)"), to: root + "/a/b/\(i)", syncingFolder: false)
                try DurableFile.syncFolder(root + "/a/b")
            } catch {
                errors.withLockedValue { $0 += 1 }
            }
        }
        #expect(errors.withLockedValue { $0 } == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: root + "/a/b")
        #expect(Set(names) == Set((0..<64).map(String.init)))

        let failures = NIOLockedValueBox<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do { try DurableFile.syncFolder(root + "/missing") } catch let failure as DurableFile.Failure {
                failures.withLockedValue { $0.append(failure.operation) }
            } catch {}
        }
        #expect(failures.withLockedValue { $0 } == Array(repeating: "open", count: 8))
    }

    @Test func aFullDiskIsAnErrorNotAShortFile() throws {
        // /dev/full answers every write with ENOSPC.
        let fd = open("/dev/full", O_WRONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(throws: DurableFile.Failure.self) {
            try DurableFile.writeAll(ByteBuffer(string: "bytes"), to: fd, path: "/dev/full")
        }
    }
}
