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

    /// A durable file's pages leave the page cache once its bytes are on disk (`mincore` counts the
    /// resident ones). Written under `.build`, on the checkout's disk: the temporary folder may be
    /// tmpfs, which has no disk to drop pages to.
    @Test func writtenFilesLeaveThePageCache() throws {
        let root = FileManager.default.currentDirectoryPath + "/.build/durable-\(UUID().uuidString)"
        try DurableFile.makeFolder(root + "/a/b")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let size = 4 << 20
        try DurableFile.write(ByteBuffer(repeating: 7, count: size), to: root + "/a/b/file")
        let fd = open(root + "/a/b/file", O_RDONLY)
        defer { close(fd) }
        let map = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0))
        defer { munmap(map, size) }
        let pages = size / Int(getpagesize())
        var resident = [UInt8](repeating: 0, count: pages)
        #expect(mincore(map, size, &resident) == 0)
        let cached = resident.filter { $0 & 1 == 1 }.count
        #expect(cached == 0, "\(cached) of \(pages) pages still cached")
    }

    /// Many writers renaming into one folder share folder fsyncs; every one of them returns only
    /// when its own name is durable, and a failure reaches every writer it concerns.
    @Test func concurrentWritersIntoOneFolder() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let errors = NIOLockedValueBox(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            do {
                var renamed: [String] = []
                try DurableFile.writeTogether([(ByteBuffer(string: "crash \(i)"), root + "/a/b/\(i)")], renamed: &renamed)
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

    /// Files written together all arrive under their names; when one of them cannot be written,
    /// none is renamed into place and no temporary file is left behind.
    @Test func filesWrittenTogetherArriveTogetherOrNotAtAll() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try DurableFile.makeFolder(root + "/dump")
        try DurableFile.makeFolder(root + "/names")
        var renamed: [String] = []
        try DurableFile.writeTogether([(ByteBuffer(string: "one"), root + "/dump/a"), (ByteBuffer(string: "two"), root + "/dump/b"),
                                       (ByteBuffer(string: "[]"), root + "/names/a")], renamed: &renamed)
        #expect(renamed == [root + "/dump/a", root + "/dump/b", root + "/names/a"])
        #expect(FileManager.default.contents(atPath: root + "/dump/b") == Data("two".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/dump").sorted() == ["a", "b"])

        renamed = []
        #expect(throws: DurableFile.Failure.self) {
            try DurableFile.writeTogether([(ByteBuffer(string: "three"), root + "/dump/c"), (ByteBuffer(string: "x"), root + "/missing/c")],
                                          renamed: &renamed)
        }
        #expect(renamed.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/dump").sorted() == ["a", "b"], "no c, no temporary")
    }

    /// Staged files are on disk under hidden names only: each becomes visible when published, in
    /// order, and one never published leaves nothing behind.
    @Test func stagedFilesAppearOnlyWhenPublished() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var renamed: [String] = []
        do {
            var staged = try DurableFile.Staged([(ByteBuffer(string: "dump"), root + "/a/dump"), (ByteBuffer(string: "raw"), root + "/a/b/raw")])
            let inA = try FileManager.default.contentsOfDirectory(atPath: root + "/a")
            #expect(inA.filter { !$0.hasPrefix(".") } == ["b"] && inA.count == 2, "the dump only as a hidden temporary")
            try staged.publish(1, renamed: &renamed)
            #expect(FileManager.default.contents(atPath: root + "/a/dump") == Data("dump".utf8))
            #expect(access(root + "/a/b/raw", F_OK) != 0)
        }
        #expect(renamed == [root + "/a/dump"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/a/b").isEmpty, "the unpublished temporary is removed")
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
