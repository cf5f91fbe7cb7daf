import Dispatch
import Foundation
import Logging
import Synchronization
import Telemetry

/// The workers of the outbox: two lanes, one storing crashes (and publishing each at once once
/// stored), one publishing the IDs of crashes already stored, so that a storage that hangs never
/// holds up IDs waiting only for the queue. Each lane takes whatever record of its kind is due,
/// oldest first; a record taken is busy, so only one lane ever works it. Each record keeps its own
/// attempt count and next-attempt time, so one failing record never delays the others. When an
/// attempt fails and the backend's own check fails too, the backend is down: the lane stops trying
/// that kind of work for a while (its own backoff) instead of trying every record in turn, and the
/// failure neither counts toward the record's quarantine nor delays it once the backend is back.
/// `stop` lets each lane finish the record in hand and joins them.
///
/// Each lane runs as one long work item on its own dispatch queue, waiting on a semaphore between
/// records, and both are joined through a dispatch group.
public final class OutboxMover: Sendable {
    private let outbox: Outbox
    private let saver: CrashSaver
    private let publisher: QueuePublisher
    private let telemetry: Telemetry
    private let logger: Logger
    /// Seconds between scans of the folder for records put back by `breakwater spool retry`.
    private let rescanInterval: Double
    /// What a lane works: records to store, or records only waiting to be published.
    private enum Lane: Int, CaseIterable { case store, publish }
    private let wakes = Lane.allCases.map { _ in DispatchSemaphore(value: 0) }
    private let done = DispatchGroup()
    private let stopping = Mutex(false)

    public init(outbox: Outbox, saver: CrashSaver, publisher: QueuePublisher, telemetry: Telemetry, rescanInterval: Double = 2) {
        self.outbox = outbox
        self.saver = saver
        self.publisher = publisher
        self.telemetry = telemetry
        self.rescanInterval = rescanInterval
        logger = telemetry.logger("breakwater.outbox")
    }

    /// Claims the folder and starts working it. Throws when another collector works the same folder.
    public func start() throws {
        try outbox.claim()
        outbox.removeTemporaries()
        outbox.rescan(claimed: true)
        let summary = outbox.summary
        if summary.count > 0 || summary.quarantined > 0 {
            logger.warning("outbox loaded", metadata: ["to_store": "\(summary.toStore)", "to_publish": "\(summary.toPublish)",
                                                       "quarantined": "\(summary.quarantined)"])
        }
        for lane in Lane.allCases {
            DispatchQueue(label: "breakwater.outbox-\(lane)").async(group: done) { [self] in run(lane) }
        }
    }

    /// Takes no new record from now on (shutdown has begun); the one in hand goes on.
    public func finishCurrent() {
        stopping.withLock { $0 = true }
        for wake in wakes { wake.signal() }
    }

    /// Lets the record in hand finish until `deadline`, then lets go of the folder. What is left
    /// stays for the next start. A record still in hand at the deadline (a backend that hangs) is
    /// left too: each of its steps is durable, so the next start repeats the step it was on, a
    /// duplicate at worst. False then.
    @discardableResult
    public func stop(until deadline: Date = .distantFuture) -> Bool {
        finishCurrent()
        let wait: DispatchTime = deadline == .distantFuture ? .distantFuture : .now() + max(0, deadline.timeIntervalSinceNow)
        guard done.wait(timeout: wait) == .success else { return false }
        outbox.release()
        return true
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    /// Monotonic seconds, for gates and scans (record times are wall-clock: they survive restarts).
    private static var clock: Double { Double(MonotonicClock.now()) / 1e9 }

    private func run(_ lane: Lane) {
        var storageGate = Gate(), queueGate = Gate()
        var nextRescan = Self.clock + rescanInterval
        while !isStopping {
            let now = Self.clock
            // The store lane also looks for records put back in the folder.
            if lane == .store, now >= nextRescan {
                outbox.rescan()
                nextRescan = now + rescanInterval
            }
            let store = lane == .store && storageGate.isOpen(now), publish = lane == .publish && queueGate.isOpen(now)
            if let record = outbox.takeDue(now: Date().timeIntervalSince1970, store: store, publish: publish) {
                work(record, storageGate: &storageGate, queueGate: &queueGate)
                continue
            }
            // Nothing due: sleep until the next record or gate is due, a scan, new records (the
            // other lane and the pipeline add them), or `stop`.
            var wait = lane == .store ? nextRescan - now : rescanInterval
            if let next = outbox.nextAttemptTime(store: store, publish: publish) {
                wait = min(wait, next - Date().timeIntervalSince1970)
            }
            let gate = lane == .store ? storageGate : queueGate
            if !gate.isOpen(now) { wait = min(wait, gate.until - now) }
            _ = wakes[lane.rawValue].wait(timeout: .now() + max(0.01, min(wait, rescanInterval)))
        }
    }

    private func work(_ record: OutboxRecord, storageGate: inout Gate, queueGate: inout Gate) {
        guard record.state == .store else {
            let more = queueGate.probing ? [] : outbox.takeDuePublishes(now: Date().timeIntervalSince1970, limit: Self.publishBatch - 1)
            return publish([record] + more, gate: &queueGate)
        }
        guard store(record, gate: &storageGate) else { return }
        guard record.queue else { return finish(record, "outbox crash stored") }
        // Stored: publish at once while the record is still `store` on disk. A kill before the
        // removal stores and publishes it again at the next start (duplicates, never a loss).
        var error: Error?
        if queueGate.isOpen(Self.clock) {
            error = publish(record.crashID, gate: &queueGate)
            if error == nil { return finish(record, "outbox crash stored", queued: true) }
        }
        // The queue did not take it: "stored" becomes durable before the body goes.
        do {
            guard let next = try outbox.stored(record) else { return }
            logger.info("outbox crash stored", metadata: ["crash_id": "\(record.crashID)", "queued": "false"])
            if let error {
                outbox.failed(next, error: "\(error)", strike: false, definitive: false, backendDown: !queueGate.isOpen(Self.clock))
            } else {
                outbox.idle(next)
            }
        } catch {
            // The new state is not durable: the record stays as it was and the crash is stored
            // again later (a duplicate write, never a loss).
            outbox.failed(record, error: "stored, but the outbox could not record it: \(error)", strike: false, definitive: false)
        }
    }

    /// Stores the record's crash; false (the record released with its failure) when it is not.
    private func store(_ record: OutboxRecord, gate: inout Gate) -> Bool {
        guard let crash = outbox.body(of: record) else {
            outbox.failed(record, error: "the outbox file cannot be read", strike: true, definitive: true)
            return false
        }
        do {
            try telemetry.timed(MetricCatalog.storeTime) { try saver.storage.save(crash) }
        } catch {
            telemetry.count(MetricCatalog.saveCrash, ("result", "retry"))
            let definitive = error.isDefinitive
            // Only a failure while storage otherwise works is this record's fault.
            let healthy = definitive || !saver.storage.check().isFailing
            if !healthy { gate.close(Self.clock) }
            let quarantined = outbox.failed(record, error: "\(error)", strike: healthy, definitive: definitive, backendDown: !healthy)
            logger.warning("outbox store failed", metadata: ["crash_id": "\(record.crashID)", "error": "\(error)",
                                                             "attempts": "\(record.attempts + 1)", "quarantined": "\(quarantined)"])
            return false
        }
        gate.reset()
        saver.storageRecovered()
        saver.countSaved(crash)
        return true
    }

    /// nil once the queue confirmed the ID, else the error.
    private func publish(_ crashID: String, gate: inout Gate) -> Error? {
        do {
            try telemetry.timed(MetricCatalog.publishTime) { try publisher.queue.publish(crashID) }
        } catch {
            publishFailed(gate: &gate)
            logger.warning("outbox publish failed", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
            return error
        }
        gate.reset()
        publisher.queueRecovered()
        publisher.countPublished()
        return nil
    }

    /// IDs waiting only to be queued, published in one call where the queue allows (Pub/Sub takes
    /// up to 1,000 messages a call; 100 keeps a call small). The ones the queue confirmed leave;
    /// the rest wait their turn.
    private func publish(_ records: [OutboxRecord], gate: inout Gate) {
        let (published, failure) = publisher.queue.publish(batch: records.map(\.crashID))
        publisher.countPublished(published)
        for record in records.prefix(published) { finish(record, "outbox crash ID queued") }
        guard let failure else {
            gate.reset()
            publisher.queueRecovered()
            return
        }
        publishFailed(gate: &gate)
        logger.warning("outbox publish failed", metadata: ["crash_ids": "\(records.count - published)", "error": "\(failure)"])
        for record in records.dropFirst(published) {
            outbox.failed(record, error: "\(failure)", strike: false, definitive: false, backendDown: !gate.isOpen(Self.clock))
        }
    }

    static let publishBatch = 100

    /// A publish failed: counted as a retry, the next one is a probe, the publisher holds new IDs
    /// back, and the gate closes when the queue's own check fails too.
    private func publishFailed(gate: inout Gate) {
        telemetry.count(MetricCatalog.publishCrash, ("result", "retry"))
        gate.probing = true
        publisher.queueFailed()
        if publisher.queue.check().isFailing { gate.close(Self.clock) }
    }

    /// The record is done: it leaves the outbox.
    private func finish(_ record: OutboxRecord, _ message: Logger.Message, queued: Bool? = nil) {
        outbox.remove(record)
        var metadata: Logger.Metadata = ["crash_id": "\(record.crashID)"]
        if let queued { metadata["queued"] = "\(queued)" }
        logger.info(message, metadata: metadata)
    }

    /// A backend found down: closed for a growing while (0.5 s doubling to 10 s), open again on
    /// success. While it is closed no record of that kind is tried; after any failure the next
    /// record is a probe, tried alone: a batch sent to a queue that hangs may be delivered after
    /// the client gave up on it, and every ID in it would then be published again.
    private struct Gate {
        var until = 0.0
        var backoff = Backoff(initial: 0.5, maximum: 10)
        var probing = false

        func isOpen(_ now: Double) -> Bool { now >= until }
        mutating func close(_ now: Double) { until = now + backoff.next() }
        mutating func reset() { until = 0; backoff.reset(); probing = false }
    }
}
