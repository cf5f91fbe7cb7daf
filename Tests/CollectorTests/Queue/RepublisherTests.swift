import Foundation
import Testing
import Telemetry
@testable import Collector

@Suite struct RepublisherTests {
    let ids = (0..<3).map { _ in CrashID.make(result: .accept, date: Date()) }

    @Test func readsAFileSkippingCommentsAndBlankLinesAndAcceptingTheBpPrefix() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# from the outage\n\(ids[0])\n\n  bp-\(ids[1])\n\(ids[2])\n".write(toFile: path, atomically: true, encoding: .utf8)
        let republisher = Republisher(queue: CapturingCrashQueue(), storage: NullCrashStorage(), telemetry: .silent())
        #expect(try republisher.crashIDs(from: .file(path: path)) == ids)
    }

    @Test func refusesWhatIsNotACrashIDOrADate() {
        let republisher = Republisher(queue: CapturingCrashQueue(), storage: NullCrashStorage(), telemetry: .silent())
        #expect(throws: Republisher.InvalidInput.self) { try republisher.crashIDs(from: .crashIDs([ids[0], "nope"])) }
        #expect(throws: Republisher.InvalidInput.self) { try republisher.crashIDs(from: .date("28/11/2025")) }
        #expect(throws: Republisher.InvalidInput.self) { try republisher.crashIDs(from: .file(path: "/nonexistent/ids")) }
    }

    @Test func stopsAtTheFirstIDTheQueueStillRefuses() {
        let republisher = Republisher(queue: RefusingQueue(), storage: NullCrashStorage(), telemetry: .silent(), attempts: 2)
        let report = republisher.republish(ids)
        #expect(report.queued.isEmpty && report.failed?.crashID == ids[0] && report.notAttempted == Array(ids[1...]))
    }
}
