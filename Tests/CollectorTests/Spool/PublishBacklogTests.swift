import Foundation
import Testing
import Telemetry
@testable import Collector

@Suite struct PublishBacklogTests {
    let telemetry = Telemetry.silent()

    func tempPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("backlog-\(UUID())/publish-backlog").path
    }

    @Test func healthIsAWarningWhenNotEmptyAndAnErrorAboveTheThreshold() {
        let backlog = PublishBacklog(telemetry: telemetry, errorThreshold: 2)
        #expect(backlog.check() == .ok)
        for _ in 0..<2 { backlog.add(CrashID.make(result: .accept, date: Date())) }
        if case .warning = backlog.check() {} else { Issue.record("\(backlog.check())") }
        backlog.add(CrashID.make(result: .accept, date: Date()))
        #expect(backlog.check().isFailing)
    }

    @Test func theJournalKeepsOnlyPendingIDsInOrderAndSkipsATornLine() throws {
        let path = tempPath()
        let ids = (0..<4).map { _ in CrashID.make(result: .accept, date: Date()) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let journal = "+\(ids[0])\n+\(ids[1])\n+\(ids[2])\n-\(ids[1])\n+\(ids[0])\n+\(ids[3].prefix(20))"
        try journal.write(toFile: path, atomically: true, encoding: .utf8)

        let backlog = try PublishBacklog(path: path, telemetry: telemetry)

        #expect(backlog.crashIDs == [ids[0], ids[2]])
        // Opening compacted the journal to the pending IDs.
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "+\(ids[0])\n+\(ids[2])\n")
    }

    @Test func drainingEmptiesTheJournal() throws {
        let path = tempPath()
        let backlog = try PublishBacklog(path: path, telemetry: telemetry)
        backlog.add(CrashID.make(result: .accept, date: Date()))
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 38)
        backlog.startDraining(into: NullCrashQueue())
        #expect(backlog.stop(waitingUntil: Date(timeIntervalSinceNow: 10)))
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
    }
}
