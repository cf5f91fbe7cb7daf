import Foundation
import NIOConcurrencyHelpers
import Testing

/// The fault suite's result table: one row per scenario, printed to stdout once the suite has run
/// and written to `.build/fault-table.md` (rewritten after every scenario, so a partial run
/// leaves the rows it has).
final class FaultTable: @unchecked Sendable {
    struct Row: Sendable {
        var scenario: String
        var sent = 0
        var acknowledged = 0
        var retryLater = 0
        var stored = 0
        /// nil when the scenario has no queue to check.
        var queued: Int?
        var lost = 0
        var duplicated = 0
        var seconds = 0.0
        var notes: [String] = []
    }

    static let shared = FaultTable()
    static let file = Tools.root.appendingPathComponent(".build/fault-table.md")
    private let lock = NIOLock()
    private var rows: [Row] = []

    func record(_ row: Row) {
        lock.withLock {
            rows.removeAll { $0.scenario == row.scenario }
            rows.append(row)
        }
        print("fault-suite: \(row.scenario): sent \(row.sent), acknowledged \(row.acknowledged), 503 \(row.retryLater), "
              + "stored \(row.stored), queued \(row.queued.map(String.init) ?? "-"), lost \(row.lost), "
              + "duplicated \(row.duplicated); \(row.notes.joined(separator: "; "))")
        try? markdown.write(to: Self.file, atomically: true, encoding: .utf8)
    }

    var markdown: String {
        let rows = lock.withLock { self.rows }
        var out = """
            | scenario | sent | acknowledged | 503 | stored | queued | lost | duplicated | time (s) | notes |
            |---|---:|---:|---:|---:|---:|---:|---:|---:|---|

            """
        for r in rows {
            out += "| \(r.scenario) | \(r.sent) | \(r.acknowledged) | \(r.retryLater) | \(r.stored) | "
                + "\(r.queued.map(String.init) ?? "—") | \(r.lost) | \(r.duplicated) | "
                + String(format: "%.1f", r.seconds) + " | \(r.notes.joined(separator: "; ")) |\n"
        }
        return out
    }

    func printTable() {
        guard lock.withLock({ !rows.isEmpty }) else { return }
        print("\nFault suite (written to .build/fault-table.md):\n\n" + markdown)
    }
}

/// Wraps the fault suite: prints the table once every scenario in it has run.
struct FaultTableTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> FaultTableTrait? { test.isSuite ? self : nil }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        defer { FaultTable.shared.printTable() }
        try await function()
    }
}

extension Trait where Self == FaultTableTrait {
    static var faultTable: FaultTableTrait { FaultTableTrait() }
}
