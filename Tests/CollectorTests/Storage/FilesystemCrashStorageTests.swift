import Foundation
import Testing
@testable import Collector

/// `CRASHSTORAGE=fs` on real folders: exact keys, identical bytes, raw crash last, shared roots,
/// a full disk.
@Suite struct FilesystemCrashStorageTests {
    static func temporaryRoot() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("breakwater-fs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    /// Every regular file under `root`, relative to it.
    static func files(under root: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root)
        var out: [String] = []
        while let path = walker?.nextObject() as? String {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isFolder), !isFolder.boolValue { out.append(path) }
        }
        return out.sorted()
    }

    static func contents(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map(Array.init)
    }

    @Test func storesEachObjectUnderItsKeyByteForByte() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try FilesystemCrashStorage(root: root)
        let crash = StorageFixtures.crash([("upload_file_minidump", "simple-crashpad.dmp"), ("upload_file_minidump_browser", "linux-mini.dmp")])
        try storage.save(crash)

        let id = crash.crashID
        let date = CrashID.dateFolder(of: id)
        #expect(Self.files(under: root) == [
            "v1/dump/\(id)", "v1/dump_names/\(id)", "v1/raw_crash/\(date)/\(id)", "v1/upload_file_minidump_browser/\(id)",
        ])
        #expect(Self.contents("\(root)/v1/dump/\(id)") == Fixtures.bytes("simple-crashpad.dmp"))
        #expect(Self.contents("\(root)/v1/upload_file_minidump_browser/\(id)") == Fixtures.bytes("linux-mini.dmp"))
        #expect(Self.contents("\(root)/v1/dump_names/\(id)") == Array(#"["upload_file_minidump","upload_file_minidump_browser"]"#.utf8))
        #expect(Self.contents("\(root)/v1/raw_crash/\(date)/\(id)") == crash.rawCrash)
        #expect(try storage.crashIDs(onDate: date) == [id])
        #expect(try storage.crashIDs(onDate: "19990101") == [])
        #expect(storage.check() == .ok)
    }

    /// raw_crash is written last: when a dump cannot be written there is no raw_crash, and
    /// nothing else of the crash is left behind.
    @Test func failedDumpLeavesNoRawCrashAndNothingPartial() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try FilesystemCrashStorage(root: root)
        // A file where the folder of the second dump should be: its write fails.
        try FileManager.default.createDirectory(atPath: "\(root)/v1", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(root)/v1/upload_file_minidump_browser", contents: Data())
        let crash = StorageFixtures.crash([("upload_file_minidump", "test.dmp"), ("upload_file_minidump_browser", "linux-mini.dmp")])

        #expect(throws: DurableFile.Failure.self) { try storage.save(crash) }
        #expect(Self.files(under: root) == ["v1/upload_file_minidump_browser"])
        #expect(try storage.crashIDs(onDate: CrashID.dateFolder(of: crash.crashID)) == [])
    }

    /// Two collectors on one root, saving at once into the same folders, some crashes by both
    /// (a client retrying against the other collector): every file whole, no temporary left.
    @Test func twoStoragesSharingARootDoNotClash() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storages = [try FilesystemCrashStorage(root: root), try FilesystemCrashStorage(root: root)]
        let crashes = (0..<12).map { i in
            StorageFixtures.crash(i % 2 == 0 ? [("upload_file_minidump", "test.dmp")] : [("upload_file_minidump", "linux-mini.dmp")])
        }
        let failures = Locked(0)
        // Each crash saved by both storages concurrently.
        DispatchQueue.concurrentPerform(iterations: crashes.count * 2) { i in
            do { try storages[i % 2].save(crashes[i / 2]) } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        var expected: [String] = []
        for crash in crashes {
            for (key, bytes) in StorageFixtures.expectedObjects(crash) {
                expected.append(key)
                #expect(Self.contents("\(root)/\(key)") == bytes, "\(key)")
            }
        }
        #expect(Self.files(under: root) == expected.sorted())
        let date = CrashID.dateFolder(of: crashes[0].crashID)
        #expect(try storages[1].crashIDs(onDate: date) == crashes.map(\.crashID).sorted())
    }

    /// `CRASHSTORAGE=fs` gives a checked filesystem storage; a root that cannot exist stops start-up.
    @Test func backendsBuildsFilesystemStorageFromConfiguration() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var config = CollectorConfiguration()
        config.crashStorage = "fs"
        config.fsRoot = "\(root)/crashes"
        #expect(try Backends.storage(config, telemetry: .silent()) is FilesystemCrashStorage)
        config.fsRoot = "/dev/null/crashes"
        let error = try #require(throws: Backends.StartupError.self) { try Backends.storage(config, telemetry: .silent()) }
        #expect(error.description.contains("/dev/null/crashes"))
    }

    /// A full disk: the save fails within the budget, the saver says so (the pipeline answers
    /// 503), nothing is left, the heartbeat probe fails; with room again, saves work.
    @Test func fullDiskMakesTheSaveFail() throws {
        let disk = try SmallDisk.mount(size: "64k")
        defer { disk.unmount() }
        let mountPoint = disk.path
        let storage = try FilesystemCrashStorage(root: "\(mountPoint)/crashes")
        let (telemetry, logs) = StorageFixtures.telemetry()
        let saver = CrashSaver(storage: storage, telemetry: telemetry, budget: 0.5)

        // 116 KiB of dump on a 64 KiB disk.
        let big = StorageFixtures.crash([("upload_file_minidump", "pipeline-inlines-macos-segv.dmp")])
        let start = Date()
        #expect(saver.save(big) == .failed)
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(Self.files(under: mountPoint) == [])
        #expect(logs.lines.contains { $0.contains("save failed") && $0.contains("No space left on device") && $0.contains(big.crashID) })

        // Filled to the last byte, the heartbeat probe reports it.
        let filler = "\(mountPoint)/filler"
        _ = FileManager.default.createFile(atPath: filler, contents: Data(count: 64 * 1024))
        if case .error(let reason) = storage.check() {
            #expect(reason.contains("No space left on device"))
        } else {
            Issue.record("check() on a full disk should fail")
        }
        try FileManager.default.removeItem(atPath: filler)

        let small = StorageFixtures.crash([("upload_file_minidump", "invalid-range.dmp")])
        #expect(saver.save(small) == .stored)
        #expect(Self.contents("\(mountPoint)/crashes/v1/dump/\(small.crashID)") == Fixtures.bytes("invalid-range.dmp"))
    }
}

/// A value shared by concurrent test threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}
