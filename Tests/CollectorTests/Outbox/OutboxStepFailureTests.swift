import Foundation
import NIOCore
import Testing
import Telemetry
@testable import Collector

/// A step of the outbox that fails halfway on the real disk never strands a record: each failure
/// here is made real by putting a folder where a file must be removed or renamed to (`unlink` and
/// `rename` then fail with EISDIR), and the record must still reach its queue, leave the line, or
/// be quarantined. A body whose header cannot be read is quarantined, not ignored. Tools that open
/// the outbox next to a serving collector change nothing in it.
@Suite struct OutboxStepFailureTests {
    /// Puts a non-empty folder at `path`, so that removing it or renaming onto it fails.
    static func obstruct(_ path: String) throws {
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path + "/in-the-way", withIntermediateDirectories: true)
    }

    /// An outbox in a new folder, holding one crash the mover has taken.
    static func oneCrashTaken() throws -> (folder: String, outbox: Outbox, crash: StoredCrash, record: OutboxRecord) {
        let folder = OutboxTests.temporaryFolder()
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        let crash = OutboxTests.crash()
        #expect(outbox.add(crash, queue: true, receivedAt: 1))
        return (folder, outbox, crash, try #require(outbox.takeDue(now: .infinity, store: true, publish: true)))
    }

    @Test func aBodyThatCannotBeRemovedDoesNotKeepAStoredCrashFromItsQueue() throws {
        let (folder, outbox, crash, record) = try Self.oneCrashTaken()
        try Self.obstruct("\(folder)/\(crash.crashID).crash")

        // Storage took the crash, the queue did not: the record must now wait to be published.
        let next = try outbox.stored(record)
        #expect(next?.state == .publish)
        #expect(outbox.summary.toPublish == 1 && outbox.summary.toStore == 0)
        let state = try #require(FileManager.default.contents(atPath: "\(folder)/\(crash.crashID).state"))
        #expect(OutboxRecord.decode([UInt8](state))?.state == .publish)

        // The next start still sees an ID to publish, not a crash to store.
        let restarted = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        try restarted.claim()
        defer { restarted.release() }
        restarted.rescan(claimed: true)
        #expect(restarted.summary.toPublish == 1 && restarted.summary.toStore == 0)
    }

    @Test func aDoneRecordWhoseFilesCannotBeRemovedStillLeavesTheLine() throws {
        let folder = OutboxTests.temporaryFolder()
        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        let crash = OutboxTests.crash()
        #expect(outbox.addPublish(crash.crashID, receivedAt: 1))
        let record = try #require(outbox.takeDue(now: .infinity, store: true, publish: true))
        try Self.obstruct("\(folder)/\(crash.crashID).state")

        outbox.remove(record)  // the queue confirmed the ID
        #expect(outbox.summary == Outbox.Summary())
        #expect(outbox.takeDue(now: .infinity, store: true, publish: true) == nil)
    }

    @Test func aQuarantineCutShortAfterTheBodyMovedIsAQuarantine() throws {
        let (folder, outbox, crash, record) = try Self.oneCrashTaken()
        // The body's move succeeds; the state's, onto a folder, fails.
        try Self.obstruct("\(outbox.quarantineDirectory)/\(crash.crashID).state")

        #expect(outbox.failed(record, error: "HTTP 403", strike: true, definitive: true))
        #expect(outbox.summary.toStore == 0 && outbox.summary.quarantined == 1)
        #expect(outbox.takeDue(now: .infinity, store: true, publish: true) == nil)
        let listed = Outbox.list(directory: folder)
        #expect(listed.count == 1 && listed.first?.quarantined == true && listed.first?.record.crashID == crash.crashID)
    }

    @Test func aBodyWhoseHeaderCannotBeReadIsQuarantinedNotIgnored() throws {
        let folder = OutboxTests.temporaryFolder()
        let crash = OutboxTests.crash()
        var body = OutboxCrashFile.encode(crash, queue: true, receivedAt: 1)
        body.setBytes(Array("XWOUTBOX1".utf8), at: body.readerIndex)  // the magic line damaged
        try DurableFile.write(body, to: "\(folder)/\(crash.crashID).crash")

        let outbox = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        try outbox.claim()
        defer { outbox.release() }
        outbox.rescan(claimed: true)
        #expect(outbox.summary.toStore == 1)
        let record = try #require(outbox.takeDue(now: .infinity, store: true, publish: true))
        #expect(outbox.body(of: record) == nil)
        #expect(outbox.failed(record, error: "the outbox file cannot be read", strike: true, definitive: true))
        let listed = Outbox.list(directory: folder)
        #expect(listed.map(\.record.crashID) == [crash.crashID] && listed.first?.quarantined == true)
        #expect(outbox.summary.quarantined == 1 && outbox.summary.count == 0)
    }

    /// About 60 header bytes per dump: `MAX_PARTS` above about 1,100 made headers past the 64 KiB
    /// that start-up used to read, and such a body was left unread.
    @Test func aHeaderPastSixtyFourKiBIsRead() throws {
        let folder = OutboxTests.temporaryFolder()
        let id = CrashID.make(result: .accept, date: Date())
        let dumps = (0..<1_500).map { CrashDump(name: "upload_file_minidump_\($0)", bytes: ByteBuffer(bytes: [0x4D])) }
        let crash = StoredCrash(crashID: id, rawCrash: Array("{}".utf8), dumps: dumps)
        let body = OutboxCrashFile.encode(crash, queue: false, receivedAt: 42)
        let bytes = Array(body.readableBytesView)
        #expect(try #require(bytes[10...].firstIndex(of: UInt8(ascii: "\n"))) > 64 * 1024)
        try DurableFile.write(body, to: "\(folder)/\(id).crash")
        let listed = Outbox.list(directory: folder)
        #expect(listed.count == 1 && listed.first?.record.receivedAt == 42 && listed.first?.record.queue == false)
    }

    /// `check-config` and a second `serve` build an `Outbox` before (or without) claiming the
    /// folder: what they read must stay as the serving collector left it.
    @Test func onlyTheProcessHoldingTheFolderTidiesIt() throws {
        let folder = OutboxTests.temporaryFolder()
        let storedAlready = OutboxTests.crash()
        let first = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        #expect(first.addPublish(storedAlready.crashID, receivedAt: 1))
        let body = "\(folder)/\(storedAlready.crashID).crash"
        try DurableFile.write(OutboxCrashFile.encode(storedAlready, queue: true, receivedAt: 1), to: body)
        let stale = OutboxRecord(crashID: CrashID.make(result: .accept, date: Date()), state: .store, queue: true, receivedAt: 2)
        let staleState = "\(folder)/\(stale.crashID).state"
        try DurableFile.write(ByteBuffer(bytes: stale.encoded), to: staleState)

        let tool = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        tool.rescan()
        #expect(FileManager.default.fileExists(atPath: body) && FileManager.default.fileExists(atPath: staleState))
        #expect(tool.summary.toPublish == 1)

        let owner = try Outbox(directory: folder, maxBytes: 1 << 24, telemetry: .silent())
        try owner.claim()
        defer { owner.release() }
        owner.rescan(claimed: true)
        #expect(!FileManager.default.fileExists(atPath: body) && !FileManager.default.fileExists(atPath: staleState))
        #expect(owner.summary.toPublish == 1)
    }
}
