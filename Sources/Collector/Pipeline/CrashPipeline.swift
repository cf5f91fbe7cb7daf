import Foundation
import Logging
import Telemetry

/// What happened to a decoded crash after throttle → identify → store → publish.
public enum PipelineOutcome: Sendable, Equatable {
    /// Stored (accept, defer); for accept, `queued` is false when the ID waits in the outbox.
    case stored(crashID: String, decision: ThrottleDecision, queued: Bool?)
    /// Answered with a crash ID but kept nowhere.
    case fakeaccepted(crashID: String, rule: String)
    case rejected(rule: String)
    /// Storage was down: kept in the local outbox, to be stored (and queued) by its mover.
    case spooled(crashID: String, decision: ThrottleDecision)
    /// Storage (or the queue) could not take it and the outbox neither: the client must retry.
    case retryLater(crashID: String, rule: String)

    public var auditOutcome: AuditRecord.Outcome {
        switch self {
        case .stored(_, let d, _): return d.result == .defer ? .deferred : .accepted
        case .fakeaccepted: return .fakeaccepted
        case .rejected: return .rejected
        case .spooled: return .spooled
        case .retryLater: return .retry_later
        }
    }
}

/// The plain synchronous part of every endpoint, run on a worker thread.
public final class CrashPipeline: Sendable {
    public let throttler: Throttler
    public let saver: CrashSaver
    public let publisher: QueuePublisher
    /// Where a crash that failed to store or queue waits; nil turns that into a 503.
    public let outbox: Outbox?
    private let telemetry: Telemetry
    /// Whether storing or queueing waits on a disk or a network, so a crash reaching that step
    /// hands its CPU slot on (`WorkerPool.nowWaitingOnIO`). Fixed by the backends: decided once.
    private let waitsOnIO: Bool

    public init(throttler: Throttler, saver: CrashSaver, publisher: QueuePublisher, outbox: Outbox? = nil, telemetry: Telemetry) {
        self.throttler = throttler
        self.saver = saver
        self.publisher = publisher
        self.outbox = outbox
        self.telemetry = telemetry
        waitsOnIO = saver.storage.waitsOnIO || publisher.queue.queues
    }

    /// - Parameter clientCrashID: an already authorized client-chosen crash ID.
    public func process(_ report: CrashReport, clientCrashID: String? = nil, receivedAt: Date = Date()) -> PipelineOutcome {
        var start = MonotonicClock.now()
        let decision = throttler.throttle(report)
        var elapsed = MonotonicClock.now() - start
        telemetry.time(MetricCatalog.throttleTime, nanoseconds: elapsed)
        telemetry.stage("throttle", crashID: clientCrashID, nanoseconds: elapsed,
                        ["rule": .string(decision.rule), "result": .string(decision.result.rawValue)])
        telemetry.count(MetricCatalog.throttle, ("result", decision.result.rawValue))
        telemetry.count(MetricCatalog.throttleRule, ("rule", decision.rule))

        if decision.result == .reject {
            return .rejected(rule: decision.rule)
        }
        start = MonotonicClock.now()
        let crashID = clientCrashID ?? CrashID.make(result: decision.result, date: receivedAt)
        telemetry.stage("identify", crashID: crashID, nanoseconds: MonotonicClock.now() - start,
                        ["client_chosen": .stringConvertible(clientCrashID != nil)])
        if decision.result == .fakeaccept { return .fakeaccepted(crashID: crashID, rule: decision.rule) }

        let stored = StoredCrash(crashID: crashID,
                                 rawCrash: RawCrash.json(of: report, crashID: crashID, rule: decision.rule, receivedAt: receivedAt),
                                 dumps: report.dumps)
        // The outbox is written only when a step fails, and fsynced before the answer.
        let queue = decision.result.isQueued, received = receivedAt.timeIntervalSince1970
        // From here this crash waits on storage and the queue: the next one may use the CPU.
        if waitsOnIO { WorkerPool.nowWaitingOnIO() }
        start = MonotonicClock.now()
        let saved = saver.save(stored)
        telemetry.stage("store", crashID: crashID, nanoseconds: MonotonicClock.now() - start,
                        failure: saved == .stored ? nil : "\(saved)")
        guard saved == .stored else {
            guard let outbox, outbox.add(stored, queue: queue, receivedAt: received) else {
                return .retryLater(crashID: crashID, rule: decision.rule)
            }
            return .spooled(crashID: crashID, decision: decision)
        }
        guard queue else { return .stored(crashID: crashID, decision: decision, queued: nil) }
        start = MonotonicClock.now()
        let published = publisher.publish(crashID)
        elapsed = MonotonicClock.now() - start
        telemetry.stage("publish", crashID: crashID, nanoseconds: elapsed, failure: published ? nil : "queue_unavailable")
        // The null queue takes every ID and puts it nowhere: not queued.
        if published { return .stored(crashID: crashID, decision: decision, queued: publisher.queue.queues) }
        // Stored but not queued, and nowhere to remember it: the resend is a duplicate, not a loss.
        guard let outbox, outbox.addPublish(crashID, receivedAt: received) else {
            return .retryLater(crashID: crashID, rule: decision.rule)
        }
        return .stored(crashID: crashID, decision: decision, queued: false)
    }
}
