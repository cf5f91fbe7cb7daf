import Foundation
import Logging
import Telemetry

/// `breakwater republish`: puts crash IDs on the queue again, for example after an outage or so
/// processors reprocess them. IDs come from the command line, a file, or every crash stored
/// on a date.
public struct Republisher: Sendable {
    public enum Source: Sendable, Equatable {
        case crashIDs([String])
        /// One crash ID per line; blank lines and `#` comments are skipped.
        case file(path: String)
        /// `YYYYMMDD` or `YYYY-MM-DD`: every raw crash stored under that date folder.
        case date(String)
    }

    public struct InvalidInput: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Report: Sendable {
        public var queued: [String] = []
        /// The ID the queue did not take after all attempts, and the last error.
        public var failed: (crashID: String, error: String)?
        /// IDs not tried because an earlier one failed: the queue is down, so trying each
        /// would only multiply the wait.
        public var notAttempted: [String] = []

        public var succeeded: Bool { failed == nil }
    }

    public let queue: CrashQueue
    public let storage: CrashStorage
    /// Tries per crash ID before it is reported as failed.
    public let attempts: Int
    private let logger: Logger

    public init(queue: CrashQueue, storage: CrashStorage, telemetry: Telemetry, attempts: Int = 5) {
        self.queue = queue
        self.storage = storage
        self.attempts = max(attempts, 1)
        logger = telemetry.logger("breakwater.republish")
    }

    /// The crash IDs of `source`, validated. Accepts the `bp-` prefix clients show to users.
    public func crashIDs(from source: Source) throws -> [String] {
        let raw: [String]
        switch source {
        case .crashIDs(let ids):
            raw = ids
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else { throw InvalidInput(description: "cannot read \(path)") }
            raw = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        case .date(let date):
            let folder = date.replacingOccurrences(of: "-", with: "")
            guard folder.count == 8, folder.allSatisfy(\.isASCII), folder.allSatisfy(\.isNumber) else {
                throw InvalidInput(description: "date must be YYYYMMDD or YYYY-MM-DD, got \(date.debugDescription)")
            }
            raw = try storage.crashIDs(onDate: folder)
        }
        return try raw.map { line in
            var id = line.trimmingCharacters(in: .whitespaces)
            if id.hasPrefix("bp-") { id.removeFirst(3) }
            guard CrashID.isValid(id) else { throw InvalidInput(description: "not a crash ID: \(line.debugDescription)") }
            return id
        }
    }

    /// Publishes the IDs in order, each retried with backoff; stops at the first one that still
    /// fails, so the report says exactly which IDs to run again.
    public func republish(_ crashIDs: [String]) -> Report {
        var report = Report()
        for (index, id) in crashIDs.enumerated() {
            if let error = publish(id) {
                report.failed = (id, "\(error)")
                report.notAttempted = Array(crashIDs[(index + 1)...])
                logger.error("republish failed", metadata: ["crash_id": "\(id)", "error": "\(error)",
                                                          "not_attempted": "\(report.notAttempted.count)"])
                break
            }
            report.queued.append(id)
            logger.info("republished", metadata: ["crash_id": "\(id)"])
        }
        return report
    }

    /// nil once the queue has the ID, else the last error.
    private func publish(_ id: String) -> Error? {
        var backoff = Backoff(initial: 0.2, maximum: 2)
        var lastError: Error?
        for attempt in 1...attempts {
            do {
                try queue.publish(id)
                return nil
            } catch {
                lastError = error
                if attempt < attempts { Thread.sleep(forTimeInterval: backoff.next()) }
            }
        }
        return lastError
    }
}
