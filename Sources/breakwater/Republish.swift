import ArgumentParser
import Collector
import Foundation

/// `breakwater republish`: puts crash IDs on the configured queue again (Socorro's "reprocess").
struct Republish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-queue crash IDs given as arguments, from a file, or every crash stored on a date.")

    @Argument(help: "Crash IDs (the bp- prefix is accepted).")
    var crashIDs: [String] = []

    @Option(help: "A file with one crash ID per line (blank lines and # comments skipped).")
    var file: String?

    @Option(help: "Every crash stored on this date (YYYY-MM-DD or YYYYMMDD) in the configured storage.")
    var date: String?

    func validate() throws {
        guard [!crashIDs.isEmpty, file != nil, date != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give crash IDs, --file or --date (exactly one)")
        }
    }

    func run() async throws {
        let config = try await loadConfiguration()
        guard config.crashQueue != "null" else {
            FileHandle.standardError.write(Data("breakwater: CRASHQUEUE is null: republishing would queue nowhere\n".utf8))
            throw ExitCode(2)
        }
        let telemetry = makeTelemetry(config)
        let republisher = Republisher(queue: try Backends.queue(config, telemetry: telemetry),
                                      storage: try Backends.storage(config, telemetry: telemetry), telemetry: telemetry)
        let source: Republisher.Source = if let file { .file(path: file) } else if let date { .date(date) } else { .crashIDs(crashIDs) }
        let report = republisher.republish(try republisher.crashIDs(from: source))
        print("queued \(report.queued.count)")
        if let failed = report.failed {
            print("failed \(failed.crashID): \(failed.error)")
            print("not attempted \(report.notAttempted.count): \(report.notAttempted.joined(separator: " "))")
            throw ExitCode(1)
        }
    }
}
