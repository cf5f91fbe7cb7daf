import ArgumentParser
import Collector
import Foundation

/// `breakwater spool list|retry`: the outbox and its quarantine, for an operator. Both read and
/// rename files only, so they run next to a collector serving the same `SPOOL_DIR`.
struct Spool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the local outbox (SPOOL_DIR) or put quarantined crashes back in line.",
        subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each crash in the outbox and its quarantine: crash ID, state, attempts, age, last error.")

        func run() async throws {
            let folder = try await spoolFolder()
            let now = Date().timeIntervalSince1970
            print("CRASH_ID\tSTATE\tATTEMPTS\tAGE_S\tLAST_ERROR")
            for item in Outbox.list(directory: folder) {
                let r = item.record
                let state = item.quarantined ? "quarantined" : r.state.rawValue
                print("\(r.crashID)\t\(state)\t\(r.attempts)\t\(Int(max(0, now - r.receivedAt)))\t\(r.lastError.isEmpty ? "-" : r.lastError)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put quarantined crashes back in the outbox with fresh attempts (all of them without crash IDs).")

        @Argument(help: "Crash IDs of quarantined crashes (the bp- prefix is accepted).")
        var crashIDs: [String] = []

        func run() async throws {
            let folder = try await spoolFolder()
            let ids = crashIDs.map { $0.hasPrefix("bp-") ? String($0.dropFirst(3)) : $0 }
            do {
                let moved = try Outbox.retry(directory: folder, crashIDs: ids)
                print("back in line \(moved.count): \(moved.joined(separator: " "))")
            } catch {
                FileHandle.standardError.write(Data("breakwater: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

/// The configured outbox folder; exits 2 when the outbox is off.
private func spoolFolder() async throws -> String {
    let config = try await loadConfiguration()
    guard !config.spoolDir.isEmpty else {
        FileHandle.standardError.write(Data("breakwater: SPOOL_DIR is empty: the outbox is off\n".utf8))
        throw ExitCode(2)
    }
    return config.spoolDir
}
