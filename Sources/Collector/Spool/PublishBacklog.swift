import Foundation
import Logging
import Telemetry

/// Crash IDs that are stored but not yet on the queue. A background thread keeps offering them
/// to the queue, oldest first, backing off while the broker refuses, until each is taken.
/// Kept in memory, or in an fsynced journal (`BacklogFile`) when given a file, so they survive
/// a restart. Reported as the `publish_backlog.size` gauge and in the heartbeat.
public final class PublishBacklog: @unchecked Sendable {
    /// Above this many pending IDs the heartbeat check fails instead of warning.
    public let errorThreshold: Int
    private let file: BacklogFile?
    private let telemetry: Telemetry
    private let logger: Logger
    private let condition = NSCondition()
    private var pending: [String]
    private var pendingSet: Set<String>
    private var draining = false
    private var stopped = false

    /// A backlog kept in memory only.
    public init(telemetry: Telemetry, errorThreshold: Int = 1000) {
        file = nil
        pending = []
        pendingSet = []
        self.errorThreshold = errorThreshold
        self.telemetry = telemetry
        logger = telemetry.logger("breakwater.backlog")
        telemetry.gauge(MetricCatalog.publishBacklogSize, 0)
    }

    /// A backlog journaled in the file at `path`, starting with the IDs a previous run left there.
    public init(path: String, telemetry: Telemetry, errorThreshold: Int = 1000) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        (file, pending) = try BacklogFile.open(path: path)
        pendingSet = Set(pending)
        self.errorThreshold = errorThreshold
        self.telemetry = telemetry
        logger = telemetry.logger("breakwater.backlog")
        if !pending.isEmpty {
            logger.warning("publish backlog loaded", metadata: ["path": "\(path)", "size": "\(pending.count)"])
        }
        telemetry.gauge(MetricCatalog.publishBacklogSize, Double(pending.count))
    }

    public var count: Int { condition.withLock { pending.count } }

    public var crashIDs: [String] { condition.withLock { pending } }

    public func add(_ crashID: String) {
        condition.withLock {
            guard pendingSet.insert(crashID).inserted else { return }
            pending.append(crashID)
            journal { try $0.recordAdded(crashID) }
            telemetry.gauge(MetricCatalog.publishBacklogSize, Double(pending.count))
            condition.broadcast()
        }
    }

    public func check() -> HealthStatus {
        let n = count
        if n == 0 { return .ok }
        let message = "\(n) crash IDs stored but not yet queued"
        return n > errorThreshold ? .error(message) : .warning(message)
    }

    /// Starts the background thread offering pending IDs to `queue`. Once per backlog.
    public func startDraining(into queue: CrashQueue) {
        condition.withLock {
            precondition(!draining, "the publish backlog drains into one queue")
            draining = true
        }
        let thread = Thread { [self] in drain(into: queue) }
        thread.name = "publish-backlog"
        thread.start()
    }

    /// Waits until the backlog is empty or `deadline` passes, then stops the background thread.
    /// Returns whether everything was queued. IDs still pending are logged; with a file they
    /// are also kept there for the next start.
    @discardableResult
    public func stop(waitingUntil deadline: Date) -> Bool {
        condition.lock()
        while !pending.isEmpty && condition.wait(until: deadline) {}
        stopped = true
        condition.broadcast()
        let left = pending
        condition.unlock()
        for id in left {
            logger.error(file == nil ? "crash ID not queued and not kept: requeue it with `breakwater republish`"
                                     : "crash ID not queued; kept in the publish backlog for the next start",
                         metadata: ["crash_id": "\(id)"])
        }
        return left.isEmpty
    }

    private func drain(into queue: CrashQueue) {
        var backoff = Backoff(initial: 0.2, maximum: 5)
        while let batch = nextPending() {
            let (published, failure) = queue.publish(batch: batch)
            for crashID in batch.prefix(published) {
                remove(crashID)
                logger.info("backlog crash ID queued", metadata: ["crash_id": "\(crashID)"])
            }
            if published > 0 { backoff.reset() }
            if let failure {
                let delay = backoff.next()
                logger.warning("backlog publish failed; retrying", metadata: ["crash_id": "\(batch[published])", "error": "\(failure)",
                                                                             "retry_in_s": "\(delay)"])
                // Sleeps the whole delay (new IDs arriving do not cut it short) unless stopped.
                let until = Date(timeIntervalSinceNow: delay)
                condition.withLock { while !stopped && condition.wait(until: until) {} }
            }
        }
    }

    /// The oldest pending IDs (up to `batchSize`, sent in one call where the queue can), waiting
    /// for one; nil once stopped.
    private func nextPending() -> [String]? {
        condition.withLock {
            while pending.isEmpty && !stopped { condition.wait() }
            return stopped ? nil : Array(pending.prefix(Self.batchSize))
        }
    }

    static let batchSize = 100

    private func remove(_ crashID: String) {
        condition.withLock {
            guard pendingSet.remove(crashID) != nil else { return }
            pending.removeAll { $0 == crashID }
            journal { pending.isEmpty ? try $0.truncate() : try $0.recordRemoved(crashID) }
            telemetry.gauge(MetricCatalog.publishBacklogSize, Double(pending.count))
            condition.broadcast()
        }
    }

    /// A journal write that fails leaves the ID in memory: it is still retried, only not
    /// kept across a restart.
    private func journal(_ write: (BacklogFile) throws -> Void) {
        guard let file else { return }
        do { try write(file) } catch { logger.error("publish backlog journal write failed", metadata: ["error": "\(error)"]) }
    }
}
